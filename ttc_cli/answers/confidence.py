"""Trace confidence from per-token log-probabilities (DeepConf, Fu et al. 2025).

A token's confidence is minus the mean log-probability of the top-k alternatives the model considered
there: high when the distribution is peaked, low when the model hesitated among many tokens. A trace's
group confidence is the mean token confidence over a sliding window; its weakest window (the lowest group
confidence) tracks correctness better than the trace mean, because a trace that goes wrong usually does so
at a few uncertain steps that a whole-trace average dilutes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import numpy as np

from ttc_cli.answers.voting import VoteTally

CONFIDENCE_WINDOW = 16  # tokens per group: short enough to catch a local wobble in a ~300-token solution


def token_confidence(top_logprobs: np.ndarray) -> float:
    return -float(np.mean(top_logprobs)) if len(top_logprobs) else 0.0


def token_confidences(top_logprobs: Iterable[np.ndarray]) -> list[float]:
    return [token_confidence(row) for row in top_logprobs]


def lowest_group_confidence(confs: Sequence[float], window: int) -> float:
    """The lowest mean over any `window` consecutive tokens (the whole trace when it is shorter)."""
    if not confs:
        return 0.0
    if len(confs) <= window:
        return float(np.mean(confs))
    sums = np.convolve(np.asarray(confs, dtype=np.float64), np.ones(window), mode="valid")
    return float(sums.min() / window)


class GroupConfidence:
    """The sliding-window confidence of a live trace, updated one token at a time in O(1)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._recent: deque[float] = deque()
        self._sum = 0.0
        self.lowest = float("inf")  # lowest full-window mean seen so far

    def add(self, conf: float) -> float | None:
        """Add one token's confidence; returns the window's mean once the window is full."""
        self._recent.append(conf)
        self._sum += conf
        if len(self._recent) > self.window:
            self._sum -= self._recent.popleft()
        if len(self._recent) < self.window:
            return None
        mean = self._sum / self.window
        self.lowest = min(self.lowest, mean)
        return mean

    @property
    def weakest(self) -> float:
        """The lowest window mean; for a trace shorter than the window, its whole-trace mean."""
        if self.lowest != float("inf"):
            return self.lowest
        return self._sum / len(self._recent) if self._recent else 0.0


def vote_confidence(tally: VoteTally, ended: int) -> float:
    """How sure a vote is: (the winner's votes + 1) / (the samples that ended on their own + 2).

    The winner's share of the samples, shrunk toward 1/2 as Laplace's rule of succession does: 2 agreeing
    samples of an early stop give 0.75, not 1.0, while 16 of 16 give 0.94. Samples that ended without an
    answer (a program that crashed, a text that states none) count against the winner: they are evidence
    the question is hard. Of the definitions measured on GSM8K (this, the plain share, the share of the
    votes cast, the Beta posterior that the winner beats the runner-up) it had the lowest calibration
    error on average and on every early-stopped configuration (benchmarks/execution.py;
    docs/benchmarks.md, "Execution on GSM8K").
    """
    lead = tally.leader()
    return agreement_confidence(lead.count if lead is not None else 0, ended)


def agreement_confidence(agreeing: int, ended: int) -> float:
    """`vote_confidence` for a chosen answer that need not be the vote's winner (best-of-n keeps the
    best-scored candidate): (the samples that ended agreeing with it + 1) / (the samples that ended + 2).
    On the bench's GSM8K questions it was as calibrated for best-of-n as the vote's is for
    self-consistency (docs/reference.md, "Confidence")."""
    if agreeing <= 0 or ended <= 0:
        return 0.0
    return (min(agreeing, ended) + 1) / (ended + 2)
