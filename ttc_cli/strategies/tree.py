"""The search tree shared by beam, lookahead and MCTS: nodes are reasoning steps over a KV-forking cache.

Each node holds a sequence while it may still be extended. A child forks its parent's sequence (the
parent's cached cells are shared, only its pending last token is evaluated again), decodes one step, and
stops at the step delimiter (a blank line by default), the per-step token cap, or the end of the solution.
All children of a round decode together, one forward pass per token. A node that will not be extended
(expanded, pruned, finished) releases its sequence at once, and its slot is reused, so a long search
never runs out of the context's sequences. Every change is an event with node and parent ids, and the
final tree is data (`TreeNode`s) for `--json`.

A search spends its budget in two places, steps and the verifier's judgements; `BudgetSlice` lets it
give the steps only what the judgements leave, so a round is never cut off before it can be scored.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import replace

from ttc_cli.answers.extract import extract_answer
from ttc_cli.budget import BudgetSlice
from ttc_cli.engine.decoder import Decoder
from ttc_cli.engine.sequence import FINISH_LENGTH, FINISH_STOP, KvNeeds
from ttc_cli.engine.sequence import Sequence as KvSeq
from ttc_cli.events import (
    Event,
    NodeCreated,
    NodeExpanded,
    NodeFinished,
    NodePruned,
    NodeScored,
    NodeStep,
    Phase,
    TokensGenerated,
    TreeNode,
)
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.nodes import EXPANDED, FINISHED, OPEN, PRUNED, Node
from ttc_cli.verifiers.base import PathStep, Verifier, aggregate

FINAL_SOURCES = ("boxed", "answer-is", "gsm8k")  # a step that states its answer this way ends the solution


def search_needs(ctx: RunContext, branches: int, open_paths: int) -> KvNeeds:
    """What a search holds at once at most, with `branches` new steps a round and `open_paths` paths kept.

    Cells: the prompt, the live part of the tree (open paths, the round's steps and their rollouts, never
    more than the budget), and the judge's copy of it (the judge keeps each open node's path cached under
    its own prompt, retokenized at most twice as long) plus a judge prompt per branch judged at once.
    Sequences: the open nodes and the round's branches, twice (policy and judge), plus prompts.
    """
    p, max_tokens = ctx.search, ctx.sampling.max_tokens
    judge = 0
    if p.verifier == "judge":
        from ttc_cli.verifiers.judge import judge_prompt_length

        judge = judge_prompt_length(ctx.verifier_engine or ctx.engine, ctx.question)
    live = min(ctx.budget.limit, open_paths * max_tokens + branches * p.step_tokens * (1 + p.lookahead))
    judged = 2 * live + judge * (branches + 2) if judge else 0
    cells = len(ctx.prompt_tokens) + branches + live + judged + 16
    return KvNeeds(cells, 4 + 2 * (open_paths + 2 * branches))


def open_tree(ctx: RunContext) -> Tree:
    """A search tree with the run's verifier; the tree owns the verifier and closes it with itself."""
    verifier = ctx.open_verifier()
    try:
        return Tree(ctx, verifier)
    except BaseException:
        verifier.close()
        raise


class Tree:
    def __init__(self, ctx: RunContext, verifier: Verifier) -> None:
        self.ctx = ctx
        self.engine = ctx.engine
        self.p = ctx.search
        self.verifier = verifier
        self.max_tokens = ctx.sampling.max_tokens
        self.nodes: list[Node] = []
        self.root = self.add(None)
        self.root.status = OPEN
        self.rollout_tokens = 0

    def add(self, parent: Node | None) -> Node:
        """A new node under `parent` (None: the root), still without a step."""
        node = Node(len(self.nodes), parent, 0 if parent is None else parent.depth + 1)
        if parent is not None:
            parent.children.append(node)
        self.nodes.append(node)
        return node

    def start(self) -> Iterator[Event]:
        """Evaluate the prompt: the root, which every path forks."""
        yield Phase("prefill", f"{len(self.ctx.prompt_tokens)} prompt tokens")
        self.root.seq = self.engine.prefill(self.ctx.prompt_tokens, self.ctx.stop)
        yield NodeCreated(self.root.id, None, 0)

    # ---- budget ------------------------------------------------------------------------------------
    def judge_cost(self, n_paths: int) -> int:
        """Tokens to hold back for scoring `n_paths`: all of it when affordable, else half the rest."""
        want = n_paths * self.verifier.tokens_per_path
        return min(want, self.ctx.budget.remaining // 2)

    def _decoder(self, limit: int) -> Decoder | None:
        limit = min(limit, self.ctx.budget.remaining)
        if limit < 1:
            return None
        return self.engine.decoder(BudgetSlice(limit, parent=self.ctx.budget), self.ctx.stop)

    def _run(self, decoder: Decoder) -> Generator[Event, None, None]:
        for step in decoder:
            if step.sampled:
                yield TokensGenerated(self.ctx.budget.spent, ())

    # ---- growing ----------------------------------------------------------------------------------
    def expand(
        self, parents: list[Node], m: int, limit: int, temperature: float | None = None
    ) -> Generator[Event, None, list[Node]]:
        """Sample `m` next steps of every parent in one batch, spending at most `limit` tokens."""
        decoder = self._decoder(limit)
        if decoder is None:
            return []
        children: list[Node] = []
        base = (
            self.ctx.sampling if temperature is None else replace(self.ctx.sampling, temperature=temperature)
        )
        for parent in parents:
            assert parent.seq is not None, "only a node that holds its sequence can be expanded"
            for _ in range(m):
                child = self.add(parent)
                child.seq = self.engine.fork(parent.seq)
                cap = min(self.p.step_tokens, self.max_tokens - parent.path_tokens)
                params = replace(
                    base, seed=base.seed + child.id, stop=(self.p.delimiter,), max_tokens=max(1, cap)
                )
                decoder.add(child.seq, params)
                children.append(child)
                yield NodeCreated(child.id, parent.id, child.depth)
            parent.status = EXPANDED
            yield NodeExpanded(parent.id)
        yield from self._run(decoder)
        for child in children:
            self._settle(child)
            yield NodeStep(child.id, child.text, len(child.tokens), child.final)
        return children

    def _settle(self, node: Node) -> None:
        seq = node.seq
        assert seq is not None and node.parent is not None
        node.take(seq)
        node.path_tokens = node.parent.path_tokens + len(node.tokens)
        node.eog = bool(node.tokens) and self.engine.is_eog(node.tokens[-1])
        found = extract_answer(node.path_text, self.ctx.choices) if node.path_text.strip() else None
        node.answer = found.text if found else None
        ended = _ends(seq, node.text, self.ctx.choices)
        capped = node.path_tokens >= self.max_tokens
        node.final = not node.dead and (ended or capped)
        node.truncated = node.final and capped and not ended
        node.status = OPEN
        node.refresh()

    def rollout(
        self, nodes: list[Node], steps: int, limit: int, temperature: float = 0.0, seeds: int = 1
    ) -> Generator[Event, None, dict[tuple[int, int], list[PathStep]]]:
        """Continue each node `steps` steps ahead (greedy by default) without adding them to the tree.

        Returns the rollout steps per (node id, rollout index); a rollout ends early at the end of the
        solution. Rollout sequences are released before this returns.
        """
        out: dict[tuple[int, int], list[PathStep]] = {}
        decoder = self._decoder(limit)
        if decoder is None or steps < 1:
            return out
        owner: dict[KvSeq, tuple[Node, int]] = {}
        yield Phase("rollout", f"{len(nodes) * seeds} rollouts of up to {steps} steps")
        for node in nodes:
            if node.final or node.dead or node.seq is None:
                continue
            for r in range(seeds):
                seq = self.engine.fork(node.seq)
                owner[seq] = (node, r)
                out[(node.id, r)] = []
                decoder.add(seq, self._rollout_params(node, 0, temperature, r))
        try:
            for step in decoder:
                if step.sampled:
                    yield TokensGenerated(self.ctx.budget.spent, ())
                for seq in step.finished:
                    node, r = owner[seq]
                    done = out[(node.id, r)]
                    toks = seq.generated
                    eog = bool(toks) and self.engine.is_eog(toks[-1])
                    text = bytes(seq.text_bytes).decode("utf-8", errors="replace")
                    self.rollout_tokens += len(toks)
                    used = node.path_tokens + sum(len(s.tokens) for s in done) + len(toks)
                    whole = seq.finish_reason in (FINISH_STOP, FINISH_LENGTH)
                    ends = whole and (_ends(seq, text, self.ctx.choices) or used >= self.max_tokens)
                    step_toks = tuple(toks[:-1] if eog else toks)
                    done.append(PathStep(text, step_toks, None, seq.mean_logprob, ends))
                    if whole and not ends and len(done) < steps:
                        decoder.add(seq, self._rollout_params(node, used - node.path_tokens, temperature, r))
        finally:
            for seq in owner:
                self.engine.release(seq)
        return out

    def _rollout_params(self, node: Node, used: int, temperature: float, r: int):  # type: ignore[no-untyped-def]
        cap = min(self.p.step_tokens, self.max_tokens - node.path_tokens - used)
        seed = self.ctx.sampling.seed + 7919 * (node.id + 1) + r
        return replace(
            self.ctx.sampling,
            temperature=temperature,
            seed=seed,
            stop=(self.p.delimiter,),
            max_tokens=max(1, cap),
        )

    # ---- scoring ----------------------------------------------------------------------------------
    def score(
        self, nodes: list[Node], extra: dict[int, list[PathStep]] | None = None
    ) -> Generator[Event, None, None]:
        """Score each node's path (plus its rollout steps in `extra`, if any) and set score and value."""
        todo = [n for n in nodes if n.tokens and not n.dead]
        paths = [n.path((extra or {}).get(n.id, ())) for n in todo]
        if paths and self.verifier.tokens_per_path:
            yield Phase("judge", f"{len(paths)} steps")
        scores = self.verifier.score(paths) if paths else []
        for node, s in zip(todo, scores, strict=True):
            node.score = s
            node.value = aggregate([n.score for n in node.lineage()], self.p.aggregate)
            yield NodeScored(node.id, node.score, node.value)
        if paths:
            yield TokensGenerated(self.ctx.budget.spent, ())

    # ---- ending nodes -----------------------------------------------------------------------------
    def release(self, node: Node) -> None:
        """The node will not be extended: free its sequence and the verifier's state for it."""
        if node.seq is not None:
            self.engine.release(node.seq)
            node.seq = None
        node.refresh()
        self.verifier.forget([node.id])

    def prune(self, node: Node) -> Event:
        self.release(node)
        node.status = PRUNED
        return NodePruned(node.id)

    def finish(self, node: Node) -> Event:
        self.release(node)
        node.status = FINISHED
        return NodeFinished(node.id, node.answer)

    def close(self) -> None:
        for node in self.nodes:
            if node.seq is not None:
                self.engine.release(node.seq)
                node.seq = None
        self.verifier.close()

    # ---- results ----------------------------------------------------------------------------------
    def to_json(self) -> tuple[TreeNode, ...]:
        return tuple(
            TreeNode(
                n.id,
                n.parent.id if n.parent else None,
                n.text.strip(),
                n.score,
                n.value,
                n.status,
                len(n.tokens),
            )
            for n in self.nodes
        )

    def usage(self) -> tuple[tuple[str, int], ...]:
        counts = {
            "tree_tokens": sum(len(n.tokens) for n in self.nodes),
            "rollout_tokens": self.rollout_tokens,
        }
        counts.update(self.verifier.usage)
        return tuple(counts.items())


def _ends(seq: KvSeq, text: str, choices: tuple[str, ...]) -> bool:
    """The step ends the solution: generation ended (not at a step delimiter), or it states its answer."""
    if seq.finish_reason == FINISH_STOP and seq.text_end is None:
        return True
    stated = extract_answer(text, choices) if text.strip() else None
    return stated is not None and stated.source in FINAL_SOURCES
