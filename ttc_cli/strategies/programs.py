"""Candidates that answer with a program: run in the sandbox while the other samples decode.

A finished program candidate is handed to a small pool of sandboxed runs (`ttc_cli.execution`); the
sampling loop keeps decoding and, between steps, takes back the candidates whose programs have run, now
carrying the answer they printed (`answers.program`). Only then do they vote, so the stop rules see
executed votes. A response without a program, or a program that fails, times out or prints nothing, has
no answer. Stopping early, or Ctrl-C, kills what still runs.

With `--check` every candidate is code put to the user's command instead (`execution.check`): it casts no
vote, its answer is its code, and it passes when the command exits 0. The first to pass ends the run when
early stopping is on; `choose_checked` keeps the most likely passing candidate.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from ttc_cli.answers.program import extract_program, output_answer
from ttc_cli.events import Candidate, EarlyStop, Execution, Final
from ttc_cli.execution import ExecutionPool, Limits
from ttc_cli.execution.check import Check

WORKERS = 2  # programs at once: they are short, and more would take cores from decoding
LIMITS = Limits(wall_s=5.0, cpu_s=5, memory_mb=512, file_mb=8, processes=16, output_bytes=8192)


class ProgramRunner:
    def __init__(self, limits: Limits = LIMITS, check: Check | None = None) -> None:
        self.limits = limits
        self.check = check
        self.pool: ExecutionPool[int] = ExecutionPool(WORKERS)
        self.pending: dict[int, Candidate] = {}  # by candidate index, while its program runs

    def submit(self, c: Candidate) -> Candidate:
        """Start `c`'s program; returns `c` as it stands meanwhile (or, without a program, for good)."""
        if self.check is not None:
            argv, kwargs = self.check.job(c.text)
            self.pool.submit(c.index, argv, **kwargs)
            code = extract_program(c.text)
            self.pending[c.index] = c = replace(c, kind="code", answer=code, execution=Execution("running"))
            return c
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
            if self.check is not None:  # passed or not: the run's output says why
                report = (outcome.stdout + outcome.stderr)[-2000:]
                out.append(replace(c, execution=Execution(outcome.status, report, outcome.seconds)))
                continue
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


def choose_checked(
    cands: list[Candidate], selection: str, stopped_because: str, early_stop: EarlyStop | None
) -> Final:
    """--check's result: the most likely candidate that passed; when none did, the most likely one, said
    to be unverified. `selection` names how the candidates were drawn."""
    passed = [c for c in cands if c.execution is not None and c.execution.status == "ok"]
    pool = passed or [c for c in cands if c.text] or cands
    best = max(pool, key=lambda c: (c.mean_logprob, -c.index))
    checked = sum(c.execution is not None and c.execution.settled for c in cands)
    verdict = (
        f"{len(passed)} of {checked} checked candidates passed; the most likely of them"
        if passed
        else f"none of {checked} checked candidates passed; the most likely one, unverified"
    )
    return Final(
        answer=best.answer if best.answer is not None else best.text,
        response=best.text,
        selection=f"{selection}: {verdict}",
        stopped_because=stopped_because,
        candidates=tuple(cands),
        chosen=best.index,
        early_stop=early_stop,
    )
