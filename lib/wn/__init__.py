"""Chapter "Weight normalisation and two-layer ReLU networks" (Dukler, Gu & Montúfar, 2020).

``networks``: the weight-normalised network (parameters, initialisation, modules) and its
kernels; ``training``: full-batch GD through the book's training loop, with the kernel
recorded and divergence cut; ``theory``: numerical checks of the paper's decompositions
and concentration; ``experiments``: the regime and width sweeps; ``figures``: drawing.
"""

__all__ = ["experiments", "figures", "jobs", "networks", "theory", "training"]
