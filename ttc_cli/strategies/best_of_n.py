"""best-of-n: sample N candidates and keep the one the scorer likes best.

The default scorer is the mean token log-probability (length-normalised likelihood); `--scorer confidence`
uses DeepConf's token confidence; `--verifier judge` (or any verifier) scores whole solutions instead,
after holding back the tokens the judgements need. Only candidates that finished on their own compete,
unless none did. With early stopping, sampling ends once the candidates' answers agree (the same rules as
self-consistency), and the best-scored of the candidates drawn so far is kept.

With candidates that are programs (`--task program|hybrid`) and no `--verifier`, execution is the scorer:
a candidate scores the share of the candidates that ended whose answers (printed by a program that ran,
or stated) agree with its own; a program that crashed, timed out or printed nothing scores 0.

The answer's confidence is the vote's measure applied to the kept answer, whatever chose it: (the
candidates that ended agreeing with it + 1) / (the candidates that ended + 2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

from ttc_cli.answers.confidence import agreement_confidence
from ttc_cli.budget import BudgetSlice
from ttc_cli.events import Candidate, Event, Final, Phase
from ttc_cli.strategies.candidates import complete, ended, shown_answer
from ttc_cli.strategies.code import choose_code
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.sampling import Sampled, sample
from ttc_cli.verifiers.base import Path, PathStep

DESCRIPTION = "N samples, keep the one with the best score (mean log-prob by default)"


def run(ctx: RunContext) -> Iterator[Event]:
    if ctx.code is not None:  # code: its tests are the verifier
        out = Sampled()
        yield from sample(ctx, ctx.samples, out)
        drawn = f"best of {len(out.candidates)} by their tests"
        yield choose_code(
            out.candidates, ctx.code, "agreement", drawn, out.stopped_because(ctx), out.early_stop
        )
        return
    verifier = ctx.open_verifier() if ctx.search.verify_samples else None
    # A verifier that spends tokens gets them held back, so every candidate can be judged.
    hold = min(ctx.samples * verifier.tokens_per_path, ctx.budget.remaining // 2) if verifier else 0
    sampling_ctx = (
        replace(ctx, budget=BudgetSlice(ctx.budget.remaining - hold, parent=ctx.budget)) if hold else ctx
    )
    out = Sampled()
    usage: tuple[tuple[str, int], ...] = ()
    try:
        yield from sample(sampling_ctx, ctx.samples, out)
        cands = out.candidates
        if verifier is not None:
            if verifier.tokens_per_path:
                yield Phase("judge", f"{len(cands)} candidates")
            steps = [PathStep(c.text, (), None, c.mean_logprob, length=c.tokens) for c in cands]
            paths = [Path((step,), whole=True) for step in steps]
            cands = [replace(c, score=s) for c, s in zip(cands, verifier.score(paths), strict=True)]
            usage = tuple(verifier.usage.items())
    finally:
        if verifier is not None:
            verifier.close()
    by = ctx.search.verifier if verifier is not None else ctx.scorer
    if verifier is None and ctx.program_share > 0:
        cands = by_execution(cands)
        by = "execution (the share of answers that agree with its printed one)"
    pool = complete(cands)
    best = max(pool, key=lambda c: (c.score if c.score is not None else float("-inf"), -c.index))
    score = f"{best.score:.3f}" if best.score is not None else "none"
    agreeing = sum(c.votes and c.answer_key == best.answer_key for c in cands) if best.votes else 0
    yield Final(
        answer=shown_answer(best),
        response=best.text,
        selection=f"best of {len(pool)} by {by} (score {score})",
        stopped_because=out.stopped_because(ctx),
        candidates=tuple(cands),
        chosen=best.index,
        early_stop=out.early_stop,
        usage=usage,
        confidence=agreement_confidence(agreeing, ended(cands)),
    )


def by_execution(cands: list[Candidate]) -> list[Candidate]:
    """Score each candidate by the share of ended candidates agreeing with its (executed) answer."""
    agree = Counter(c.answer_key for c in cands if c.votes)
    n = max(1, ended(cands))
    return [replace(c, score=agree[c.answer_key] / n if c.votes else 0.0) for c in cands]
