"""Typed events: what a strategy reports as it runs.

Strategies are generators of these; the CLI, the JSON writer, the tests and the terminal UI only consume
them. Events are small frozen dataclasses; the ones `--json` reports (candidates, votes, tree nodes, early
stop, route) say how they serialise.

This module is longer than most (~330 lines) because every event and every record inside one lives here:
the run log's codec (`event_codec`) finds a class by its name in this one module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Execution:
    """What running a candidate's program gave (`--task program|hybrid`, `--check`)."""

    status: str  # ok, error, timeout, killed, no program, running, cancelled
    stdout: str = ""
    seconds: float = 0.0

    @property
    def settled(self) -> bool:
        """Whether it ran to an outcome (passed, failed, printed or not), not still running or never run."""
        return self.status not in ("running", "cancelled", "not run")

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "stdout": self.stdout[-2000:], "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class CodeReport:
    """What testing a code candidate gave (`--task code`): a (status, output) pair per case, in the order of
    the run's cases (the question's examples, then the tests the model wrote), and `--check`'s verdict.

    A case's status is pass, fail, error (it raised), timeout, observed (no expected value) or not run; its
    output is what the call returned (a repr) or raised, so equal outputs mean equal behaviour."""

    examples: tuple[tuple[str, str], ...] = ()
    generated: tuple[tuple[str, str], ...] = ()
    check: str | None = None  # --check's status: ok (it passed), error, timeout, killed; None: no check
    check_output: str = ""

    @property
    def examples_passed(self) -> int:
        return sum(status == "pass" for status, _ in self.examples)

    @property
    def generated_passed(self) -> frozenset[int]:
        """The model-written tests it passes, by position (dual execution agreement groups by this set)."""
        return frozenset(i for i, (status, _) in enumerate(self.generated) if status == "pass")

    def summary(self) -> str:
        """e.g. '3/3 examples · 7/9 generated · check passed', for the live view."""
        parts = [f"{self.examples_passed}/{len(self.examples)} examples"] if self.examples else []
        parts += [f"{len(self.generated_passed)}/{len(self.generated)} generated"] if self.generated else []
        if self.check is not None:
            parts.append("check passed" if self.check == "ok" else f"check {self.check}")
        return " · ".join(parts)

    def to_json(self) -> dict[str, Any]:
        def cases(pairs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
            return [{"status": status, "output": output[:200]} for status, output in pairs]

        out: dict[str, Any] = {"examples": cases(self.examples), "generated": cases(self.generated)}
        if self.check is not None:
            out["check"] = {"status": self.check, "output": self.check_output[-2000:]}
        return out


@dataclass(frozen=True)
class Candidate:
    """One finished (or interrupted) sample and what the strategy made of it."""

    index: int
    text: str
    tokens: int
    finish_reason: str
    mean_logprob: float
    answer: str | None = None
    answer_key: str | None = None
    score: float | None = None
    forced: tuple[tuple[str, int], ...] = ()  # budget forcing: ("wait" | "end", thinking tokens so far)
    trace_confidence: float | None = None  # DeepConf: the trace's lowest sliding-window token confidence
    kind: str = "text"  # text: the answer it states; program: what its program prints; code: its code
    execution: Execution | None = None  # a program's run; None for text
    tests: CodeReport | None = None  # a code candidate's tests, once they ran

    @property
    def votes(self) -> bool:
        """Whether it has an answer to vote with: stated by a finished text, or printed by a program."""
        if self.answer_key is None:
            return False
        if self.execution is not None:
            return self.execution.status == "ok"
        return self.finish_reason in ("stop", "probed")

    @property
    def ended(self) -> bool:
        """Whether it ended on its own (or its probes agreed, or its program ran): evidence for or against
        an answer. One cut by a stop, the budget or Ctrl-C, or a program never run, is no evidence."""
        settled = self.execution is None or self.execution.settled
        return self.finish_reason in ("stop", "length", "probed") and settled

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "text": self.text,
            "answer": self.answer,
            "tokens": self.tokens,
            "score": _round(self.score),
            "mean_logprob": _round(self.mean_logprob),
            "trace_confidence": _round(self.trace_confidence),
            "finish_reason": self.finish_reason,
            "forced": [{"action": a, "thinking_tokens": t} for a, t in self.forced],
            "kind": self.kind,
            "execution": self.execution.to_json() if self.execution is not None else None,
            "tests": self.tests.to_json() if self.tests is not None else None,
        }


@dataclass(frozen=True)
class Vote:
    """One answer's standing in a vote: how many candidates gave it and their summed weight."""

    answer: str
    key: str
    count: int
    weight: float

    def to_json(self) -> dict[str, Any]:
        return {"answer": self.answer, "count": self.count, "weight": _round(self.weight)}


class Event:
    """Base of every event."""


@dataclass(frozen=True)
class RunStarted(Event):
    strategy: str
    samples: int
    max_tokens: int
    budget_limit: int
    prompt_tokens: int


@dataclass(frozen=True)
class Phase(Event):
    """Work that shows no tokens is about to start: a prompt's prefill, judging, rollouts. The live view
    says what it is waiting for, and `ttc -v` logs it."""

    name: str  # prefill | judge | rollout
    detail: str


@dataclass(frozen=True)
class CandidateStarted(Event):
    index: int


@dataclass(frozen=True)
class TokensGenerated(Event):
    """One decode step: the budget spent so far and each live candidate's token count."""

    spent: int
    progress: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class CandidateFinished(Event):
    candidate: Candidate


@dataclass(frozen=True)
class CandidateExecuted(Event):
    """A candidate's program ran (or could not): `candidate` now carries the answer it printed."""

    candidate: Candidate


@dataclass(frozen=True)
class GeneratedTests(Event):
    """The model wrote tests for a code question (one test-writing sample ended): `cases` are the ones
    that parsed, `text` of each as written; every candidate is run against them."""

    index: int  # of the test-writing sample
    cases: tuple[str, ...]
    tokens: int


@dataclass(frozen=True)
class VotesUpdated(Event):
    votes: tuple[Vote, ...]


@dataclass(frozen=True)
class TraceCancelled(Event):
    """A live trace's confidence fell below the warm-up threshold (DeepConf online); it stops here."""

    index: int
    tokens: int
    trace_confidence: float  # the window's, as DeepConf names it; not the answer's `confidence`
    threshold: float


@dataclass(frozen=True)
class ProbeReading:
    """What one running chain would answer now (an answer probe), and whether that has settled."""

    index: int
    position: int  # tokens the chain had written when probed
    answer: str | None
    settled: bool  # its last probes agree: it counts in the stop rule's tally


@dataclass(frozen=True)
class Probed(Event):
    """A round of answer probes over the running chains (`engine/answer_probe.py`)."""

    readings: tuple[ProbeReading, ...]
    tokens: int  # sampled by this round's probes, charged to the budget
    spent: int  # the budget spent after the round


@dataclass(frozen=True)
class ThinkingForced(Event):
    """Budget forcing acted on a candidate: `wait` (kept it thinking) or `end` (closed its thinking)."""

    index: int
    action: str
    thinking_tokens: int


@dataclass(frozen=True)
class EarlyStop(Event):
    """Sampling stopped before N because the answer was settled; `detail` gives the figures behind it."""

    rule: str
    detail: str
    finished: int  # samples done (cancelled ones included) when it stopped
    samples: int  # N
    spent: int
    saved: int  # tokens the samples not run (or cut short) would have cost, from the finished ones' mean

    def summary(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "detail": self.detail,
            "samples_finished": self.finished,
            "samples": self.samples,
            "saved_tokens": self.saved,
        }


@dataclass(frozen=True)
class WidthChosen(Event):
    """How many samples now decode at once, and why (`strategies/width.py`); sent when it changes."""

    width: int
    policy: str  # measured (the throughput curve) | fixed (--width, the profile) | grow (code) | all
    detail: str
    votes: int  # samples finished when it was chosen


@dataclass(frozen=True)
class Routed(Event):
    """`auto` judged the question's difficulty from its probe and chose how much compute to spend."""

    difficulty: str  # easy | medium | hard
    reason: str
    samples: int  # the most samples the route allows

    def summary(self) -> dict[str, Any]:
        return {"difficulty": self.difficulty, "reason": self.reason, "samples": self.samples}


@dataclass(frozen=True)
class Final(Event):
    """The strategy's result. `selection` says in words how `answer` was chosen."""

    answer: str
    response: str
    selection: str
    stopped_because: str
    candidates: tuple[Candidate, ...] = field(default=())
    votes: tuple[Vote, ...] = field(default=())
    chosen: int | None = None
    early_stop: EarlyStop | None = None
    route: Routed | None = None
    tree: tuple[TreeNode, ...] = field(default=())  # search strategies: every node, for --json
    usage: tuple[tuple[str, int], ...] = field(default=())  # extra usage counters (tree_tokens, ...)
    confidence: float | None = None  # how sure the vote is (answers.confidence); None where none was taken


# ---- search trees: node events, so a renderer can draw the tree live -------------------------------
@dataclass(frozen=True)
class TreeNode:
    """One node of a search tree as `--json` shows it; `step` is the text this node added."""

    id: int
    parent: int | None
    step: str
    score: float | None  # the verifier's score of this step
    value: float | None  # the path's score: step scores aggregated, or MCTS's mean value
    status: str  # open, expanded, pruned, finished
    tokens: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parent": self.parent,
            "step": self.step,
            "score": _round(self.score),
            "value": _round(self.value),
            "status": self.status,
            "tokens": self.tokens,
        }


@dataclass(frozen=True)
class NodeCreated(Event):
    id: int
    parent: int | None
    depth: int


@dataclass(frozen=True)
class NodeStep(Event):
    """A node's step is written: its text, its tokens, and whether the solution ends there."""

    id: int
    text: str
    tokens: int
    final: bool


@dataclass(frozen=True)
class NodeScored(Event):
    id: int
    score: float | None
    value: float | None


@dataclass(frozen=True)
class NodeExpanded(Event):
    id: int


@dataclass(frozen=True)
class NodePruned(Event):
    id: int


@dataclass(frozen=True)
class NodeFinished(Event):
    id: int
    answer: str | None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
