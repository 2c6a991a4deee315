"""Chapter "An exponential learning-rate schedule" (Li & Arora, 2020).

``schedules``: step decay, cosine, the exponential schedule and TEXP (Theorems 2.1–2.13);
``experiments``: scale-invariant networks, the equivalence runs, schedule comparisons on a
PreResNet, the equilibrium of appendix C and the section-3 toy.
"""

__all__ = ["experiments", "schedules"]
