"""greedy: one chain of thought at temperature 0. The baseline every other strategy must beat.

Its confidence needs a calibration fitted to the model (`ttc bench --fit`, answers.calibration): without
one in the profile it is null, since one sample has no vote to count."""

from __future__ import annotations

from collections.abc import Iterator

from ttc_cli.answers.calibration import platt
from ttc_cli.events import Candidate, Event, Final
from ttc_cli.strategies.candidates import shown_answer
from ttc_cli.strategies.code import choose_code
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.sampling import Sampled, sample

DESCRIPTION = "one chain of thought, decoded greedily (the baseline)"


def run(ctx: RunContext) -> Iterator[Event]:
    out = Sampled()
    yield from sample(ctx, 1, out, temperature=0.0)
    cands = out.candidates
    if ctx.code is not None:
        yield choose_code(cands, ctx.code, "agreement", "greedy decoding", out.stopped_because(ctx), None)
        return
    best = cands[0]
    yield Final(
        answer=shown_answer(best),
        response=best.text,
        selection="greedy decoding: the single most likely chain of thought",
        stopped_because=out.stopped_because(ctx),
        candidates=tuple(cands),
        chosen=best.index,
        confidence=_confidence(ctx, best),
    )


def _confidence(ctx: RunContext, best: Candidate) -> float | None:
    if ctx.greedy_confidence is None:
        return None
    return platt(*ctx.greedy_confidence, best.mean_logprob) if best.answer_key is not None else 0.0
