"""auto: size the compute to the question. A small probe of samples estimates how hard it is, then routes.

The probe is the first `PROBE` samples of an ordinary self-consistency pool, decoded together, so nothing
it spends is thrown away: its votes stay in the tally whatever the route.
- easy: every probe sample gives the same answer. The leader is then the majority with posterior
  probability >= 0.97 (Beta(k+1, 1)), and more samples would almost never change it: stop.
- medium: the probe agrees partly. Continue self-consistency up to N with the early-stopping rule.
- hard: no two probe samples agree (or none states an answer). Continue up to N samples: on a question the
  model finds hard, the right answer is often a small plurality that only many samples reveal.
The route and the figures behind it are a `Routed` event and appear in `--json` as `route`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from ttc_cli.answers.stopping import StopDecision, VoteStop
from ttc_cli.answers.voting import VoteTally
from ttc_cli.events import CandidateStarted, EarlyStop, Event, Routed
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.sampling import Sampled, sample
from ttc_cli.strategies.self_consistency import choose

DESCRIPTION = "probe 4 samples, then stop (easy), vote up to N/2 (medium) or up to N (hard)"
PROBE = 4


def run(ctx: RunContext) -> Iterator[Event]:
    most = ctx.samples
    probe = min(PROBE, most)
    # With --no-early-stop auto still routes, but then runs its route's samples to the end.
    early = ctx.early
    rule = VoteStop("decided" if early.rule == "decided" else "beta", early.confidence) if early else None
    out = Sampled(tally=VoteTally(), limit=probe)
    routed: list[Routed] = []  # set by the stopper once the probe is in
    announced = False

    def stopper(tally: VoteTally, finished: int, total: int) -> StopDecision | None:
        if not routed:
            if finished < probe:
                return None
            route = classify(tally, probe, most, ctx.routes)
            routed.append(route)
            out.limit = route.samples
            if stops(route.difficulty, route.samples, probe, most):
                return StopDecision("auto", route.reason)
            return None
        return rule.check([v.weight for v in tally.snapshot()], finished, total) if rule else None

    for event in sample(ctx, most, out, show_votes=True, stopper=stopper):
        if routed and not announced and isinstance(event, EarlyStop | CandidateStarted):
            announced = True
            yield routed[0]  # before what the route caused: the stop, or the first sample past the probe
        yield event
    if routed and not announced:
        yield routed[0]
    yield replace(choose(out, ctx, weighted=False), route=routed[0] if routed else None)


def classify(tally: VoteTally, probe: int, most: int, routes: dict[str, int] | None = None) -> Routed:
    """The route the probe's agreement asks for; a profile's `auto.routes` (fitted by `ttc bench --fit`)
    sets the samples of each difficulty, never more than N nor fewer than the probe."""
    votes = tally.snapshot()
    leader = votes[0].count if votes else 0
    answers = len(votes)
    seen = f"{leader} of {probe} probe samples agree ({answers} distinct answer{'s' if answers != 1 else ''})"
    difficulty = "easy" if leader == probe else "medium" if leader >= 2 else "hard"
    default = {"easy": probe, "medium": max(probe, most // 2), "hard": most}[difficulty]
    samples = max(probe, min(most, (routes or {}).get(difficulty, default)))
    if stops(difficulty, samples, probe, most):
        return Routed(difficulty, f"{seen}: stop", probe)
    return Routed(difficulty, f"{seen}: self-consistency up to {samples} samples", samples)


def stops(difficulty: str, samples: int, probe: int, most: int) -> bool:
    """Whether the route ends the run at the probe: an easy question, or a route no larger than the probe
    when more samples were allowed."""
    return difficulty == "easy" or samples <= probe < most
