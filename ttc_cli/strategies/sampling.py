"""Shared by the sampling strategies: N candidates from one prefill, decoded in one batch.

The prompt is evaluated once; each candidate is a fork of it with its own seeded sampler, and all live
candidates advance together in one forward pass per step. Finished candidates release their cache at once.
The helper yields the same events for every strategy built on it, so they differ only in how they choose.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from ttc_cli.engine.base import FINISH_BUDGET, FINISH_INTERRUPTED, FINISH_STOP, Sequence
from ttc_cli.events import Candidate, CandidateFinished, CandidateStarted, Event, TokensGenerated
from ttc_cli.strategies.context import RunContext
from ttc_cli.verifiers.answers import extract_answer
from ttc_cli.verifiers.scoring import SCORERS


def sample(ctx: RunContext, n: int, temperature: float | None = None) -> Iterator[Event]:
    """Generate `n` candidates for the prompt; yields progress and one CandidateFinished per candidate."""
    engine = ctx.engine
    base = ctx.sampling if temperature is None else replace(ctx.sampling, temperature=temperature)
    root = engine.prefill(ctx.prompt_tokens, ctx.stop)
    decoder = engine.decoder(ctx.budget, ctx.stop)
    index: dict[Sequence, int] = {}
    try:
        for i in range(n):
            seq = engine.fork(root)
            decoder.add(seq, replace(base, seed=base.seed + i))
            index[seq] = i
            yield CandidateStarted(i)
        engine.release(root)
        for step in decoder:
            if step.sampled:
                progress = tuple((index[s], s.n_generated) for s, _ in step.sampled)
                yield TokensGenerated(ctx.budget.spent, progress)
            for seq in step.finished:
                yield CandidateFinished(to_candidate(ctx, index[seq], seq))
                engine.release(seq)
    finally:
        engine.release(root)
        for seq in index:
            engine.release(seq)


def to_candidate(ctx: RunContext, i: int, seq: Sequence) -> Candidate:
    text = seq.text.strip()
    found = extract_answer(text, ctx.choices) if text else None
    score = SCORERS[ctx.scorer](seq.logprobs, seq.top_logprobs)
    return Candidate(
        index=i,
        text=text,
        tokens=seq.n_generated,
        finish_reason=seq.finish_reason or FINISH_STOP,
        mean_logprob=seq.mean_logprob,
        answer=found.text if found else None,
        answer_key=found.key if found else None,
        score=score,
    )


def complete(cands: list[Candidate]) -> list[Candidate]:
    """Candidates that ended on their own; when none did, all of them (the best we have)."""
    done = [c for c in cands if c.finish_reason == FINISH_STOP]
    return done or list(cands)


def stopped_because(cands: list[Candidate], ctx: RunContext) -> str:
    reasons = {c.finish_reason for c in cands}
    if FINISH_INTERRUPTED in reasons or ctx.interrupted:
        return "interrupted"
    if FINISH_BUDGET in reasons:
        return "budget"
    return "completed"


def shown_answer(c: Candidate) -> str:
    """What to print for a chosen candidate: its extracted answer, else its whole text."""
    return c.answer if c.answer is not None else c.text
