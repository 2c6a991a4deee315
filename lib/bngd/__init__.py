"""Chapter "Batch normalisation on least squares" (Cai, Li & Shen, 2019).

``dynamics``: BNGD and GD on the least-squares problem, batched; ``theory``: the paper's
quantities (effective step, pseudo-Hessian, residual recursion, GD's stability limit and
rate); ``experiments``: figure 1, ε sweeps and the slider's runs; ``networks``: the
Fashion-MNIST networks with and without BN; ``figures``: drawing.
"""

__all__ = ["dynamics", "experiments", "figures", "networks", "theory"]
