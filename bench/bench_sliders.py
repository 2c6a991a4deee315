"""Slider timings and site payloads: python -m bench.bench_sliders [--moves 50] [--no-browser].

Run from the repository's folder (``-m`` puts it on the import path for ``tools.sitekit``).

(a) live kernel: set() -> PNG bytes ready, for the intro demo (target p95 <= 100 ms);
(b) built site: slider input -> fragments swapped + layout, in headless Chromium
    (target <= 50 ms);
(c) text/html payload of the demo figure and of a 4-slider figure.
"""

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from tools import sitekit

os.environ.setdefault("NORMBOOK_SCALE", "cpu")


def pct(times_ms):
    return f"p50 {np.percentile(times_ms, 50):6.1f} ms   p95 {np.percentile(times_ms, 95):6.1f} ms"


def live(moves: int) -> None:
    fig, _ = sitekit.demo()
    fig.widget  # noqa: B018  (build the ipywidgets box: set() then renders PNG bytes)
    rng, times = random.Random(0), []
    for _ in range(moves):
        eta, kappa = 10 ** rng.uniform(-3, np.log10(2)), 10 ** rng.uniform(0, 3)
        t0 = time.perf_counter()
        fig.set(eta=eta, kappa=kappa)
        assert fig._widgets["image"].value[:4] == b"\x89PNG"
        times.append(1e3 * (time.perf_counter() - t0))
    print(f"(a) live kernel, set() -> PNG ready, {moves} random moves: {pct(times)}")


FOUR = '''
def compute4(eta, kappa, mid, start):
    return dynamics.gd(H=torch.tensor([1.0, mid, kappa]), u=torch.ones(3),
                       w0=torch.full((3,), start), eps=eta, steps=60)

'''


def payloads() -> None:
    os.environ["NORMBOOK_BUILD"] = "1"
    try:
        tw = sitekit
        t0 = time.perf_counter()
        fig, ns = tw.demo()
        n = len(tw.site_data(fig.html())["f"])
        print(f"(c) demo figure (2 sliders, {n} frames): {len(fig.html().encode()) / 1e3:.0f} kB, "
              f"built in {time.perf_counter() - t0:.1f} s")
        exec(FOUR, ns)
        Slider = ns["Slider"]
        for grid in (3, 5):
            sliders = [Slider("eta", "η", 1e-3, 2.0, default=0.1, log=True, grid=grid),
                       Slider("kappa", "κ", 1, 1e3, default=10, log=True, grid=grid),
                       Slider("mid", "λ₂", 1, 10, default=1, log=True, grid=grid),
                       Slider("start", "w₀", -2, 2, default=0, grid=grid)]
            t0 = time.perf_counter()
            fig = ns["InteractiveFigure"](ns["compute4"], ns["draw"], sliders, title="four")  # the demo's draw
            n = len(tw.site_data(fig.html())["f"])
            print(f"    4-slider figure, grid {grid} ({n} frames): "
                  f"{len(fig.html().encode()) / 1e3:.0f} kB, built in {time.perf_counter() - t0:.1f} s")
    finally:
        del os.environ["NORMBOOK_BUILD"]


PAINT_JS = """
const [i, value, done] = arguments;
const root = document.querySelectorAll('.normbook-figure')[0];
const input = root.querySelectorAll('input[type=range]')[i];
const t0 = performance.now();
input.value = value;
input.dispatchEvent(new Event('input', {bubbles: true}));
requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0));
"""


def painted_times(driver, moves: int, seed: int = 1) -> list[float]:
    """Slider input -> next frame painted (rAF + task), milliseconds."""
    rng, times = random.Random(seed), []
    for _ in range(moves):
        i = rng.randrange(2)
        times.append(driver.execute_async_script(PAINT_JS, i, rng.randrange(10)))
    return times


def site(moves: int) -> None:
    tb = sitekit
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        page = tb.build_book(Path(tmp))
        print(f"(b) test book built in {time.perf_counter() - t0:.0f} s; "
              f"page {page.stat().st_size / 1e3:.0f} kB (2 figures, incl. theme markup)")
        driver = tb.chrome()
        try:
            driver.get(page.as_uri())
            times = tb.redraw_times(driver, moves=moves)
            painted = painted_times(driver, moves)
        finally:
            driver.quit()
    print(f"    site redraw in headless Chromium, {moves} random moves: {pct(times)} (swap + layout)")
    print(f"    same, until the next frame is painted:             {pct(painted)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--moves", type=int, default=50)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    live(args.moves)
    if not args.no_browser:
        site(args.moves)
    payloads()
