"""The live region on stderr: events update state, a Rich `Live` redraws it on its own clock.

Redrawing is time-based (`refresh_per_second`), never per event, so a run that yields hundreds of decode
steps a second pays a dictionary update or two per event and at most 4 redraws a second. Rich draws from
its own thread, so one lock keeps a redraw from reading the state halfway through an update. When the run
ends the last frame stays on screen (the settled candidates and the final tally, which is what a person
wants to see), and the caller prints a one-line summary under it; `transient=True` clears it instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from rich.console import Console, RenderableType
from rich.live import Live

from ttc_cli.events import Event
from ttc_cli.ui.state import RunState
from ttc_cli.ui.widgets import compare_panels, run_view

# 4 Hz, not more: on a 2-core machine every wake-up of the drawing thread preempts one of llama.cpp's
# spinning worker threads; at 8 Hz benchmarks/ui_overhead.py measured up to +9 %, at 4 Hz within noise.
REFRESH_PER_SECOND = 4


def make_console(no_color: bool | None = None) -> Console:
    """A console on stderr. Rich itself honours NO_COLOR and TERM=dumb, so colour is never forced."""
    return Console(stderr=True, no_color=no_color)


class _LiveRegion:
    def __init__(self, console: Console, render: Callable[[], RenderableType], transient: bool) -> None:
        self._lock = threading.Lock()
        self._render = render
        self._live = Live(
            console=console,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=transient,
            redirect_stdout=False,  # stdout carries the answer; nothing printed there may land on stderr
            get_renderable=self._locked_render,
        )

    def _locked_render(self) -> RenderableType:
        # Widgets copy what they show when called, so the lock is held for the copy, not the drawing.
        with self._lock:
            return self._render()

    def __enter__(self) -> _LiveRegion:
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()


class LiveView(_LiveRegion):
    """One run's live view: `__call__` is the `on_event` callback for `runner.execute`."""

    def __init__(self, console: Console, state: RunState, transient: bool = False) -> None:
        self.state = state  # before the Live exists: it draws a first frame when constructed
        super().__init__(console, lambda: run_view(self.state), transient)

    def __enter__(self) -> LiveView:
        super().__enter__()
        return self

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.state.update(event)


class CompareView(_LiveRegion):
    """Side-by-side panels for several runs; `select(i)` routes the events that follow to run i."""

    def __init__(self, console: Console, states: list[RunState], transient: bool = False) -> None:
        self.states = states
        self._current = 0
        super().__init__(console, lambda: compare_panels(self.states), transient)

    def __enter__(self) -> CompareView:
        super().__enter__()
        return self

    def select(self, index: int) -> None:
        self._current = index

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.states[self._current].update(event)
