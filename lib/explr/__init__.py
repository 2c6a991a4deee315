"""Chapter "An exponential learning-rate schedule" (Li & Arora, 2020).

``schedules``: step decay, cosine, the exponential schedule, TEXP and its phase-entry
correction (Theorems 2.1–2.13); ``networks``: the scale-invariant networks (an MLP and a
PreResNet, BN without ε, last layer fixed) and CIFAR-10's crop-and-flip augmentation;
``experiments``: the equivalence runs and the sliders' computations; ``comparisons``: the
section-4 schedule comparisons on a PreResNet (the paper's figures 2 to 6, over seeds);
``norms``: the weight norm's equilibrium and Theorem C.1's near-monotone growth (appendix
C); ``toy``: the section-3 toy where BN and weight decay fail together (full-batch, and
Theorem 3.1's fresh batches); ``figures``: drawing; ``jobs``: the schedule comparisons'
sweeps for ``python -m lib.reproduce explr``.
"""

__all__ = ["comparisons", "experiments", "figures", "jobs", "networks", "norms", "schedules",
           "toy"]
