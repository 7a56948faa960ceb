"""Candidates that answer with a program: run in the sandbox while the other samples decode.

A finished program candidate is handed to a small pool of sandboxed runs (`ttc_cli.execution`); the
sampling loop keeps decoding and, between steps, takes back the candidates whose programs have run, now
carrying the answer they printed (`answers.program`). Only then do they vote, so the stop rules see
executed votes. A response without a program, or a program that fails, times out or prints nothing, has
no answer. Stopping early, or Ctrl-C, kills what still runs. (Code that is the answer itself, tested
rather than run for what it prints, is `code.py`'s.)
"""

from __future__ import annotations

import sys
from dataclasses import replace

from ttc_cli.answers.program import extract_program, output_answer
from ttc_cli.events import Candidate, Execution
from ttc_cli.execution import ExecutionPool, Limits

WORKERS = 2  # programs at once: they are short, and more would take cores from decoding
# 5 CPU seconds; the wall clock allows for the lowest priority programs run at (`sandbox.NICE`).
LIMITS = Limits(wall_s=20.0, cpu_s=5, memory_mb=512, file_mb=8, processes=16, output_bytes=8192)


class ProgramRunner:
    def __init__(self, limits: Limits = LIMITS) -> None:
        self.limits = limits
        self.pool: ExecutionPool[int] = ExecutionPool(WORKERS)
        self.pending: dict[int, Candidate] = {}  # by candidate index, while its program runs

    def submit(self, c: Candidate) -> Candidate:
        """Start `c`'s program; returns `c` as it stands meanwhile (or, without a program, for good)."""
        code = extract_program(c.text)
        if code is None:
            return replace(c, kind="program", execution=Execution("no program"))
        self.pool.submit(c.index, [sys.executable, "main.py"], files={"main.py": code}, limits=self.limits)
        self.pending[c.index] = c = replace(c, kind="program", execution=Execution("running"))
        return c

    def ready(self, wait: float = 0.0) -> list[Candidate]:
        """Candidates whose programs have run since the last call (waiting up to `wait` seconds for one)."""
        ran = self.pool.wait(wait) if wait > 0 else self.pool.done()
        out = []
        for index, outcome in ran:
            c = self.pending.pop(index)
            found = output_answer(outcome.stdout) if outcome.status == "ok" else None
            status = outcome.status if found is not None or outcome.status != "ok" else "no answer"
            execution = Execution(status, outcome.stdout, outcome.seconds)
            answer, key = (found.text, found.key) if found else (None, None)
            out.append(replace(c, answer=answer, answer_key=key, execution=execution))
        return out

    def cancel(self) -> list[Candidate]:
        """Kill every program still running; returns their candidates, marked cancelled."""
        self.pool.close(cancel=True)
        out = [replace(c, execution=Execution("cancelled")) for c in self.pending.values()]
        self.pending.clear()
        return out
