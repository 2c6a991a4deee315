"""Chapter "An exponential learning-rate schedule" (Li & Arora, 2020).

``schedules``: step decay, cosine, the exponential schedule, TEXP and its phase-entry
correction (Theorems 2.1–2.13); ``networks``: the scale-invariant networks (an MLP and a
PreResNet, BN without ε, last layer fixed) and CIFAR-10's crop-and-flip augmentation;
``experiments``: the equivalence runs, schedule comparisons on a PreResNet, the
equilibrium of appendix C and the sliders' computations; ``toy``: the section-3 toy where
BN and weight decay fail together (full-batch, and Theorem 3.1's fresh batches);
``figures``: drawing.
"""

__all__ = ["experiments", "figures", "networks", "schedules", "toy"]
