"""Chapter "Batch normalisation on least squares" (Cai, Li & Shen, 2019).

``dynamics``: BNGD and GD on the least-squares problem, batched; ``theory``: the paper's
quantities (effective step, pseudo-Hessian, residual recursion, GD's stability limit and
rate, the local rates of Proposition 3.4, equivalent configurations); ``experiments``:
figure 1, ε sweeps and the slider's runs; ``draws``: many random starts or problems at
once (Theorem 3.3's "almost every start", appendix B's modified BNGD); ``networks``: the
Fashion-MNIST networks with and without BN; ``figures``: drawing.
"""

__all__ = ["draws", "dynamics", "experiments", "figures", "jobs", "networks", "theory"]
