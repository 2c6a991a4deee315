"""Speed of the batched BNGD grid (the paper's figure 1), measured in one run on this machine.

One figure-1 grid: 5 a₀ × 43 ε × 41 ε_a = 8815 configurations × 2000 steps, d = 100,
float64. Four ways to compute it, timed in the same run:
  1. lib.bngd.dynamics.bngd, engine "auto" (the compiled engine: Numba, lanes of 32
     configurations in L1, threads over blocks)                -> target <= 1.5 s;
  2. the same call with engine "torch" (batched tensor ops in cache-sized blocks; the
     engine before the compiled one, still used for matrix H, float32 and GPUs);
  3. a Python loop over configurations, each one an dynamics.bngd call of its own. Timing all
     8815 would take minutes, so a spread-out sample of configurations is timed and the
     total extrapolated (sample size printed)                    -> target >= 20x slower;
  4. a straightforward float64 NumPy vectorisation of all 8815 at once (full run)
                                                                -> target >= 2x slower.
The first call's one-off cost (compiling, or loading Numba's on-disk cache) is printed
apart. It also prints how many cells of the figure each pair of float64 implementations
colours differently, and how many of those lie outside the round-off cells (those whose
colour a one-ulp change of w0 already changes: experiments.round_off_cells); that last
count should be 0.

Usage: python bench/bench_bngd.py [--kappa 1000] [--repeats 3] [--sample 40]
"""

import argparse
import os
import time

import numpy as np
import torch

from lib.bngd import dynamics, experiments

TARGETS = {"batched seconds": 1.5, "loop / batched": 20.0, "numpy / batched": 2.0}


def numpy_bngd(h, u, a0, w0, eps, eps_a, steps):
    """All configurations at once with NumPy float64: the obvious vectorisation.

    Args: h, u, w0 (d,); a0, eps, eps_a (n,). Returns final (loss, eff_step), each (n,).
    """
    g = h * u
    c = u @ g
    a = a0.copy()
    w = np.broadcast_to(w0, (a0.size, w0.size)).copy()
    for k in range(steps + 1):
        Hw = w * h
        p = w @ g
        sigma = np.sqrt(np.einsum("nd,nd->n", w, Hw))
        q = p / sigma
        if k == steps:
            break
        alpha = eps * a / sigma
        eff = alpha * q / sigma
        a = a + eps_a * (q - a)    # uses the old a in alpha above, as iteration (9)-(10)
        w = w + alpha[:, None] * g - eff[:, None] * Hw
    loss = 0.5 * (c - 2 * a * q + a * a)
    return loss, eff


def timed(fn, repeats):
    best, out = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kappa", type=float, default=1e3)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of the batched call (best kept)")
    ap.add_argument("--sample", type=int, default=40, help="configurations timed in the loop")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}, "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    prob = experiments.paper_problem(args.kappa)
    cfg = experiments.Figure1Config()
    A0, E, EA = (x.reshape(-1) for x in np.meshgrid(cfg.a0, cfg.eps, cfg.eps_a, indexing="ij"))
    n = A0.size
    print(f"grid: {n} configurations x {cfg.steps} steps, d = {prob.h.numel()}, kappa = {args.kappa:g}")

    tiny = experiments.Figure1Config(a0=(1.0,), eps=(1.0,), eps_a=(1.0,), steps=2)
    t_first, _ = timed(lambda: experiments.figure1(prob, tiny), 1)
    print(f"  first call (compile or load the compiled engine)  {t_first:6.2f} s")
    t_batched, res = timed(lambda: experiments.figure1(prob, cfg), args.repeats)
    print(f"  lib.bngd.dynamics.bngd, compiled engine  {t_batched:8.2f} s   (best of {args.repeats})")
    t_torch, res_torch = timed(lambda: experiments.figure1(prob, cfg, engine="torch"), 1)
    print(f"  lib.bngd.dynamics.bngd, torch engine     {t_torch:8.2f} s   (one run; "
          f"{t_torch / t_batched:.1f}x the compiled engine)")

    pick = np.linspace(0, n - 1, args.sample).round().astype(int)
    def loop():
        for i in pick:
            dynamics.bngd(prob.h, prob.u, float(A0[i]), prob.w0, float(E[i]), float(EA[i]), cfg.steps)
    t_sample, _ = timed(loop, 1)
    t_loop = t_sample * n / len(pick)
    print(f"  loop over configurations        {t_loop:8.2f} s   (extrapolated: {len(pick)} "
          f"configurations took {t_sample:.2f} s)")

    h, u, w0 = (x.numpy() for x in (prob.h, prob.u, prob.w0))
    t_numpy, (loss_np, eff_np) = timed(lambda: numpy_bngd(h, u, A0, w0, E, EA, cfg.steps), 1)
    print(f"  NumPy float64 vectorisation     {t_numpy:8.2f} s   (full run)")

    classes_np = experiments.classify(loss_np.reshape(res.loss.shape), eff_np.reshape(res.loss.shape),
                                      res.loss_gd, prob.gd.eps_opt, cfg.floor * prob.c, cfg.close)
    fragile = experiments.round_off_cells(res)
    print(f"\nround-off cells (class changes when w0 moves by one ulp): {int(fragile.sum())} of {n}")
    pairs = {"compiled vs torch": (res.classes, res_torch.classes),
             "compiled vs NumPy": (res.classes, classes_np),
             "torch vs NumPy": (res_torch.classes, classes_np)}
    for name, (one, two) in pairs.items():
        differ = one != two
        print(f"  cells coloured differently, {name:<18} {int(differ.sum()):4d} of {n} "
              f"({int((differ & ~fragile).sum())} outside the round-off cells)")

    measured = {"batched seconds": t_batched, "loop / batched": t_loop / t_batched,
                "numpy / batched": t_numpy / t_batched}
    print("\ntargets:")
    for name, value in measured.items():
        target = TARGETS[name]
        ok = value <= target if name == "batched seconds" else value >= target
        sign = "<=" if name == "batched seconds" else ">="
        print(f"  {name:<18} {value:8.2f}   target {sign} {target:g}   {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
