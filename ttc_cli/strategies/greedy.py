"""greedy: one chain of thought at temperature 0. The baseline every other strategy must beat."""

from __future__ import annotations

from collections.abc import Iterator

from ttc_cli.events import CandidateFinished, Event, Final
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.sampling import sample, shown_answer, stopped_because

DESCRIPTION = "one chain of thought, decoded greedily (the baseline)"


def run(ctx: RunContext) -> Iterator[Event]:
    cands = []
    for event in sample(ctx, 1, temperature=0.0):
        yield event
        if isinstance(event, CandidateFinished):
            cands.append(event.candidate)
    best = cands[0]
    yield Final(
        answer=shown_answer(best),
        response=best.text,
        selection="greedy decoding: the single most likely chain of thought",
        stopped_because=stopped_because(cands, ctx),
        candidates=tuple(cands),
        chosen=best.index,
    )
