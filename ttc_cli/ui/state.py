"""What the live view knows about a run, updated by events and drawn by `widgets`.

Events update a plain `RunState`; the renderer draws it on its own clock, never per event, so a handler
only does a few assignments. Each event type has one small handler registered with `@on`: a strategy that
introduces a new event (a search-tree node, an early stop) needs one handler here and, if it has something
new to show, one widget. Events with no handler are ignored, so an older UI never breaks a newer strategy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ttc_cli.events import (
    Candidate,
    CandidateExecuted,
    CandidateFinished,
    CandidateStarted,
    EarlyStop,
    Event,
    Final,
    NodeCreated,
    NodeExpanded,
    NodeFinished,
    NodePruned,
    NodeScored,
    NodeStep,
    Phase,
    Probed,
    Routed,
    RunStarted,
    TokensGenerated,
    TraceCancelled,
    Vote,
    VotesUpdated,
    WidthChosen,
)

GENERATING = "generating"
STATUS_OF_FINISH = {"stop": "finished"}  # other finish reasons (length, budget, ...) are shown as they are
# A program candidate shows its run instead: running, ran (printed an answer), or why it has no answer.
STATUS_OF_RUN = {"ok": "ran", "no answer": "no output"}
STATUS_OF_CODE = {"ok": "tested"}  # a code candidate: its tests ran; its answer column shows how it did


@dataclass
class CandidateView:
    index: int
    status: str = GENERATING
    tokens: int = 0
    answer: str | None = None
    token_prob: float | None = None  # geometric-mean token probability, once finished
    finished_order: int = 0  # 1 for the first to finish, ...; the table shows the most recent ones
    ended: bool = False  # it ended on its own (or its program ran): evidence for or against the leader
    probed: str | None = None  # what its latest answer probe read, while it runs
    settled: bool = False  # ... and whether that reading has settled (it votes in the stop rule)


@dataclass
class NodeView:
    """A search-tree node as the live view shows it."""

    id: int
    parent: int | None
    depth: int
    status: str = GENERATING
    text: str = ""
    tokens: int = 0
    value: float | None = None


@dataclass
class RunState:
    strategy: str
    model: str
    device: str
    budget_limit: int
    budget_preset: str | None
    deadline_s: float | None = None  # --deadline (or --budget 30s): when sampling stops
    samples: int = 0
    spent: int = 0
    # Set by RunStarted, not at construction: `compare` builds every state up front, and a queued run's
    # clock (and so its tok/s) must not include the runs before it.
    started: float | None = None
    candidates: dict[int, CandidateView] = field(default_factory=dict)
    votes: tuple[Vote, ...] = ()
    final: Final | None = None
    banners: list[str] = field(default_factory=list)
    finished_at: float | None = None
    n_finished: int = 0
    cancelled_traces: int = 0
    cancel_note: str | None = None  # one updating line, not one per trace, so the view stays bounded
    probe_note: str | None = None  # the latest round of answer probes, as one updating line
    tree: dict[int, NodeView] = field(default_factory=dict)  # search strategies' nodes, by id
    phase: str | None = None  # work under way that shows no tokens (prefill, judge, rollout)
    width: int | None = None  # samples decoding at once (the sampler's latest choice)
    clock: Callable[[], float] = time.perf_counter  # `ttc replay` sets the recorded run's clock

    def update(self, event: Event) -> None:
        handler = HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished_at or self.clock()) - self.started

    @property
    def tokens_per_s(self) -> float:
        elapsed = self.elapsed
        return self.spent / elapsed if elapsed > 0 else 0.0


E = TypeVar("E", bound=Event)
Handler = Callable[[RunState, Any], None]
HANDLERS: dict[type[Event], Handler] = {}


def on(event_type: type[E]) -> Callable[[Callable[[RunState, E], None]], Callable[[RunState, E], None]]:
    """Register the state update for one event type (a later registration replaces an earlier one)."""

    def register(fn: Callable[[RunState, E], None]) -> Callable[[RunState, E], None]:
        HANDLERS[event_type] = fn
        return fn

    return register


@on(RunStarted)
def _run_started(state: RunState, e: RunStarted) -> None:
    state.samples = e.samples
    state.budget_limit = e.budget_limit
    state.started = state.clock()


@on(CandidateStarted)
def _candidate_started(state: RunState, e: CandidateStarted) -> None:
    state.candidates[e.index] = CandidateView(e.index)
    state.samples = max(state.samples, len(state.candidates))


@on(Phase)
def _phase(state: RunState, e: Phase) -> None:
    state.phase = f"{e.name}: {e.detail}"


@on(WidthChosen)
def _width_chosen(state: RunState, e: WidthChosen) -> None:
    state.width = e.width


@on(TokensGenerated)
def _tokens_generated(state: RunState, e: TokensGenerated) -> None:
    if e.progress:
        state.phase = None  # samples are decoding: their rows show it
    state.spent = e.spent
    for index, tokens in e.progress:
        view = state.candidates.get(index)
        if view is None:
            view = state.candidates[index] = CandidateView(index)
        view.tokens = tokens


def _finish(state: RunState, c: Candidate) -> None:
    view = state.candidates.get(c.index)
    if view is None:
        view = state.candidates[c.index] = CandidateView(c.index)
    if view.status == GENERATING:
        state.n_finished += 1
        view.finished_order = state.n_finished
    if c.execution is not None:
        names = STATUS_OF_CODE if c.kind == "code" else STATUS_OF_RUN
        view.status = names.get(c.execution.status, c.execution.status)
    else:
        view.status = STATUS_OF_FINISH.get(c.finish_reason, c.finish_reason)
    view.tokens = c.tokens
    view.ended = c.ended
    # Code is too long for a row: what its tests gave says more (e.g. 3/3 examples · 7/9 generated).
    view.answer = (c.tests.summary() or "no tests") if c.tests is not None else c.answer
    if c.kind == "code" and c.tests is None:
        view.answer = None
    view.token_prob = math.exp(c.mean_logprob) if c.tokens else None


@on(CandidateFinished)
def _candidate_finished(state: RunState, e: CandidateFinished) -> None:
    _finish(state, e.candidate)


@on(CandidateExecuted)
def _candidate_executed(state: RunState, e: CandidateExecuted) -> None:
    _finish(state, e.candidate)


@on(VotesUpdated)
def _votes_updated(state: RunState, e: VotesUpdated) -> None:
    state.votes = e.votes


@on(EarlyStop)
def _early_stop(state: RunState, e: EarlyStop) -> None:
    state.banners.append(f"early stop ({e.rule}): {e.detail}; ~{e.saved:,} tokens saved")


@on(Routed)
def _routed(state: RunState, e: Routed) -> None:
    state.banners.append(f"auto: {e.difficulty} question ({e.reason})")


@on(TraceCancelled)
def _trace_cancelled(state: RunState, e: TraceCancelled) -> None:
    state.cancelled_traces += 1
    state.cancel_note = (
        f"{state.cancelled_traces} low-confidence trace(s) cancelled "
        f"(latest #{e.index} at {e.tokens} tokens: "
        f"trace confidence {e.trace_confidence:.2f} < {e.threshold:.2f})"
    )


@on(Probed)
def _probed(state: RunState, e: Probed) -> None:
    state.spent = e.spent
    for r in e.readings:
        view = state.candidates.get(r.index)
        if view is not None and view.status == GENERATING:
            view.probed, view.settled = r.answer, r.settled
    running = [v for v in state.candidates.values() if v.status == GENERATING and v.probed is not None]
    tally: dict[str, int] = {}
    for v in running:
        if v.settled and v.probed is not None:
            tally[v.probed] = tally.get(v.probed, 0) + 1
    ranked = sorted(tally.items(), key=lambda kv: -kv[1])
    settled = ", ".join(f"{a} ×{n}" for a, n in ranked[:4]) or "none yet"
    state.probe_note = f"answer probes of running samples: settled {settled} (probes cost {e.tokens} tokens)"


@on(Final)
def _final(state: RunState, e: Final) -> None:
    state.final = e
    if e.votes:
        state.votes = e.votes
    for c in e.candidates:
        view = state.candidates.get(c.index)
        if view is None or view.status == GENERATING:
            _finish(state, c)
    # Nothing decodes after Final: a candidate the result does not mention was dropped, not still running.
    for view in state.candidates.values():
        if view.status == GENERATING:
            state.n_finished += 1
            view.status, view.finished_order = "cancelled", state.n_finished
    state.finished_at = state.clock()


# ---- search trees ---------------------------------------------------------------------------------
def _node(state: RunState, node_id: int) -> NodeView:
    view = state.tree.get(node_id)
    if view is None:
        view = state.tree[node_id] = NodeView(node_id, None, 0)
    return view


@on(NodeCreated)
def _node_created(state: RunState, e: NodeCreated) -> None:
    state.tree[e.id] = NodeView(e.id, e.parent, e.depth)


@on(NodeStep)
def _node_step(state: RunState, e: NodeStep) -> None:
    view = _node(state, e.id)
    view.text, view.tokens, view.status = e.text, e.tokens, "open"


@on(NodeScored)
def _node_scored(state: RunState, e: NodeScored) -> None:
    _node(state, e.id).value = e.value


@on(NodeExpanded)
def _node_expanded(state: RunState, e: NodeExpanded) -> None:
    _node(state, e.id).status = "expanded"


@on(NodePruned)
def _node_pruned(state: RunState, e: NodePruned) -> None:
    _node(state, e.id).status = "pruned"


@on(NodeFinished)
def _node_finished(state: RunState, e: NodeFinished) -> None:
    _node(state, e.id).status = "finished"
