"""When to stop sampling: the rules, as pure arithmetic over votes and trace confidences.

The sampling loop asks `VoteStop.check` after every finished sample and `TraceFilter` after every token
of a live one; both answer with figures a user can check by hand, because an early stop the user cannot
explain is indistinguishable from a bug. `benchmarks/early_stop.py` replays the same objects over
recorded samples, so what the benchmark reports is what `ttc ask` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ttc_cli.answers.confidence import GroupConfidence

RULE_DECIDED = "decided"  # the remaining samples can no longer change the winner
RULE_BETA = "beta"  # the leader is the majority answer with posterior probability >= threshold
RULE_DEEPCONF = "deepconf"  # beta, plus online cancellation of low-confidence traces
RULES = (RULE_BETA, RULE_DECIDED, RULE_DEEPCONF)


@dataclass(frozen=True)
class EarlyStopping:
    """How sampling strategies may stop before N; the values come from the profile's `early_stop:`."""

    rule: str  # beta | decided | deepconf
    confidence: float  # posterior probability the leader must reach (beta, deepconf)
    width: int | None  # samples decoding at once; None: chosen from the measured throughput curve
    warmup: int  # deepconf: completed traces that set the confidence threshold
    window: int  # deepconf: tokens per sliding confidence group
    keep: float  # deepconf: later traces must stay above the (1 - keep) quantile of the warm-up's


@dataclass(frozen=True)
class StopDecision:
    rule: str
    detail: str
    probability: float | None = None


def leader_probability(leader: float, runner_up: float) -> float:
    """P(p_leader > p_runner_up) under a uniform prior: P(X > 1/2) for X ~ Beta(leader+1, runner_up+1).

    This is Adaptive-Consistency's Beta stopping criterion (Aggarwal et al. 2023): only the two leading
    answers matter, and the posterior of the leader's share between them is a Beta distribution.
    """
    return 1.0 - regularized_beta(0.5, leader + 1.0, runner_up + 1.0)


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the Beta(a, b) CDF at x, by Lentz's continued fraction (no scipy at run time)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The fraction converges fast for x < (a+1)/(a+b+2); use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a).
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-12:
            break
    return f


class VoteStop:
    """Decides, after each finished sample, whether the vote is settled.

    `decided` is exact: it stops only when the samples still to come cannot overturn the leader even if
    they all back the runner-up. `beta` stops when the leader is ahead with posterior probability at least
    `threshold`; it is always combined with `decided`, which never changes the answer.
    """

    def __init__(self, rule: str, threshold: float, min_votes: int = 2) -> None:
        self.rule = rule
        self.threshold = threshold
        self.min_votes = min_votes

    def check(self, counts: list[float], finished: int, total: int) -> StopDecision | None:
        """`counts`: votes per answer; `finished` of `total` samples are done (unparsed ones included)."""
        ranked = sorted(counts, reverse=True)
        if not ranked:
            return None
        leader = ranked[0]
        runner_up = ranked[1] if len(ranked) > 1 else 0.0
        remaining = total - finished
        if remaining > 0 and leader - runner_up > remaining:
            return StopDecision(
                RULE_DECIDED,
                f"leader has {_num(leader)} votes, runner-up {_num(runner_up)}: the {remaining} samples left "
                f"cannot change the winner",
            )
        if self.rule == RULE_DECIDED or remaining <= 0 or sum(ranked) < self.min_votes:
            return None
        p = leader_probability(leader, runner_up)
        if p >= self.threshold:
            return StopDecision(
                self.rule,
                f"leader has {_num(leader)} of {_num(sum(ranked))} votes (runner-up {_num(runner_up)}): "
                f"P(leader is the majority) = {p:.3f} >= {self.threshold:g} after {finished}/{total} samples",
                probability=p,
            )
        return None


def _num(x: float) -> str:
    return f"{x:g}" if float(x).is_integer() else f"{x:.2f}"


class TraceFilter:
    """DeepConf online: cancel a live trace whose sliding-window confidence falls below a threshold.

    The first `warmup` traces run to the end; the threshold is the `1 - keep` quantile of their lowest
    group confidences, so later traces must stay as confident as the best `keep` fraction of the warm-up
    did. A trace is judged only once its window is full, so a short hesitant start is not enough.
    """

    def __init__(self, warmup: int, window: int, keep: float) -> None:
        self.warmup = warmup
        self.window = window
        self.keep = keep
        self.warm: list[float] = []
        self.threshold: float | None = None
        self._groups: dict[int, GroupConfidence] = {}

    def start(self, index: int) -> None:
        self._groups[index] = GroupConfidence(self.window)

    def observe(self, index: int, confidence: float) -> float | None:
        """Add a token's confidence to trace `index`; returns the window's if the trace must be cancelled."""
        group = self._groups.get(index)
        if group is None:
            return None
        mean = group.add(confidence)
        if mean is not None and self.threshold is not None and mean < self.threshold:
            return mean
        return None

    def finish(self, index: int, counted: bool) -> None:
        """Trace `index` ended; one that ran its course (`counted`) before a threshold existed warms it up."""
        group = self._groups.pop(index, None)
        if group is None or not counted or self.threshold is not None:
            return
        self.warm.append(group.weakest)
        if len(self.warm) >= self.warmup:
            self.threshold = float(np.quantile(self.warm, 1.0 - self.keep))
