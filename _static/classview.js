/* Class view: a chapter's interactive figures one per screen, large, for a projector.

   On a page with interactive figures (lib/site_figure.py: a .normbook-figure holding
   <input type=range> sliders) this adds a "Class view" button under the page title.
   The button, or the URL fragment #class-view (#class-view-N: figure N), opens a modal
   <dialog> that fills the viewport and holds one figure at a time: the figure's own
   node (with its caption, when myst-nb wraps it in a <figure>) is moved into the
   dialog, so its inline script keeps switching frames, and moved back on exit.

   Keys in the view: Left/Right step the current slider through its grid values (the
   input's step, with the input and change events the figure listens to), Up/Down
   choose the slider (Tab too), Home/End its first/last value, PageDown/PageUp or n/p
   the next/previous figure, Esc (or Close) leaves: every figure back in its place, the
   scroll position and the focus (on the button) restored. The fragment follows the
   figure shown, so a reload returns to it. No network, no library: plain DOM. */
(function () {
  "use strict";
  var FRAGMENT = /^#class-view(?:-(\d+))?$/;
  var state = null;      // while open: {index, slider, unit, placeholder, chain, ...}
  var figures = [];      // the page's interactive figures (.normbook-figure roots)
  var dialog = null, button = null;

  function interactive() {
    return Array.prototype.filter.call(document.querySelectorAll(".normbook-figure"),
      function (root) { return root.querySelector("input[type=range]") !== null; });
  }

  // What moves into the view: the myst-nb <figure> around the figure (its caption
  // comes along) when it holds this figure only, else the figure itself.
  function unitOf(root) {
    var outer = root.parentElement && root.parentElement.closest("figure");
    if (outer && outer.querySelector("figcaption") &&
        outer.querySelectorAll(".normbook-figure").length === 1) return outer;
    return root;
  }

  function titleOf(root, n) {
    var strong = root.querySelector(":scope > p > strong");
    var text = strong ? strong.textContent.trim() : "";
    if (!text) {
      var caption = unitOf(root).querySelector("figcaption");
      text = caption ? caption.textContent.replace(/#\s*$/, "").trim() : "";
    }
    return text || "Interactive figure " + n;
  }

  function sliders() {
    return state && state.unit ? figures[state.index].querySelectorAll("input[type=range]") : [];
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) node.textContent = text;
    return node;
  }

  function makeDialog() {
    dialog = el("dialog", {"class": "classview", role: "dialog", "aria-modal": "true",
                           "aria-labelledby": "classview-title",
                           "aria-describedby": "classview-keys"});
    var bar = el("div", {"class": "classview-bar"});
    bar.appendChild(el("h2", {id: "classview-title", "class": "classview-title"}));
    var count = el("p", {"class": "classview-count"});
    count.appendChild(el("span", {"class": "classview-sr"}, "Figure "));
    count.appendChild(el("span", {"class": "classview-n"}));
    bar.appendChild(count);
    [["prev", "Previous"], ["next", "Next"], ["close", "Close"]].forEach(function (b) {
      var act = el("button", {type: "button", "class": "classview-" + b[0]}, b[1]);
      act.addEventListener("click", function () {
        if (b[0] === "close") close(); else show(state.index + (b[0] === "next" ? 1 : -1));
      });
      bar.appendChild(act);
    });
    dialog.appendChild(bar);
    dialog.appendChild(el("div", {"class": "classview-stage"}));
    dialog.appendChild(el("p", {id: "classview-keys", "class": "classview-keys"},
      "Keys: \u2190 \u2192 change the value, \u2191 \u2193 choose the slider, " +
      "n / p (PageDown / PageUp) next or previous figure, Esc closes."));
    dialog.addEventListener("keydown", onKey);
    dialog.addEventListener("cancel", function (e) { e.preventDefault(); close(); });
    dialog.addEventListener("close", function () { if (state) close(); });
    dialog.addEventListener("focusin", function (e) {
      var i = Array.prototype.indexOf.call(sliders(), e.target);
      if (i >= 0) choose(i, false);
    });
    document.body.appendChild(dialog);
  }

  // Put figure i (0-based, clamped) in the view, the previous one back on the page.
  function show(i) {
    i = Math.max(0, Math.min(figures.length - 1, i));
    if (state.unit) restore();
    var root = figures[i], unit = unitOf(root);
    var placeholder = el("div", {"class": "classview-placeholder", hidden: ""});
    unit.parentNode.insertBefore(placeholder, unit);
    var chain = [];   // unit .. root: stretched so that the drawing fills the view
    for (var node = root; node && node !== unit.parentNode; node = node.parentElement) {
      chain.push(node);
      node.classList.add("classview-chain");
    }
    dialog.querySelector(".classview-stage").appendChild(unit);
    state.index = i;
    state.unit = unit;
    state.placeholder = placeholder;
    state.chain = chain;
    dialog.querySelector(".classview-title").textContent = titleOf(root, i + 1);
    dialog.querySelector(".classview-n").textContent = (i + 1) + " / " + figures.length;
    dialog.querySelector(".classview-prev").disabled = i === 0;
    dialog.querySelector(".classview-next").disabled = i === figures.length - 1;
    history.replaceState(history.state, "", "#class-view-" + (i + 1));
    choose(0, true);
  }

  function restore() {
    state.placeholder.parentNode.replaceChild(state.unit, state.placeholder);
    state.chain.forEach(function (node) { node.classList.remove("classview-chain"); });
    Array.prototype.forEach.call(sliders(), function (s) {
      s.parentElement.classList.remove("classview-current");
    });
    state.unit = null;
  }

  // Make slider j of the figure shown the one the arrow keys move (and focus it).
  function choose(j, focus) {
    var all = sliders();
    if (!all.length) return;
    state.slider = Math.max(0, Math.min(all.length - 1, j));
    Array.prototype.forEach.call(all, function (s, k) {
      s.parentElement.classList.toggle("classview-current", k === state.slider);
    });
    if (focus) all[state.slider].focus({preventScroll: true});
  }

  // Move the current slider by `by` steps (or to an end), as the user would: the
  // figure's script listens to input/change events, which a script-set value lacks.
  function step(by, end) {
    var s = sliders()[state.slider];
    if (!s) return;
    var before = s.value;
    if (end) s.value = end < 0 ? s.min : s.max;
    else if (by > 0) s.stepUp(by); else s.stepDown(-by);
    if (s.value !== before) {
      s.dispatchEvent(new Event("input", {bubbles: true}));
      s.dispatchEvent(new Event("change", {bubbles: true}));
    }
    s.focus({preventScroll: true});
  }

  function onKey(e) {
    if (e.altKey || e.ctrlKey || e.metaKey || !state) return;
    var act = {
      ArrowRight: function () { step(1); }, ArrowLeft: function () { step(-1); },
      Home: function () { step(0, -1); }, End: function () { step(0, 1); },
      ArrowDown: function () { choose(state.slider + 1, true); },
      ArrowUp: function () { choose(state.slider - 1, true); },
      PageDown: function () { show(state.index + 1); },
      PageUp: function () { show(state.index - 1); },
      n: function () { show(state.index + 1); }, p: function () { show(state.index - 1); },
      Escape: close
    }[e.key];
    if (!act) return;
    e.preventDefault();
    e.stopPropagation();
    act();
  }

  function open(i) {
    if (!figures.length) return;
    if (!state) {
      if (!dialog) makeDialog();
      state = {unit: null, x: window.scrollX, y: window.scrollY};
      document.documentElement.classList.add("classview-active");
      dialog.showModal();
    }
    show(i);
  }

  function close() {
    if (!state) return;
    var saved = state;
    restore();
    state = null;
    document.documentElement.classList.remove("classview-active");
    if (dialog.open) dialog.close();
    if (FRAGMENT.test(location.hash))   // not when the reader went to another anchor
      history.replaceState(history.state, "", location.pathname + location.search);
    window.scrollTo(saved.x, saved.y);
    button.focus({preventScroll: true});
  }

  function fromFragment() {
    var m = FRAGMENT.exec(location.hash);
    if (m) open(m[1] ? +m[1] - 1 : 0);
    else if (state) close();
  }

  function init() {
    figures = interactive();
    if (!figures.length) return;
    var title = document.querySelector(".bd-article h1") ||   // the theme's article
                document.querySelector("article h1, main h1");
    var launch = el("p", {"class": "classview-launch"});
    button = el("button", {type: "button", "class": "classview-button",
                           "aria-haspopup": "dialog"}, "Class view");
    button.addEventListener("click", function () { open(0); });
    launch.appendChild(button);
    launch.appendChild(el("span", {"class": "classview-hint"}, " \u2014 this page's " +
      (figures.length === 1 ? "interactive figure, full screen," : figures.length +
      " interactive figures, one per screen,") + " for a projector (Esc returns here)"));
    if (title) title.insertAdjacentElement("afterend", launch);
    else document.body.insertBefore(launch, document.body.firstChild);
    window.addEventListener("hashchange", fromFragment);
    window.addEventListener("beforeprint", close);   // print the page, figures in place
    fromFragment();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
