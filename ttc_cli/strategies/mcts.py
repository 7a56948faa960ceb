"""mcts: Monte Carlo tree search over reasoning steps.

Each iteration selects a leaf by UCT from the root (an unvisited child first, then the child maximising
mean value + c·sqrt(ln N / n), `--exploration c`), expands it with M sampled next steps (one batch),
values each new step, and backs the values up to the root. A step's value is the verifier's path score;
with `--rollouts R` it is also rolled out to the end of the solution R times (greedy when R is 1) and
the value becomes the mean, over rollouts, of the verifier's score of the rollout's last step and the
share of all answers seen so far that agree with the rollout's answer. A rollout that reaches an answer
is a whole solution too, so it competes with the tree's finished paths (with the value it got); the
answer is the best of them by value (or a vote with --pick vote).

Only open leaves keep a KV sequence (an expanded node's children share its cells); when more than
`MCTS_MAX_OPEN` leaves are open, the least valuable are closed, so the search never runs out of the
context's sequences however long it runs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator

from ttc_cli.answers.extract import extract_answer
from ttc_cli.engine.sequence import FINISH_BUDGET, KvNeeds
from ttc_cli.events import Event, NodeScored
from ttc_cli.strategies.candidates import stopped_because
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.nodes import PRUNED, Node, Rollout
from ttc_cli.strategies.pick import conclude
from ttc_cli.strategies.tree import Tree, open_tree, search_needs
from ttc_cli.verifiers.base import PathStep

DESCRIPTION = "Monte Carlo tree search over steps: UCT selection, verifier values (and rollouts)"
ROLLOUT_STEPS = 1000  # to the end of the solution; the solution's length cap stops it first


def needs(ctx: RunContext) -> KvNeeds:
    """A search whose open leaves stop at `max_open`, with M steps a round each rolled out R times."""
    p = ctx.search
    return search_needs(ctx, p.expansions * max(1, p.rollouts), p.max_open)


def mean(node: Node) -> float:
    return node.total / node.visits if node.visits else 0.0


def uct_pick(children: list[Node], parent_visits: int, c: float) -> Node:
    """The child to descend into: an unvisited one first, else the best UCT score (older on ties)."""
    unvisited = [ch for ch in children if ch.visits == 0]
    if unvisited:
        return unvisited[0]
    log_n = math.log(max(parent_visits, 1))
    return max(children, key=lambda ch: (mean(ch) + c * math.sqrt(log_n / ch.visits), -ch.id))


def select(root: Node, c: float) -> Node | None:
    """Descend by UCT through subtrees that can still grow to a leaf to expand; None when none can."""
    if root.exhausted:
        return None
    node = root
    while node.children:
        node = uct_pick([ch for ch in node.children if not ch.exhausted], node.visits, c)
    return node


def backup(node: Node, value: float) -> None:
    walk: Node | None = node
    while walk is not None:
        walk.visits += 1
        walk.total += value
        walk = walk.parent


def run(ctx: RunContext) -> Iterator[Event]:
    p = ctx.search
    tree = open_tree(ctx)
    answers: Counter[str] = Counter()  # every final answer seen, in the tree or in a rollout
    solutions: list[Rollout] = []  # rollouts that reached an answer: candidates beside the tree's paths
    try:
        yield from tree.start()
        while not ctx.interrupted and ctx.budget.remaining > 0:
            leaf = select(tree.root, p.exploration)
            if leaf is None:
                break
            per_child = 1 + p.rollouts
            hold = tree.judge_cost(p.expansions * per_child)
            children = yield from tree.expand([leaf], p.expansions, ctx.budget.remaining - hold)
            if not children:
                tree.release(leaf)
                break
            live = [ch for ch in children if not ch.final and not ch.dead]
            rolls: dict[tuple[int, int], list[PathStep]] = {}
            if p.rollouts:
                limit = ctx.budget.remaining - tree.judge_cost(len(children) + len(live) * p.rollouts)
                temperature = 0.0 if p.rollouts == 1 else ctx.sampling.temperature
                rolls = yield from tree.rollout(live, ROLLOUT_STEPS, limit, temperature, seeds=p.rollouts)
            yield from tree.score(children)
            tree.release(leaf)  # only now: the judge continued from the leaf's cached path
            values = _rollout_values(tree, ctx, children, rolls, answers, solutions)
            for child in children:
                if child.dead or not child.tokens:
                    yield tree.prune(child)
                    continue
                value = values.get(child.id, child.value if child.value is not None else 0.0)
                backup(child, value)
                child.value = mean(child)
                yield NodeScored(child.id, child.score, child.value)
                if child.final:
                    yield tree.finish(child)
            yield from _close_extra_leaves(tree, p.max_open)
        for node in tree.nodes:  # every value is final now: report the mean of what was backed up
            if node.visits:
                node.value = mean(node)
        finished = [n for n in tree.nodes if n.final and n.status != PRUNED]
        pool = finished or _best_leaves(tree)
        # Exhausted with budget left is done; exhausted by a budget-starved round (a step the budget cut
        # short, so nothing was left to extend) is not.
        starved = any(n.finish == FINISH_BUDGET for n in tree.nodes)
        done = select(tree.root, p.exploration) is None and ctx.budget.remaining > 0 and not starved
        what = "finished paths" if finished else "paths"
        if solutions:
            what += " and finished rollouts"
        yield conclude(ctx, tree, pool, stopped_because(ctx, done), what, solutions)
    finally:
        tree.close()


def _rollout_values(
    tree: Tree,
    ctx: RunContext,
    children: list[Node],
    rolls: dict[tuple[int, int], list[PathStep]],
    answers: Counter[str],
    solutions: list[Rollout],
) -> dict[int, float]:
    """Each rolled-out child's value: mean over its rollouts of (verifier score + answer agreement) / 2.

    Rollouts that end the solution with an answer join `solutions`, valued like a node.
    """
    for child in children:
        if child.final and child.answer is not None:
            answers[_key(child.answer, ctx)] += 1
    keys = list(rolls)
    paths = [next(ch for ch in children if ch.id == k[0]).path(rolls[k]) for k in keys]
    scores = tree.verifier.score(paths) if paths else []
    found: dict[tuple[int, int], str | None] = {}
    for k, path in zip(keys, paths, strict=True):
        a = extract_answer(path.text, ctx.choices) if path.text.strip() else None
        found[k] = a.key if a else None
        if a is not None:
            answers[a.key] += 1
    total = sum(answers.values())
    per_child: dict[int, list[float]] = {}
    for k, s in zip(keys, scores, strict=True):
        key = found[k]
        agree = answers[key] / total if key is not None and total else 0.0
        value = ((s if s is not None else 0.5) + agree) / 2
        per_child.setdefault(k[0], []).append(value)
        steps = rolls[k]
        if key is not None and steps and steps[-1].ends:
            solutions.append(Rollout(next(ch for ch in children if ch.id == k[0]), tuple(steps), value))
    return {node_id: sum(v) / len(v) for node_id, v in per_child.items()}


def _key(answer: str, ctx: RunContext) -> str:
    a = extract_answer(answer, ctx.choices)
    return a.key if a else answer


def _close_extra_leaves(tree: Tree, max_open: int) -> Iterator[Event]:
    """Keep at most `max_open` leaves with a sequence: close the least valuable beyond that."""
    open_leaves = [n for n in tree.nodes if n.seq is not None and n.parent is not None and not n.children]
    if len(open_leaves) <= max_open:
        return
    open_leaves.sort(key=lambda n: (mean(n), -n.id))
    for node in open_leaves[: len(open_leaves) - max_open]:
        yield tree.prune(node)


def _best_leaves(tree: Tree) -> list[Node]:
    """With no finished path: the leaves along the most visited route, best first."""
    leaves = [n for n in tree.nodes if n.tokens and not n.children and n.status != PRUNED]
    return sorted(leaves, key=lambda n: (n.visits, mean(n)), reverse=True)[:1] or leaves
