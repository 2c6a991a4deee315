"""How much the sweep engine's batched mode saves, measured in one run on this machine.

Prints, for each case, the seconds taken by each way of training the same models and
the ratios the issue sets targets for:
  1. 20 MLPs 784-100-10 with BN, one epoch of SGD on a Fashion-MNIST subset:
     batched ≥ 1.4× faster than the sequential loop;
  2. 100 tiny MLPs, all in one stack: batched ≥ 10× faster than a hand-written loop;
  3. a small BN-CNN: the automatic choice ≤ 5% slower than the loop.
Each case is measured `--repeats` times, alternating the modes, and the median is kept.

Usage: python bench/bench_sweep.py [--repeats 3] [--n 10000]
"""

import argparse
import statistics
import time

import torch

from lib import data, synthetic, sweep
from lib.models import MLP, SmallCNN
from lib.train import TrainConfig


def seeded(build):
    """``make_model(seed)`` that seeds torch, then builds."""
    def make_model(seed=0):
        torch.manual_seed(seed)
        return build()
    return make_model


def plain_torch_loop(make_model, ds, cfg, n_models):
    """Independent baseline: nn.Module + torch.optim.SGD, one model after another."""
    for seed in range(n_models):
        model = make_model(seed=seed)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.eta, momentum=cfg.momentum)
        g = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(ds.y), generator=g)
        for t in range(cfg.steps):
            idx = perm[t * cfg.batch_size:(t + 1) * cfg.batch_size]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(ds.X[idx]), ds.y[idx]).backward()
            opt.step()


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(name, make_model, ds, n_models, steps, batch_size, modes, repeats, chunk=64):
    # Record only the first and last step: the plain loop records nothing, and a sweep
    # that wants final losses does the same. ``chunk``: models trained together in batched
    # mode (the engine's default is 64).
    cfg = TrainConfig(steps=steps, batch_size=batch_size, momentum=0.9, log_every=steps)
    grid = sweep.Grid(seed=list(range(n_models)))
    runs = {m: (lambda m=m: sweep.train_grid(make_model, ds, cfg, grid, mode=m, bar=False,
                                             chunk=chunk))
            for m in modes}
    runs["plain torch loop"] = lambda: plain_torch_loop(make_model, ds, cfg, n_models)
    for m in ("batched", "loop"):  # warm-up: the first calls pay one-off costs
        sweep.train_grid(make_model, ds, TrainConfig(steps=2, batch_size=batch_size), grid,
                         mode=m, bar=False, chunk=chunk)
    times = {m: [] for m in runs}
    for _ in range(repeats):
        for m, run in runs.items():
            times[m].append(timed(run))
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"\n{name}: {n_models} models x {steps} steps, batch {batch_size}, "
          f"batched {min(chunk, n_models)} at a time")
    for m, t in med.items():
        print(f"  {m:<18} {t:7.2f} s   (runs: {', '.join(f'{x:.2f}' for x in times[m])})")
    return med


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=10_000, help="Fashion-MNIST subset size")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    fm = data.fashion_mnist("train", n=args.n, device="cpu")

    med = measure("MLP 784-100-10 + BN", seeded(lambda: MLP((784, 100, 10), norm="bn")),
                  fm, 20, args.n // 100, 100, ("batched", "loop"), args.repeats)
    r1 = med["loop"] / med["batched"]
    r1p = med["plain torch loop"] / med["batched"]

    tiny = synthetic.gaussian_classification(10_000, 10, n_classes=2, seed=0)
    # all 100 in one stack (chunk=100): with the default 64 the per-step Python cost of the
    # vmapped step is paid twice, for 64 and for 36 models
    med = measure("tiny MLP 10-8-2 + BN", seeded(lambda: MLP((10, 8, 2), norm="bn")),
                  tiny, 100, 100, 100, ("batched", "loop"), args.repeats, chunk=100)
    r2 = med["loop"] / med["batched"]
    r2p = med["plain torch loop"] / med["batched"]

    small = data.fashion_mnist("train", n=2_000, device="cpu")
    med = measure("small BN-CNN", seeded(lambda: SmallCNN(width=8)),
                  small, 4, 10, 100, ("auto", "loop", "batched"), args.repeats)
    r3 = med["auto"] / med["loop"]

    print("\nsummary (targets in brackets)")
    print(f"  20 BN-MLPs, batched vs loop:        {r1:5.2f}x faster (>= 1.4); vs plain torch loop {r1p:.2f}x")
    print(f"  100 tiny MLPs, batched vs loop:     {r2:5.2f}x faster; vs plain torch loop {r2p:.2f}x (>= 10)")
    print(f"  BN-CNN, auto ({sweep.choose_mode(SmallCNN(), 'cpu')}) / loop time: {r3:5.2f} (<= 1.05); "
          f"batched / loop: {med['batched'] / med['loop']:.2f}")


if __name__ == "__main__":
    main()
