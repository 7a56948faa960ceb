"""beam: step-level beam search guided by a process verifier.

Each round, every unfinished beam samples M next steps (all in one batch, forked from the beam's cache);
the verifier scores each new step; the W best paths by aggregated score survive, finished solutions
competing with unfinished ones. The rest are pruned and release their cache. The search ends when every
surviving beam has a final answer or the budget runs out; the answer is the best finished beam's (or a
vote among finished beams with --pick vote). `lookahead` reuses this loop with a different step score.
"""

from __future__ import annotations

from collections.abc import Iterator

from ttc_cli.engine.sequence import KvNeeds
from ttc_cli.events import Event
from ttc_cli.strategies.candidates import stopped_because
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.nodes import FINISHED, Node
from ttc_cli.strategies.pick import conclude
from ttc_cli.strategies.tree import open_tree, search_needs

DESCRIPTION = "step-level beam search: W beams, M next steps each, keep the W the verifier scores best"


def rank(node: Node) -> tuple[bool, float, int]:
    """Scored before unscored, then by path score; ties go to the older node."""
    return (node.value is not None, node.value if node.value is not None else 0.0, -node.id)


def select(pool: list[Node], width: int) -> tuple[list[Node], list[Node]]:
    """The `width` best nodes of `pool` and the rest."""
    ranked = sorted(pool, key=rank, reverse=True)
    return ranked[:width], ranked[width:]


def needs(ctx: RunContext) -> KvNeeds:
    return search_needs(ctx, ctx.search.beams * ctx.search.expansions, ctx.search.beams)


def run(ctx: RunContext) -> Iterator[Event]:
    yield from search(ctx, lookahead=0)


def search(ctx: RunContext, lookahead: int) -> Iterator[Event]:
    p = ctx.search
    tree = open_tree(ctx)
    try:
        yield from tree.start()
        beams = [tree.root]
        while not ctx.interrupted and ctx.budget.remaining > 0:
            active = [b for b in beams if not b.final]
            if not active:
                break
            hold = tree.judge_cost(len(active) * p.expansions)
            children = yield from tree.expand(active, p.expansions, ctx.budget.remaining - hold)
            extra = None
            if lookahead:
                live = [c for c in children if not c.final and not c.dead]
                limit = ctx.budget.remaining - tree.judge_cost(len(children))
                rolls = yield from tree.rollout(live, lookahead, limit)
                extra = {node_id: steps for (node_id, _), steps in rolls.items()}
            yield from tree.score(children, extra)
            for parent in active:  # only now: the judge continued from the parents' cached paths
                tree.release(parent)
            alive = [c for c in children if c.tokens and not c.dead]
            for c in children:
                if c not in alive:
                    yield tree.prune(c)
            if not alive and not any(b.final for b in beams):
                beams = active  # nothing new survived (the budget ran out mid-step): keep what we had
                break
            keep, drop = select([b for b in beams if b.final] + alive, p.beams)
            for node in drop:
                yield tree.prune(node)
            for node in keep:
                if node.final and node.status != FINISHED:
                    yield tree.finish(node)
            beams = keep
        done = all(b.final for b in beams) and not ctx.interrupted
        what = "finished beams" if any(b.final for b in beams) else "beams"
        yield conclude(ctx, tree, beams, stopped_because(ctx, done), what)
    finally:
        tree.close()
