"""Ctrl-C and SIGTERM: the first asks the run to stop and answer with what it has; a second aborts.

One `Interrupts` spans a whole command (loading the models, every run of `compare`, printing), so a signal
means the same thing whenever it comes: it sets `stop`, which llama.cpp's loader checks between tensors
and the engine between forward passes (of at most `n_batch` tokens, well under a second on a small model),
so the run ends promptly and reports its best answer so far. A second signal raises `Aborted` at once.
The exit status is 128 + the signal: 130 for Ctrl-C, 143 for SIGTERM (`timeout 60 ttc ask ...`
still prints the best answer it had).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

from ttc_cli.errors import Aborted, Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.signum = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Interrupts:
        self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]
        if isinstance(exc, Interrupted):
            exc.exit_code = self.exit_code  # whoever noticed the stop, this signal is the one that asked

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            raise Aborted(128 + signum)
        self.signum = signum
        self.stop.set()

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    def check(self) -> None:
        """Between steps that cannot stop halfway (before a run starts): give up now if asked to."""
        if self.stop.is_set():
            raise Interrupted(self.exit_code)
