"""Chapter "An exponential learning-rate schedule" (Li & Arora, 2020).

``schedules``: step decay, cosine, the exponential schedule and TEXP (Theorems 2.1–2.13);
``networks``: the scale-invariant networks (an MLP and a PreResNet, BN without ε, last
layer fixed); ``experiments``: the equivalence runs, schedule comparisons on a PreResNet,
the equilibrium of appendix C and the sliders' computations; ``toy``: the section-3 toy
where BN and weight decay fail together; ``figures``: drawing.
"""

__all__ = ["experiments", "figures", "networks", "schedules", "toy"]
