"""Run many contained commands a few at a time, so execution overlaps with the model's decoding.

A decoding loop submits a finished candidate's program and keeps decoding; between steps it collects what
has finished with `done()` (never blocks) or `wait(timeout)`. The work is a subprocess per run, so threads
suffice: each worker thread only waits on its child. `close(cancel=True)` (also what leaving a `with`
block does) drops queued work and kills every running child's process group at once, so Ctrl-C never
waits for a program that loops forever; the workers are joined, so no thread or process outlives it.

    with ExecutionPool(workers=2) as pool:
        pool.submit(i, [sys.executable, "main.py"], files={"main.py": program})
        ...
        for key, outcome in pool.done(): ...
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from ttc_cli.execution.sandbox import Outcome, run_isolated

K = TypeVar("K")


class ExecutionPool(Generic[K]):
    """Runs `run_isolated` on `workers` daemon threads; results come back as (key, Outcome) pairs."""

    def __init__(self, workers: int = 2) -> None:
        if workers < 1:
            raise ValueError("ExecutionPool: workers must be at least 1")
        self._queue: deque[tuple[K, Sequence[str], dict[str, Any]]] = deque()
        self._results: list[tuple[K, Outcome]] = []
        self._cond = threading.Condition()
        self._cancel = threading.Event()  # run_isolated polls it: setting it kills each running child
        self._running = 0
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"ttc-exec-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pending(self) -> int:
        """Runs whose results done() or wait() has not returned yet: queued, running or finished."""
        with self._cond:
            return len(self._queue) + self._running + len(self._results)

    def submit(self, key: K, argv: Sequence[str], **kwargs: Any) -> None:
        """Queue run_isolated(argv, **kwargs); its result comes back under key."""
        if "cancel" in kwargs:
            raise TypeError("ExecutionPool.submit: the pool owns cancellation (use close(cancel=True))")
        with self._cond:
            if self._closed:
                raise RuntimeError("ExecutionPool.submit after close()")
            self._queue.append((key, list(argv), kwargs))
            self._cond.notify()

    def done(self) -> list[tuple[K, Outcome]]:
        """The results finished since the last call, without blocking."""
        with self._cond:
            out, self._results = self._results, []
            return out

    def wait(self, timeout: float | None = None) -> list[tuple[K, Outcome]]:
        """Block until at least one result is ready (or timeout, or nothing is pending), then done()."""
        with self._cond:
            self._cond.wait_for(lambda: self._results or not (self._queue or self._running), timeout)
            out, self._results = self._results, []
            return out

    def close(self, cancel: bool = False) -> None:
        """Stop taking work; cancel: drop the queue and kill running children, else let them finish."""
        with self._cond:
            self._closed = True
            if cancel:
                self._queue.clear()
                self._cancel.set()
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()

    def __enter__(self) -> ExecutionPool[K]:
        return self

    def __exit__(self, *exc: object) -> None:
        # Results not waited for are abandoned: never block the way out on a program that may not end.
        self.close(cancel=True)

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                key, argv, kwargs = self._queue.popleft()
                self._running += 1
            try:
                outcome = run_isolated(argv, cancel=self._cancel, **kwargs)
            except Exception as e:  # a bad argument must not kill the worker; it becomes that run's error
                outcome = Outcome("error", None, "", f"ttc: {type(e).__name__}: {e}\n", 0.0)
            with self._cond:
                self._running -= 1
                if not self._cancel.is_set():
                    self._results.append((key, outcome))
                self._cond.notify_all()
