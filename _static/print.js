/* Printing from the dark theme: print in the light one. The theme's colours hang on
   <html data-theme="dark">, so a dark page printed without backgrounds (the browsers'
   default) would be light text on white paper. _static/print.css does the rest. */
(function () {
  var root = document.documentElement;
  window.addEventListener("beforeprint", function () {
    if (root.dataset.theme === "dark") {
      root.dataset.printedFrom = "dark";
      root.dataset.theme = "light";
    }
  });
  window.addEventListener("afterprint", function () {
    if (root.dataset.printedFrom === "dark") {
      root.dataset.theme = "dark";
      delete root.dataset.printedFrom;
    }
  });
})();
