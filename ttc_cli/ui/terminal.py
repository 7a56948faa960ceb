"""What a command shows on stderr besides its result: the live view's console and state, the -v phase log,
the note on how model-written programs are contained, and the warning that a budget may cut samples short.

Progress goes to stderr only when it is a terminal (a pipeline sees the result alone); the isolation note
is a warning, not progress, so it is written whenever programs run without bubblewrap (with -v always).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ttc_cli.events import Event, Phase, WidthChosen

if TYPE_CHECKING:
    from ttc_cli.engine.base import Engine
    from ttc_cli.plan import Plan
    from ttc_cli.ui.state import RunState

Listener = Callable[[Event], None]


def stderr_console(quiet: bool) -> Any:
    """A Rich console on stderr when a person is watching it; None in pipelines and with --quiet."""
    if quiet or not sys.stderr.isatty():
        return None
    from ttc_cli.ui.live import make_console

    return make_console()


def new_state(plan: Plan, engine: Engine) -> RunState:
    from ttc_cli.ui.state import RunState

    return RunState(
        strategy=plan.strategy.name,
        model=engine.model_name,
        device=engine.device,
        budget_limit=plan.budget_limit,
        budget_preset=plan.budget_preset,
        deadline_s=plan.deadline_s,
    )


def listener(view: Listener | None, verbose: bool, recorder: Listener | None = None) -> Listener | None:
    """What hears a run's events: the run log's recorder, the live view, and with --verbose a log of its
    phases on stderr."""
    if not verbose and recorder is None:
        return view

    def hear(event: Event) -> None:
        if recorder is not None:
            recorder(event)
        if verbose and isinstance(event, Phase | WidthChosen):
            what = f"{event.name}: {event.detail}" if isinstance(event, Phase) else f"width: {event.detail}"
            sys.stderr.write(f"ttc: {what}\n")
            sys.stderr.flush()
        if view is not None:
            view(event)

    return hear


def budget_warnings(plans: list[Plan], quiet: bool, said: set[str] | None = None) -> None:
    """Warn, as runs are about to start, of a budget that cannot pay for every sample asked for
    (`Plan.warning`): a warning, so written whether or not stderr is a terminal; each different one once
    (`said` keeps what was said across calls: `compare` prepares its plans once per model)."""
    said = set() if said is None else said
    for warning in dict.fromkeys(p.warning for p in plans if p.warning is not None):
        if not quiet and warning not in said:
            sys.stderr.write(f"ttc: warning: {warning}\n")
        said.add(warning)
    sys.stderr.flush()


def isolation_note(how: str | None, quiet: bool, verbose: bool) -> None:
    """Say once per run how the programs it runs are contained, when that is less than bubblewrap."""
    if how is None or quiet:
        return
    if verbose or not how.startswith("bubblewrap"):
        sys.stderr.write(f"ttc: running model-written programs; isolation: {how}\n")
        sys.stderr.flush()


def compare_text(data: list[dict[str, Any]]) -> str:
    """`compare`'s table, which is its result and so goes to stdout (plain text when not a terminal)."""
    from rich.console import Console

    from ttc_cli.ui.compare_table import compare_table

    width = None if sys.stdout.isatty() else 160
    console = Console(file=sys.stdout, width=width, soft_wrap=False)
    with console.capture() as table:  # the caller writes it, knowing what a closed pipe means
        console.print(compare_table(data))
    return table.get().rstrip("\n")
