"""How a search ends: choose among its solutions by verifier score (or by a vote) and report the tree."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from ttc_cli.answers.voting import VoteTally
from ttc_cli.engine.sequence import FINISH_BUDGET, FINISH_INTERRUPTED
from ttc_cli.events import Candidate, Final
from ttc_cli.strategies.candidates import shown_answer
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.nodes import Node, Rollout, candidate, rollout_candidate
from ttc_cli.strategies.tree import Tree


def _rank(c: Candidate) -> tuple[bool, float, int]:
    return (c.score is not None, c.score if c.score is not None else -math.inf, -c.index)


def conclude(
    ctx: RunContext, tree: Tree, pool: list[Node], stopped: str, what: str, rollouts: Sequence[Rollout] = ()
) -> Final:
    """The Final event: the best of `pool`'s finished paths and the finished `rollouts` (all of `pool`
    when nothing finished)."""
    finished = [n for n in pool if n.final]
    contenders = finished or (
        [] if rollouts else [n for n in pool if n.tokens] or [n for n in tree.nodes if n.tokens]
    )
    unfinished = FINISH_INTERRUPTED if stopped == "interrupted" else FINISH_BUDGET
    cands = [candidate(n, i, ctx.choices, unfinished) for i, n in enumerate(contenders)]
    cands += [rollout_candidate(r, len(cands) + i, ctx.choices) for i, r in enumerate(rollouts)]
    base = Final(
        answer="",
        response="",
        selection="the budget ran out before the first step",
        stopped_because=stopped,
        candidates=tuple(cands),
        tree=tree.to_json(),
        usage=tree.usage(),
    )
    if not cands:
        return base
    note = "" if finished or rollouts else f" (no {what} finished; from partial solutions)"
    voters = [c for c in cands if c.answer_key is not None]
    if ctx.search.pick == "vote" and voters:
        tally = VoteTally()
        for c in voters:
            tally.add(c.answer_key or "", c.answer or "", 1.0)
        lead = tally.leader()
        assert lead is not None
        best = max((c for c in voters if c.answer_key == lead.key), key=_rank)
        selection = f"vote among {len(cands)} {what}: {lead.count} of {len(voters)} votes{note}"
        return replace(
            base,
            answer=lead.answer,
            response=best.text,
            selection=selection,
            votes=tally.snapshot(),
            chosen=best.index,
        )
    best = max(cands, key=_rank)
    score = f"{best.score:.3f}" if best.score is not None else "none"
    selection = f"best of {len(cands)} {what} by {ctx.search.verifier} score ({score}){note}"
    answer = shown_answer(best)
    return replace(base, answer=answer, response=best.text, selection=selection, chosen=best.index)
