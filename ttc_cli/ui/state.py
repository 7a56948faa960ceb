"""What the live view knows about a run, updated by events and rendered by `widgets`.

Events update a plain `RunState`; the renderer draws it at a fixed rate, never per event. Each event type
has one small handler registered with `@on`, so a strategy that introduces a new event (a search-tree node,
an early stop) needs one handler here and, if it has something new to show, one widget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ttc_cli.events import (
    CandidateFinished,
    CandidateStarted,
    Event,
    Final,
    RunStarted,
    TokensGenerated,
    Vote,
    VotesUpdated,
)

STATUS_OF_FINISH = {"stop": "finished"}  # other finish reasons (length, budget, ...) are shown as they are


@dataclass
class CandidateView:
    index: int
    status: str = "generating"
    tokens: int = 0
    answer: str | None = None
    confidence: float | None = None  # geometric-mean token probability, once finished
    finished_order: int | None = None


@dataclass
class RunState:
    strategy: str
    model: str
    device: str
    budget_limit: int
    budget_preset: str | None
    samples: int = 0
    spent: int = 0
    started: float | None = None  # set by RunStarted; a queued compare run shows no clock
    candidates: dict[int, CandidateView] = field(default_factory=dict)
    votes: tuple[Vote, ...] = ()
    final: Final | None = None
    banners: list[str] = field(default_factory=list)
    finished_at: float | None = None

    def update(self, event: Event) -> None:
        handler = HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished_at or time.perf_counter()) - self.started

    @property
    def tokens_per_s(self) -> float:
        return self.spent / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def n_finished(self) -> int:
        return sum(c.status != "generating" for c in self.candidates.values())


Handler = Callable[[RunState, Any], None]
HANDLERS: dict[type[Event], Handler] = {}


def on(event_type: type[Event]) -> Callable[[Handler], Handler]:
    """Register the state update for one event type."""

    def register(fn: Handler) -> Handler:
        HANDLERS[event_type] = fn
        return fn

    return register


@on(RunStarted)
def _started(state: RunState, e: RunStarted) -> None:
    state.samples = e.samples
    state.budget_limit = e.budget_limit
    state.started = time.perf_counter()


@on(CandidateStarted)
def _candidate_started(state: RunState, e: CandidateStarted) -> None:
    state.candidates[e.index] = CandidateView(e.index)
    state.samples = max(state.samples, len(state.candidates))


@on(TokensGenerated)
def _tokens(state: RunState, e: TokensGenerated) -> None:
    state.spent = e.spent
    for index, tokens in e.progress:
        view = state.candidates.setdefault(index, CandidateView(index))
        view.tokens = tokens


@on(CandidateFinished)
def _candidate_finished(state: RunState, e: CandidateFinished) -> None:
    c = e.candidate
    view = state.candidates.setdefault(c.index, CandidateView(c.index))
    view.status = STATUS_OF_FINISH.get(c.finish_reason, c.finish_reason)
    view.tokens = c.tokens
    view.answer = c.answer
    view.confidence = math.exp(c.mean_logprob) if c.tokens else None
    view.finished_order = state.n_finished


@on(VotesUpdated)
def _votes(state: RunState, e: VotesUpdated) -> None:
    state.votes = e.votes


@on(Final)
def _final(state: RunState, e: Final) -> None:
    state.final = e
    if e.votes:
        state.votes = e.votes
    for c in e.candidates:
        view = state.candidates.get(c.index)
        if view is not None and view.status == "generating":
            _candidate_finished(state, CandidateFinished(c))
    state.spent = max(state.spent, sum(c.tokens for c in e.candidates))
    state.finished_at = time.perf_counter()
