"""Scores of a whole candidate from its token log-probabilities (higher is better).

`mean-logprob` is the length-normalised log-likelihood of the candidate: the default best-of-n scorer.
`confidence` is DeepConf's token confidence (minus the mean log-probability of the top-k alternatives)
averaged over the candidate: it rewards traces where the model was sure of each step. A scorer takes the
per-token log-probabilities and top-k log-probabilities, so a new one is one function in `SCORERS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Scorer = Callable[[Sequence[float], Sequence[np.ndarray]], float]


def mean_logprob(logprobs: Sequence[float], top_logprobs: Sequence[np.ndarray]) -> float:
    return float(np.mean(logprobs)) if len(logprobs) else -math.inf


def mean_confidence(logprobs: Sequence[float], top_logprobs: Sequence[np.ndarray]) -> float:
    if not len(top_logprobs):
        return -math.inf
    return float(-np.mean([row.mean() for row in top_logprobs]))


SCORERS: dict[str, Scorer] = {"mean-logprob": mean_logprob, "confidence": mean_confidence}


def vote_weight(mean_lp: float) -> float:
    """A candidate's weight in a weighted vote: its geometric-mean token probability, in (0, 1]."""
    return math.exp(mean_lp) if math.isfinite(mean_lp) else 0.0
