"""self-consistency: sample N chains of thought, extract each final answer, return the plurality.

`--vote weighted` weighs each vote by the candidate's confidence (geometric-mean token probability);
`--vote filtered` lets only the most confident half vote (DeepConf offline: traces ranked by their lowest
sliding-window token confidence).
Only answers that parse vote: candidates that state none are left out of the tally and the output says how
many did. When no candidate states a parseable answer (a proof, an explanation), voting over raw strings
would be meaningless, so the candidate most consistent with the others (a lexical medoid) is chosen
instead, and `selection` says so.
"""

from __future__ import annotations

from collections.abc import Iterator

from ttc_cli.answers.confidence import vote_confidence
from ttc_cli.answers.consistency import most_consistent
from ttc_cli.answers.scoring import vote_weight
from ttc_cli.answers.voting import VoteTally
from ttc_cli.events import Event, Final
from ttc_cli.strategies.candidates import complete, ended
from ttc_cli.strategies.code import choose_code
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.sampling import Sampled, sample

DESCRIPTION = "N samples, majority vote over their final answers (--vote weighted for confidence weights)"


def run(ctx: RunContext) -> Iterator[Event]:
    weighted = ctx.vote == "weighted"
    out = Sampled(tally=VoteTally(weighted=weighted))
    yield from sample(ctx, ctx.samples, out, show_votes=True)
    yield choose(out, ctx, weighted)


def choose(out: Sampled, ctx: RunContext, weighted: bool) -> Final:
    cands = out.candidates
    if ctx.code is not None:  # code: votes by what it does on the tests
        drawn = f"vote over the behaviour of {len(cands)} samples"
        stopped = out.stopped_because(ctx)
        return choose_code(cands, ctx.code, "vote", drawn, stopped, out.early_stop, out.tally.snapshot())
    pool = complete(cands)
    voters = [c for c in pool if c.answer_key is not None]
    none_finished = all(c.finish_reason != "stop" for c in cands)
    note = " (no candidate finished; from partial answers)" if none_finished else ""
    if not voters:
        # A candidate with no text yet (Ctrl-C before its first token) is consistent with nothing.
        written = [c for c in pool if c.text.strip()]
        best = written[most_consistent([c.text for c in written])] if written else pool[0]
        return Final(
            answer=best.text,
            response=best.text,
            selection=f"no parseable final answers among {len(pool)} candidates, so the one most consistent "
            f"with the others was chosen{note}",
            stopped_because=out.stopped_because(ctx),
            candidates=tuple(cands),
            chosen=best.index,
            early_stop=out.early_stop,
        )
    filtered = ""
    if ctx.vote == "filtered" and len(voters) > 1:
        # DeepConf offline: only the most confident half votes, ranked by each trace's weakest window.
        ranked = sorted(voters, key=lambda c: c.trace_confidence or 0.0, reverse=True)
        kept = ranked[: max(1, len(voters) // 2)]
        filtered = f" among the {len(kept)} most confident of {len(voters)}"
        voters = kept
    evidence = len(voters) if filtered else max(ended(cands), len(voters))
    tally = VoteTally(weighted=weighted)
    for c in voters:
        tally.add(c.answer_key or "", c.answer or "", vote_weight(c.mean_logprob) if weighted else 1.0)
    lead = tally.leader()
    assert lead is not None
    backers = [c for c in voters if c.answer_key == lead.key]
    best = max(backers, key=lambda c: c.mean_logprob)
    kind = ("weighted vote" if weighted else "plurality vote") + filtered
    share = (
        f"{lead.weight:.2f} of {sum(v.weight for v in tally.snapshot()):.2f} weight"
        if weighted
        else (f"{lead.count} of {len(voters)} votes")
    )
    unparsed = len(pool) - len(voters)
    extra = f"; {unparsed} candidate(s) stated no parseable answer" if unparsed else ""
    return Final(
        answer=lead.answer,
        response=best.text,
        selection=f"{kind}: {share}{extra}{note}",
        stopped_because=out.stopped_because(ctx),
        candidates=tuple(cands),
        votes=tally.snapshot(),
        chosen=best.index,
        early_stop=out.early_stop,
        confidence=vote_confidence(tally, evidence),
    )
