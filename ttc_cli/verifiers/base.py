"""What every verifier is: it scores a partial solution step by step, or a whole one.

A search hands a verifier `Path`s (the steps from the question to a tree node, plus any rollout steps)
and gets back one score in [0, 1] per path: how likely the latest step (or, for a whole solution, the
solution) is correct, or None when it could not score it (the budget ran out, Ctrl-C). The interface is
three methods, so a new verifier (a test runner, a reward model) is one class and one `VERIFIERS` entry
(`verifiers/__init__.py`), and no strategy changes:

    class MyVerifier(Verifier):
        def score(self, paths): return [1.0 if ok(p.text) else 0.0 for p in paths]

`forget` and `close` exist for verifiers that keep state per tree node (the judge keeps each node's KV
cache so a child's judgement only evaluates the child's own step).

Step scores become a path's score by `aggregate`: `last` (the newest step's), `min` (a chain is as good
as its weakest step), `prod` (all steps right), or `mean`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ttc_cli.budget import TokenBudget
from ttc_cli.engine.base import Engine


@dataclass(frozen=True)
class PathStep:
    text: str
    tokens: tuple[int, ...]  # the policy model's tokens, end-of-generation excluded
    node: int | None = None  # the tree node that holds this step; None for a rollout step
    mean_logprob: float = 0.0
    ends: bool = False  # a rollout step that ends the solution (end of generation, stated answer, cap)
    length: int = 0  # the policy's token count when `tokens` is not given (a whole sampled candidate)


@dataclass(frozen=True)
class Path:
    steps: tuple[PathStep, ...]
    whole: bool = False  # a complete solution, judged as a whole rather than by its latest step

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.steps)


class Verifier:
    """Scores paths; the base class keeps no state, so `forget` and `close` do nothing."""

    name = "verifier"
    tokens_per_path = 0  # budget tokens one score costs, so a search can hold them back

    def score(self, paths: Sequence[Path]) -> list[float | None]:
        raise NotImplementedError

    def forget(self, nodes: Iterable[int]) -> None:
        """The search will not extend these nodes any more; drop what was kept for them."""

    def close(self) -> None:
        """The search is over; free everything."""

    @property
    def usage(self) -> dict[str, int]:
        """Counters for the run's `usage` (e.g. the judge's prompt tokens)."""
        return {}


@dataclass
class VerifierContext:
    """What a verifier may use: the question, the model that judges, and the run's budget and stop."""

    question: str
    engine: Engine  # the policy model, or --verifier-model's
    same_model: bool  # the judge shares the policy's vocabulary, so step tokens can be reused
    budget: TokenBudget
    stop: threading.Event | None = None


AGGREGATES = ("last", "min", "prod", "mean")


def aggregate(scores: Sequence[float | None], how: str) -> float | None:
    """A path's score from its step scores (unscored steps are left out; None when none is scored)."""
    known = [s for s in scores if s is not None]
    if not known:
        return None
    if how == "last":
        return scores[-1] if scores[-1] is not None else known[-1]
    if how == "min":
        return min(known)
    if how == "prod":
        return math.prod(known)
    if how == "mean":
        return sum(known) / len(known)
    raise ValueError(f"unknown aggregate {how!r}")
