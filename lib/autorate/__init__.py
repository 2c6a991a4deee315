"""Chapter "Auto rate-tuning by batch normalisation" (Arora, Li & Lyu, 2019).

``theory``: scale invariance, the norm growth of Lemma 2.4, effective rates, the networks
of the chapter; ``experiments``: the training runs behind its figures (rates, SGD).
"""

__all__ = ["experiments", "theory"]
