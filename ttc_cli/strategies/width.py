"""How many samples decode at once while an early stop is possible: the width with the least expected
wall time to a decision, from the engine's measured throughput curve (`engine/throughput.py`).

Decoding few samples at a time saves the tokens of every sample a stop leaves unstarted; decoding many
at once is faster per token. Which matters more depends on the host and on the votes so far, so the
width is chosen again whenever a vote arrives. In units of one sample's length, with

    R  the samples the run may still need (all not yet finished, those decoding included),
    m  the fewest further finished samples after which the stop rule could fire (all backing the leader),
    p  the chance that it does: the leader's smoothed share, (votes + 1) / (finished + 2), to the power m,
    rate(w)  the measured tokens/s with w samples decoding at once (each runs at rate(w) / w),

a width w reaches the first possible stop after max(m, w) / rate(w) and finishes all R after
R / rate(w), so its expected time is E(w) = (p·max(m, w) + (1 − p)·R) / rate(w); the width is the
narrowest w in 1..R whose E(w) is within 2 % of the least (a narrower one spends fewer tokens).
Where the curve is flat per sample (a GPU: rate(w) ∝ w) all R, or nearly all, decode at once; where the
rule cannot stop before the last sample (m ≥ R) all R decode at once; narrow widths win only while a
stop is both near and likely, which is when unstarted samples are worth not starting.
"""

from __future__ import annotations

from dataclasses import dataclass

from ttc_cli.answers.stopping import VoteStop
from ttc_cli.engine.throughput import Curve

NO_CURVE_WIDTH = 2  # an engine that cannot measure its speed (a scripted fake) keeps the old fixed width
NEAR_TIE = 0.02  # widths this close to the fastest count as fast: the narrowest of them is chosen


@dataclass(frozen=True)
class Width:
    width: int
    detail: str  # why, in figures a user can check


def votes_to_stop(rule: VoteStop, counts: list[float], finished: int, total: int) -> int:
    """The fewest further finished samples, all backing the leader, after which `rule` stops;
    total - finished + 1 when it cannot stop before the last sample."""
    ranked = sorted(counts, reverse=True) or [0.0]
    for more in range(1, total - finished + 1):
        hypothetical = [ranked[0] + more, *ranked[1:]]
        if rule.check(hypothetical, finished + more, total) is not None:
            return more
    return total - finished + 1


def choose_width(curve: Curve, remaining: int, to_stop: int, leader: float, finished: int) -> Width:
    """The width for `remaining` samples when a stop needs `to_stop` more agreeing ones and the leader
    holds `leader` of `finished` votes (see the module's docstring)."""
    if remaining <= 1:
        return Width(1, "one sample left")
    if to_stop > remaining:
        return Width(remaining, "all at once: the votes cannot settle before the last sample")
    share = (leader + 1.0) / (finished + 2.0)
    p = share**to_stop

    def expected(w: int) -> float:
        return (p * max(to_stop, w) + (1.0 - p) * remaining) / curve.rate(w)

    times = {w: expected(w) for w in range(1, remaining + 1)}
    least = min(times.values())
    best = min(w for w, t in times.items() if t <= least * (1.0 + NEAR_TIE))
    return Width(
        best,
        f"{best} at once: a stop needs {to_stop} more agreeing vote{'s' if to_stop > 1 else ''} "
        f"(P ≈ {p:.2f}) of {remaining} samples left; "
        f"{curve.rate(best):.0f} tok/s at {best} vs {curve.rate(remaining):.0f} at {remaining}",
    )
