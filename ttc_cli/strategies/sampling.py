"""Shared by the sampling strategies: N candidates from one prefill, decoded in batches, stopped early.

The prompt is evaluated once; each candidate is a fork of it with its own seeded sampler, and all live
candidates advance together in one forward pass per step. Finished candidates release their cache at once.

With early stopping on, at most `width` candidates decode at once and a new one starts as one finishes:
a stop decided after the k-th sample then saves the tokens of every sample not yet started, whereas with
all N in flight it would save only their unfinished tails (samples also finish shortest-first in a batch,
which biases early votes). After each finished candidate the vote is checked (`VoteStop`); with the
`deepconf` rule every token of a live trace also updates its group confidence (`TraceFilter`), and a trace
that falls below the warm-up threshold is cancelled mid-way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from ttc_cli.engine.base import (
    FINISH_BUDGET,
    FINISH_INTERRUPTED,
    FINISH_LENGTH,
    FINISH_STOP,
    KvNeeds,
    Sequence,
)
from ttc_cli.engine.forcing import BudgetForcing, forced_cells, prompt_opens_thinking
from ttc_cli.events import (
    Candidate,
    CandidateFinished,
    CandidateStarted,
    EarlyStop,
    Event,
    ThinkingForced,
    TokensGenerated,
    TraceCancelled,
    VotesUpdated,
)
from ttc_cli.strategies.context import RunContext
from ttc_cli.verifiers.answers import extract_answer
from ttc_cli.verifiers.confidence import (
    CONFIDENCE_WINDOW,
    lowest_group_confidence,
    token_confidence,
    token_confidences,
)
from ttc_cli.verifiers.early_stop import RULE_DEEPCONF, StopDecision, TraceFilter, VoteStop
from ttc_cli.verifiers.scoring import SCORERS, vote_weight
from ttc_cli.verifiers.voting import VoteTally

CUT_SHORT = (FINISH_BUDGET, FINISH_INTERRUPTED)

# Decides after each finished candidate: (tally, finished, total) -> a decision to stop, or None.
Stopper = Callable[[VoteTally, int, int], StopDecision | None]


@dataclass
class Sampled:
    """What a `sample` run produced, filled in as it goes."""

    candidates: list[Candidate] = field(default_factory=list)
    tally: VoteTally = field(default_factory=VoteTally)
    early_stop: EarlyStop | None = None
    unstarted: int = 0  # samples never started because the budget ran out first
    limit: int | None = None  # a stopper may lower N while sampling runs (`auto` does)

    def target(self, n: int) -> int:
        return n if self.limit is None else min(n, self.limit)


def needs(ctx: RunContext) -> KvNeeds:
    """What N samples hold at once at most: the shared prompt, each fork's copy of its last token, every
    token the budget lets them generate, and what budget forcing appends (from its texts' real tokens);
    best-of-n judged by a model adds its judgements."""
    n, max_tokens = ctx.samples, ctx.sampling.max_tokens
    generated = min(ctx.budget.limit, n * max_tokens)
    forced = forced_cells(ctx.engine, ctx.thinking, max_tokens) if ctx.thinking is not None else 0
    need = KvNeeds(len(ctx.prompt_tokens) + n * (1 + forced) + generated + 1, n + 1)
    if ctx.search.verify_samples and ctx.search.verifier == "judge":
        from ttc_cli.verifiers.judge import judge_needs

        need += judge_needs(ctx.verifier_engine or ctx.engine, ctx.question, n, generated)
    return need


def default_stopper(ctx: RunContext) -> Stopper | None:
    if ctx.early is None:
        return None
    rule = VoteStop(ctx.early.rule, ctx.early.confidence)
    return lambda tally, finished, total: rule.check([v.weight for v in tally.snapshot()], finished, total)


def sample(
    ctx: RunContext,
    n: int,
    out: Sampled,
    temperature: float | None = None,
    show_votes: bool = False,
    stopper: Stopper | None = None,
) -> Iterator[Event]:
    """Generate up to `n` candidates into `out`, yielding progress, finished candidates and early stops.

    `stopper` defaults to the run's early-stopping rule; pass one to decide differently (`auto` does).
    """
    engine = ctx.engine
    base = ctx.sampling if temperature is None else replace(ctx.sampling, temperature=temperature)
    stopper = stopper or default_stopper(ctx)
    early = ctx.early
    width = min(n, early.width) if early is not None and n > 1 else n
    traces = (
        TraceFilter(early.warmup, early.window, early.keep)
        if early is not None and early.rule == RULE_DEEPCONF and n > 1
        else None
    )
    weighted = out.tally.weighted
    root = engine.prefill(ctx.prompt_tokens, ctx.stop)
    decoder = engine.decoder(ctx.budget, ctx.stop)
    index: dict[Sequence, int] = {}
    started = 0
    stopping = False
    opens_thinking = ctx.thinking is not None and prompt_opens_thinking(
        engine, ctx.prompt_tokens, ctx.thinking
    )

    def start_more() -> Iterator[Event]:
        nonlocal started
        while started < out.target(n) and len(decoder.live) < width and not stopping:
            if ctx.interrupted or ctx.budget.remaining <= 0:
                break
            seq = engine.fork(root)
            decoder.add(seq, replace(base, seed=base.seed + started))
            index[seq] = started
            if ctx.thinking is not None:
                seq.forcing = BudgetForcing(ctx.thinking)
                if opens_thinking:
                    seq.forcing.starts_inside()
            if traces is not None:
                traces.start(started)
            yield CandidateStarted(started)
            started += 1

    try:
        yield from start_more()
        while decoder.live:
            step = decoder.step()
            cancelled: list[tuple[Sequence, float | None]] = []
            if step.sampled:
                progress = tuple((index[s], s.n_generated) for s, _ in step.sampled)
                yield TokensGenerated(ctx.budget.spent, progress)
                for seq, _ in step.sampled:
                    if seq.forcing is not None and len(seq.forcing.actions) > seq.forcing.reported:
                        for action, at in seq.forcing.actions[seq.forcing.reported :]:
                            yield ThinkingForced(index[seq], action, at)
                        seq.forcing.reported = len(seq.forcing.actions)
                if traces is not None:
                    for seq, _ in step.sampled:
                        if seq.finish_reason is None and seq.top_logprobs:
                            low = traces.observe(index[seq], token_confidence(seq.top_logprobs[-1]))
                            if low is not None:
                                decoder.cancel(seq)
                                cancelled.append((seq, low))
            ended = [(seq, None) for seq in step.finished] + cancelled
            for seq, low in ended:
                if low is not None:
                    assert traces is not None and traces.threshold is not None
                    yield TraceCancelled(index[seq], seq.n_generated, low, traces.threshold)
                yield from _finish(ctx, out, index[seq], seq, traces, show_votes, weighted)
                engine.release(seq)
                # A sample cut by the budget or Ctrl-C says nothing about the answer: no decision on it.
                if not stopping and stopper is not None and seq.finish_reason not in CUT_SHORT:
                    decision = stopper(out.tally, len(out.candidates), out.target(n))
                    if decision is not None:
                        stopping = True
                        yield from _stop(ctx, out, decision, decoder.live, out.target(n))
            if stopping:
                for seq in list(decoder.live):
                    decoder.cancel(seq)
                    yield from _finish(ctx, out, index[seq], seq, traces, show_votes, weighted)
                    engine.release(seq)
            yield from start_more()
    finally:
        engine.release(root)
        for seq in index:
            engine.release(seq)
    if not stopping and not ctx.interrupted and ctx.budget.remaining <= 0:
        out.unstarted = max(0, out.target(n) - started)
    if not out.candidates:
        # Stopped before any sample started (Ctrl-C during the prefill): an empty candidate, so every
        # strategy still has one to report instead of special-casing an empty pool.
        reason = FINISH_INTERRUPTED if ctx.interrupted else FINISH_BUDGET
        empty = Candidate(index=0, text="", tokens=0, finish_reason=reason, mean_logprob=0.0)
        out.candidates.append(empty)
        yield CandidateFinished(empty)


def _finish(
    ctx: RunContext,
    out: Sampled,
    i: int,
    seq: Sequence,
    traces: TraceFilter | None,
    show_votes: bool,
    weighted: bool,
) -> Iterator[Event]:
    c = to_candidate(ctx, i, seq)
    out.candidates.append(c)
    if traces is not None:
        # A trace cut by its length cap still shows how confident the model was: it warms up the filter.
        traces.finish(i, counted=c.finish_reason in (FINISH_STOP, FINISH_LENGTH))
    yield CandidateFinished(c)
    if c.answer_key is not None and c.finish_reason == FINISH_STOP:
        out.tally.add(c.answer_key, c.answer or "", vote_weight(c.mean_logprob) if weighted else 1.0)
        if show_votes:
            yield VotesUpdated(out.tally.snapshot())


def _stop(
    ctx: RunContext,
    out: Sampled,
    decision: StopDecision,
    live: list[Sequence],
    n: int,
) -> Iterator[Event]:
    done = [c.tokens for c in out.candidates if c.finish_reason == FINISH_STOP]
    typical = sum(done) / len(done) if done else ctx.sampling.max_tokens
    in_flight = sum(max(0.0, typical - s.n_generated) for s in live)
    not_started = n - len(out.candidates) - len(live)
    # What the rest would have cost, capped by what the budget could still have paid for.
    saved = min(round(typical * not_started + in_flight), ctx.budget.remaining)
    finished = len(out.candidates)
    out.early_stop = EarlyStop(decision.rule, decision.detail, finished, n, ctx.budget.spent, saved)
    yield out.early_stop


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
        forced=tuple(seq.forcing.actions) if seq.forcing is not None else (),
        confidence=lowest_group_confidence(
            token_confidences(seq.top_logprobs), ctx.early.window if ctx.early else CONFIDENCE_WINDOW
        )
        if seq.top_logprobs
        else None,
    )


def complete(cands: list[Candidate]) -> list[Candidate]:
    """Candidates that ended on their own; when none did, all of them (the best we have)."""
    done = [c for c in cands if c.finish_reason == FINISH_STOP]
    return done or list(cands)


def stopped_because(out: Sampled, ctx: RunContext) -> str:
    reasons = {c.finish_reason for c in out.candidates}
    if FINISH_INTERRUPTED in reasons or ctx.interrupted:
        return "interrupted"
    if out.early_stop is not None:
        return "early-stop"
    if FINISH_BUDGET in reasons or out.unstarted:
        return "budget"
    return "completed"


def shown_answer(c: Candidate) -> str:
    """What to print for a chosen candidate: its extracted answer, else its whole text."""
    return c.answer if c.answer is not None else c.text
