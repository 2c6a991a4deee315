"""Chapter "Auto rate-tuning by batch normalisation" (Arora, Li & Lyu, 2019).

``theory``: the norm growth of Lemma 2.4, the sphere iteration of Theorem 2.5, effective
rates, the networks of the chapter; ``experiments``: the training runs behind its figures
(rates, SGD); ``figures``: drawing them. The scale-invariance check it starts from is
shared with the exponential-LR chapter: :mod:`lib.invariance`.
"""

__all__ = ["experiments", "figures", "jobs", "theory"]
