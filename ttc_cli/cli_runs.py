"""`ttc runs`, `ttc show ID` and `ttc replay ID`: the run log (runlog.py) from the command line."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ttc_cli import runlog
from ttc_cli.errors import UsageError

if TYPE_CHECKING:
    from ttc_cli.ui.state import RunState


def runs(
    strategy: Annotated[str | None, typer.Option("--strategy", "-s", help="Only this strategy.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Only models whose name has this.")
    ] = None,
    grep: Annotated[str | None, typer.Option("--grep", help="Only questions containing this text.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout.")] = False,
    prune: Annotated[
        float | None, typer.Option("--prune", min=0, help="Delete runs older than this many days, then list.")
    ] = None,
) -> None:
    """List recent runs from the run log (every ask, compare and bench run unless --no-log or TTC_LOG=0)."""
    if prune is not None:
        gone = runlog.prune(prune)
        sys.stderr.write(f"ttc: pruned {gone} run{'s' * (gone != 1)} older than {prune:g} days\n")
    found = runlog.recent(limit, strategy, model, grep)
    if as_json:
        rows = [
            {
                "id": r.id,
                "started": datetime.fromtimestamp(r.started).isoformat(timespec="seconds"),
                "command": r.command,
                "strategy": r.strategy,
                "model": r.model,
                "stopped_because": r.stopped_because,
                "answer": r.data.get("answer"),
                "question": r.question,
            }
            for r in found
        ]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
        return
    if not found:
        sys.stderr.write(f"ttc: {_none_because(strategy, model, grep)}\n")
        return
    sys.stdout.write(_row(dict(zip(RUN_COLUMNS, RUN_COLUMNS, strict=True))))
    for r in found:
        name = r.model.rsplit("/", 1)[-1].removesuffix(".gguf")
        cells = (r.id, datetime.fromtimestamp(r.started).strftime("%Y-%m-%d %H:%M"), r.command, r.strategy,
                 name, r.stopped_because, r.data.get("answer", ""), r.question)  # fmt: skip
        sys.stdout.write(_row({c: str(v) for c, v in zip(RUN_COLUMNS, cells, strict=True)}))


# `ttc runs`' columns: width and alignment (the question, last, takes what is left of the line).
RUN_COLUMNS = {"id": ">6", "started": "<16", "command": "<7", "strategy": "<16", "model": "<28",
               "stopped": "<11", "answer": "<20", "question": "<60"}  # fmt: skip


def _row(cells: dict[str, str]) -> str:
    """One line of the runs table; a cell too long for its column ends in "…" where it is cut, so a
    model's name is never silently shortened to another name."""
    from ttc_cli.ui.widgets import clip

    out = []
    for column, spec in RUN_COLUMNS.items():
        width = int(spec[1:])
        text = clip(cells[column], width)
        out.append(text if column == "question" else f"{text:{spec}}")
    return "  ".join(out).rstrip() + "\n"


def _none_because(strategy: str | None, model: str | None, grep: str | None) -> str:
    """The line `ttc runs` prints when it lists nothing: why, and what would fill the log."""
    if strategy or model or grep:
        return "no logged run matches; `ttc runs` alone lists them all"
    if not runlog.enabled(False):
        return "the run log is off (TTC_LOG=0), and it holds no runs"
    return f"no runs logged yet ({runlog.path()}): every ask, compare and bench run is kept there"


def show(run_id: Annotated[int, typer.Argument(help="A run's id (see `ttc runs`).")]) -> None:
    """Print a logged run's JSON exactly as --json printed it."""
    sys.stdout.write(_run(run_id).result + "\n")


def replay(
    run_id: Annotated[int, typer.Argument(help="A run's id (see `ttc runs`).")],
    speed: Annotated[
        float, typer.Option("--speed", min=0.01, help="Faster (4) or slower (0.5) than live.")
    ] = 1.0,
) -> None:
    """Re-render a logged run's live view from its stored events (only the final frame, on stdout, when
    stderr is not a terminal)."""
    from ttc_cli.ui.live import LiveView, make_console

    run = _run(run_id)
    events = runlog.events_of(run_id)
    state = replay_state(run.data)
    clock = [0.0]
    state.clock = lambda: clock[0]
    console = make_console()
    if not console.is_terminal:  # the final frame is then the result: stdout, as `compare`'s table is
        from rich.console import Console

        from ttc_cli.ui.widgets import run_view

        for offset, event in events:
            clock[0] = offset
            state.update(event)
        Console(file=sys.stdout, width=None if sys.stdout.isatty() else 120).print(run_view(state))
        return
    start = time.perf_counter()
    with LiveView(console, state) as view:
        for offset, event in events:
            delay = offset / speed - (time.perf_counter() - start)
            if delay > 0:
                time.sleep(delay)
            clock[0] = offset
            view(event)


def replay_state(data: dict) -> RunState:
    """A fresh view state for the run `data` (its --json), as `ask` made one for the live run."""
    from ttc_cli.ui.state import RunState

    device = (data.get("backend") or {}).get("device", "")
    return RunState(
        strategy=data["strategy"],
        model=data["model"],
        device=device,
        budget_limit=data["budget"]["limit"],
        budget_preset=data["budget"]["preset"],
        deadline_s=data["budget"].get("deadline_s"),  # absent from logs of schema 1
    )


def _run(run_id: int) -> runlog.Run:
    run = runlog.get(run_id)
    if run is None:
        raise UsageError(f"no run {run_id} in the run log ({runlog.path()})", "see `ttc runs` for the ids")
    return run
