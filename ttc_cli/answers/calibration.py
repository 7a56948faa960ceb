"""A single sample's confidence: the probability its answer is right, from its mean token log-probability.

A vote counts agreeing samples; greedy has one sample and nothing to count. Its mean log-probability
still tells right answers from wrong ones (on the bench's GSM8K questions with Qwen2.5-Coder-0.5B about
as well as a vote does; docs/reference.md, "Confidence"), but how a log-probability maps to a
probability of being right depends on the model and the questions, so no map is built in:
`ttc bench --fit NAME` fits one (Platt scaling, a logistic curve
P(right) = 1 / (1 + exp(-(slope * mean_logprob + intercept)))) on half of the questions, reports its
calibration on the other half, and writes it to the profile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_RIDGE = 1e-6  # keeps Newton's steps solvable when the log-probabilities are all equal


def platt_fit(logprobs: Sequence[float], right: Sequence[bool], iterations: int = 50) -> tuple[float, float]:
    """(slope, intercept) of the logistic curve that best predicts `right` from `logprobs` (Newton's method
    on the log-likelihood). As Platt does, the targets are (right + 1) / (rights + 2) and 1 / (wrongs + 2)
    rather than 1 and 0, so a handful of answers that a log-probability happens to separate perfectly give
    a finite, hedged curve rather than a step."""
    x = np.asarray(logprobs, dtype=np.float64)
    labels = np.asarray(right, dtype=bool)
    rights, wrongs = int(labels.sum()), int((~labels).sum())
    y = np.where(labels, (rights + 1) / (rights + 2), 1 / (wrongs + 2))
    features = np.stack([x, np.ones_like(x)], axis=1)
    w = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(features @ w, -30, 30)))
        gradient = features.T @ (p - y) + _RIDGE * w
        hessian = (features.T * (p * (1 - p))) @ features + _RIDGE * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-9:
            break
    return float(w[0]), float(w[1])


def platt(slope: float, intercept: float, logprob: float) -> float:
    z = max(-30.0, min(30.0, slope * logprob + intercept))
    return 1.0 / (1.0 + math.exp(-z))
