"""The live region on stderr: events update state, a Rich `Live` redraws it on its own clock.

Redrawing is time-based (`refresh_per_second`), never per event, so a run that yields hundreds of decode
steps a second pays a few dictionary updates per event and at most 8 redraws a second. The region is
transient: when the run ends it disappears and the caller prints a one-line summary in its place.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.live import Live

from ttc_cli.events import Event
from ttc_cli.ui.state import RunState
from ttc_cli.ui.widgets import compare_panels, run_view

REFRESH_PER_SECOND = 8


def make_console(no_color: bool | None = None) -> Console:
    """A console on stderr; Rich itself honours NO_COLOR and TERM=dumb."""
    return Console(stderr=True, no_color=no_color)


class LiveView:
    """Shows one run's state while it is running."""

    def __init__(self, console: Console, state: RunState) -> None:
        self.state = state
        self._live = Live(
            console=console,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=False,  # the final tally stays on screen above the summary
            get_renderable=lambda: run_view(self.state),
        )

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()

    def __call__(self, event: Event) -> None:
        self.state.update(event)


class CompareView:
    """Side-by-side panels for several runs; `select(i)` routes the next events to run i."""

    def __init__(self, console: Console, states: list[RunState]) -> None:
        self.states = states
        self._current = 0
        self._live = Live(
            console=console,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=False,  # the final tally stays on screen above the summary
            get_renderable=lambda: compare_panels(self.states),
        )

    def select(self, index: int) -> None:
        self._current = index

    def __enter__(self) -> CompareView:
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()

    def __call__(self, event: Event) -> None:
        self.states[self._current].update(event)
