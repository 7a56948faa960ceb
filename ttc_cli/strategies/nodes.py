"""A search tree's nodes: one reasoning step each, the sequence that can extend it, and its scores.

A node holds a KV sequence only while it may still be extended; `exhausted` is kept up to date as nodes
finish, close or grow children, so MCTS selection reads a flag instead of walking every subtree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ttc_cli.engine.sequence import FINISH_BUDGET, FINISH_LENGTH, FINISH_STOP
from ttc_cli.engine.sequence import Sequence as KvSeq
from ttc_cli.events import Candidate
from ttc_cli.strategies.candidates import Step, from_steps
from ttc_cli.verifiers.base import Path, PathStep

OPEN, GENERATING, EXPANDED, PRUNED, FINISHED = "open", "generating", "expanded", "pruned", "finished"


@dataclass(eq=False)
class Node:
    id: int
    parent: Node | None
    depth: int = 0
    text: str = ""
    tokens: tuple[int, ...] = ()  # the step's generated tokens
    mean_logprob: float = 0.0
    finish: str | None = None  # why the step's decoding ended (engine finish reason)
    final: bool = False  # the solution ends with this step
    eog: bool = False  # the step ends with the end-of-generation token
    truncated: bool = False  # final only because the solution reached its length cap
    answer: str | None = None
    score: float | None = None  # the verifier's score of this step (or of its lookahead)
    value: float | None = None  # the path's score
    status: str = GENERATING
    seq: KvSeq | None = None
    children: list[Node] = field(default_factory=list)
    path_tokens: int = 0  # tokens generated from the root through this node
    visits: int = 0  # MCTS
    total: float = 0.0  # MCTS: sum of backed-up values
    exhausted: bool = False  # nothing below can grow: a closed leaf, or every child exhausted (`refresh`)

    def take(self, seq: KvSeq) -> None:
        """Read this node's step from the sequence that wrote it: its tokens, text, confidence and end."""
        self.tokens = tuple(seq.generated)
        self.text = bytes(seq.text_bytes).decode("utf-8", errors="replace")
        self.mean_logprob = seq.mean_logprob
        self.finish = seq.finish_reason

    def lineage(self) -> list[Node]:
        """The steps from the first to this one (the root, the prompt, has none)."""
        out: list[Node] = []
        node: Node | None = self
        while node is not None and node.parent is not None:
            out.append(node)
            node = node.parent
        return out[::-1]

    def path(self, extra: Iterable[PathStep] = (), whole: bool = False) -> Path:
        steps = [PathStep(n.text, n.judge_tokens, n.id, n.mean_logprob) for n in self.lineage()]
        return Path(tuple(steps) + tuple(extra), whole)

    @property
    def judge_tokens(self) -> tuple[int, ...]:
        return self.tokens[:-1] if self.eog else self.tokens

    def steps(self) -> list[Step]:
        """The path's steps as (text, tokens, mean log-probability), for `candidates.from_steps`."""
        return [(n.text, len(n.tokens), n.mean_logprob) for n in self.lineage()]

    @property
    def path_text(self) -> str:
        return "".join(n.text for n in self.lineage())

    @property
    def dead(self) -> bool:
        """Cut off by the budget or Ctrl-C: it cannot be extended or trusted as a whole step."""
        return self.finish not in (None, FINISH_STOP, FINISH_LENGTH)

    def refresh(self) -> None:
        """Recompute `exhausted` here and up the path while it changes: O(depth × branching) per change,
        so MCTS selection reads a flag instead of walking every subtree it passes."""
        node: Node | None = self
        while node is not None:
            if node.children:
                now = all(ch.exhausted for ch in node.children)
            else:
                now = node.final or node.dead or (node.seq is None and node.status != GENERATING)
            if now == node.exhausted:
                return
            node.exhausted = now
            node = node.parent


@dataclass(frozen=True)
class Rollout:
    """A rollout that reached the end of the solution: a whole answer that never joined the tree."""

    node: Node  # the tree node it continued
    steps: tuple[PathStep, ...]
    value: float


def candidate(
    node: Node, index: int, choices: tuple[str, ...] = (), unfinished: str = FINISH_BUDGET
) -> Candidate:
    """A path as a candidate solution: its text, answer, length and score."""
    if node.final:
        reason = FINISH_LENGTH if node.truncated else FINISH_STOP
    else:
        reason = node.finish if node.dead and node.finish else unfinished
    return from_steps(node.steps(), index, choices, reason, node.value)


def rollout_candidate(rollout: Rollout, index: int, choices: tuple[str, ...] = ()) -> Candidate:
    """A finished rollout as a candidate: its node's path, then the rollout's steps."""
    steps = rollout.node.steps() + [(s.text, len(s.tokens), s.mean_logprob) for s in rollout.steps]
    return from_steps(steps, index, choices, FINISH_STOP, rollout.value)
