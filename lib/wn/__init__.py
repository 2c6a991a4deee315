"""Chapter "Weight normalisation and two-layer ReLU networks" (Dukler, Gu & Montúfar, 2020).

``networks``: the weight-normalised network, its kernels and its training loop; ``theory``:
numerical checks of the paper's decompositions and concentration; ``experiments``: the
regime and width sweeps; ``figures``: drawing.
"""

__all__ = ["experiments", "figures", "networks", "theory"]
