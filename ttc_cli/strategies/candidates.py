"""Candidates: what a strategy chooses among, made one way from a sampled sequence or from search steps.

Also the two judgements every strategy ends with: which candidates finished on their own (the only ones
that compete, unless none did), and why the run stopped.
"""

from __future__ import annotations

from collections.abc import Sequence

from ttc_cli.answers.confidence import CONFIDENCE_WINDOW, lowest_group_confidence, token_confidences
from ttc_cli.answers.extract import extract_answer
from ttc_cli.answers.scoring import SCORERS
from ttc_cli.engine.sequence import FINISH_STOP
from ttc_cli.engine.sequence import Sequence as KvSeq
from ttc_cli.events import Candidate
from ttc_cli.strategies.context import RunContext

Step = tuple[str, int, float]  # (text, tokens, mean log-probability) of one piece of a solution


def from_sequence(ctx: RunContext, index: int, seq: KvSeq, program: bool = False) -> Candidate:
    """A sampled candidate: its text, answer, cost, score and trace confidence. A `program`'s answer is
    what it prints when run, not a number in its code, so it has none yet."""
    text = seq.text.strip()
    if ctx.code is not None and ctx.code.prefill:  # the prompt began the reply (the stub): its code's head
        text = (ctx.code.prefill + seq.text).strip()
    found = extract_answer(text, ctx.choices) if text and not program else None
    window = ctx.early.window if ctx.early else CONFIDENCE_WINDOW
    return Candidate(
        index=index,
        text=text,
        tokens=seq.n_generated,
        finish_reason=seq.finish_reason or FINISH_STOP,
        mean_logprob=seq.mean_logprob,
        answer=found.text if found else None,
        answer_key=found.key if found else None,
        score=SCORERS[ctx.scorer](seq.logprobs, seq.top_logprobs),
        forced=tuple(seq.forcing.actions) if seq.forcing is not None else (),
        trace_confidence=lowest_group_confidence(token_confidences(seq.top_logprobs), window)
        if seq.top_logprobs
        else None,
        kind="program" if program else "text",
    )


def from_steps(
    steps: Sequence[Step], index: int, choices: tuple[str, ...], reason: str, score: float | None = None
) -> Candidate:
    """A solution made of steps (a search path, a rollout, a refined reply) as one candidate."""
    n = sum(count for _, count, _ in steps)
    mean = sum(lp * count for _, count, lp in steps) / n if n else 0.0
    text = "".join(t for t, _, _ in steps).strip()
    found = extract_answer(text, choices) if text else None
    return Candidate(
        index=index,
        text=text,
        tokens=n,
        finish_reason=reason,
        mean_logprob=mean,
        answer=found.text if found else None,
        answer_key=found.key if found else None,
        score=score,
    )


def complete(cands: Sequence[Candidate]) -> list[Candidate]:
    """Candidates that ended on their own (or whose program ran); when none did, all of them (the best
    we have)."""
    done = [c for c in cands if c.finish_reason == FINISH_STOP or c.votes]
    return done or list(cands)


def ended(cands: Sequence[Candidate]) -> int:
    """How many candidates ended on their own, answer or not: the denominator of a vote's confidence. A
    sample cut by a stop, the budget or Ctrl-C (or a program never run) is no evidence either way."""
    return sum(c.ended for c in cands)


def shown_answer(c: Candidate) -> str:
    """What to print for a chosen candidate: its extracted answer, else its whole text."""
    return c.answer if c.answer is not None else c.text


def stopped_because(ctx: RunContext, done: bool, early_stop: bool = False) -> str:
    """`interrupted` (Ctrl-C), `early-stop`, `completed` (it did all it meant to), `budget` (its tokens
    ran out) or `deadline` (its time did)."""
    if ctx.interrupted:
        return "interrupted"
    if early_stop:
        return "early-stop"
    return "completed" if done else ctx.budget.cut_by
