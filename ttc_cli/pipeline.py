"""One run, the same way for `ask`, `compare` and `bench`: record a prepared plan's events for the run log,
execute it, score it where the caller can, log it. The commands differ only in what else hears the events
(a live view, nothing) and what they make of the result; `runner.prepare` comes first, separately, because
`compare` fits every plan to the model before running any (a mistake in the fifth fails before the first)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ttc_cli import runlog
from ttc_cli.events import Event
from ttc_cli.plan import Plan
from ttc_cli.result import RunResult
from ttc_cli.runner import execute
from ttc_cli.strategies.context import RunContext

Listener = Callable[[Event], None]


@dataclass(frozen=True)
class LogEntry:
    """What the run log keeps beside a run's result and events."""

    command: str  # ask, compare, bench
    options: dict[str, Any]  # the options asked with (an API key's variable name, never its value)
    bench_key: str | None = None  # a bench's run: the key a resumed bench finds it by


def run(
    p: Plan,
    ctx: RunContext,
    log: LogEntry | None,
    listen: Callable[[Listener | None], Listener | None] = lambda recorder: recorder,
    load_s: float = 0.0,
    score: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    keep_cut_short: bool = True,
) -> tuple[RunResult, dict[str, Any]]:
    """Execute `p`, its events heard by `listen(recorder)` (the recorder, None when the log is off, joined
    with whatever else the command shows); returns the result and its JSON, with `score`'s keys added.
    A run Ctrl-C cut short keeps its best answer so far; without `keep_cut_short` (a bench: it is not a
    result, and the same command redoes it) it is neither scored nor logged."""
    recorder = runlog.Recorder() if log is not None else None
    result = execute(p, ctx, listen(recorder), load_s=load_s)
    data = result.to_json()
    if result.interrupted and not keep_cut_short:
        return result, data
    if score is not None:
        data |= score(data)
    if log is not None and recorder is not None:
        runlog.write(log.command, data, recorder, log.options, bench_key=log.bench_key)
    return result, data
