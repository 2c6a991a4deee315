"""Speed of the batched BNGD grid (the paper's figure 1), measured in one run on this machine.

One figure-1 grid: 5 a₀ × 43 ε × 41 ε_a = 8815 configurations × 2000 steps, d = 100,
float64. Three ways to compute it, timed in the same run:
  1. lib.bngd.dynamics.bngd: one batched call (torch, cache-sized blocks)  -> target <= 5 s;
  2. a Python loop over configurations, each one an dynamics.bngd call of its own. Timing all
     8815 would take minutes, so a spread-out sample of configurations is timed and the
     total extrapolated (sample size printed)                    -> target >= 20x slower;
  3. a straightforward float64 NumPy vectorisation of all 8815 at once (full run)
                                                                -> target >= 2x slower.
It also prints how many cells of the figure get a different colour from NumPy than from
lib (float64 both: only cells whose dynamics amplify round-off should differ).

Usage: python bench/bench_bngd.py [--kappa 1000] [--repeats 3] [--sample 40]
"""

import argparse
import time

import numpy as np
import torch

from lib.bngd import dynamics, experiments

TARGETS = {"batched seconds": 5.0, "loop / batched": 20.0, "numpy / batched": 2.0}


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
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}")
    prob = experiments.paper_problem(args.kappa)
    cfg = experiments.Figure1Config()
    A0, E, EA = (x.reshape(-1) for x in np.meshgrid(cfg.a0, cfg.eps, cfg.eps_a, indexing="ij"))
    n = A0.size
    print(f"grid: {n} configurations x {cfg.steps} steps, d = {prob.h.numel()}, kappa = {args.kappa:g}")

    t_batched, res = timed(lambda: experiments.figure1(prob, cfg), args.repeats)
    print(f"  lib.bngd.dynamics.bngd, one batched call  {t_batched:8.2f} s   (best of {args.repeats})")

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
    differ = int((classes_np != res.classes).sum())
    print(f"  cells coloured differently by NumPy and lib: {differ} of {n}")

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
