"""Scoring code by hidden tests (HumanEval's `test` and `entry_point`): after a run has chosen, its code and
every candidate's run in the sandbox against tests the run never saw.

The program is what HumanEval itself runs: the question's own code (its imports and helpers; the stub,
which the candidate's function replaces), the candidate's code, the tests, then `check(entry_point)`. A
candidate passes when that exits 0 within the limits. The result goes into the run's JSON as `hidden`
(and each candidate's `hidden_pass`), so a resumed bench scores from the log without running them again.
"""

from __future__ import annotations

import sys
from typing import Any

from ttc_cli.answers.examples import question_code
from ttc_cli.answers.program import extract_program
from ttc_cli.bench.data import Item
from ttc_cli.execution import ExecutionPool, Limits

LIMITS = Limits(wall_s=20.0, cpu_s=20, memory_mb=1024, file_mb=16, processes=16, output_bytes=4096)


def program(item: Item, code: str) -> str:
    return f"{question_code(item.question)}\n\n{code}\n\n{item.test}\n\ncheck({item.entry_point})\n"


def code_of(candidate: dict[str, Any]) -> str | None:
    """A candidate's code: its answer when it is code, else the program in its text."""
    if candidate.get("kind") == "code" and candidate.get("answer"):
        return str(candidate["answer"])
    return extract_program(str(candidate.get("text") or ""))


def score(item: Item, result: dict[str, Any]) -> dict[str, Any]:
    """Run the hidden tests on the chosen code and every candidate's (each distinct code once); marks
    each candidate with `hidden_pass` and returns `{"chosen": bool, "ran": int}`."""
    cands = result.get("candidates") or []
    codes = {c["index"]: code_of(c) for c in cands}
    chosen_code = code_of({"kind": "code", "answer": result.get("answer"), "text": result.get("response")})
    distinct = {code for code in [*codes.values(), chosen_code] if code}
    passed: dict[str, bool] = {}
    with ExecutionPool[str](2) as pool:
        for code in distinct:
            pool.submit(
                code, [sys.executable, "main.py"], files={"main.py": program(item, code)}, limits=LIMITS
            )
        while pool.pending:
            for code, outcome in pool.wait():
                passed[code] = outcome.status == "ok"
    for c in cands:
        c["hidden_pass"] = passed.get(codes[c["index"]] or "", False)
    return {"chosen": passed.get(chosen_code or "", False), "ran": len(distinct)}
