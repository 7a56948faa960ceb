"""A user's check of a solution (`--check CMD`, `--verifier cmd:CMD`): how one candidate is put to it.

The command runs with `sh -c` in the candidate's own scratch dir (`sandbox`), which holds the solution's
code as `solution.py` (its fenced code block, else its whole text) and a copy of every file or directory
the user named (`--check-file`), so `pytest -q test_x.py` finds both side by side; the whole response is
also the command's stdin (`cmd:python -` runs it). Exit status 0 passes. Nothing else of the user's
files is bound in, the current directory included: run from a home directory, that would show the check
the user's keys and sockets, and run from `/` the whole host. What a check needs, it gets as a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttc_cli.answers.program import extract_program
from ttc_cli.execution.sandbox import Limits

SOLUTION = "solution.py"
LIMITS = Limits(wall_s=60.0, cpu_s=60)  # a test suite may take a while; a solution that loops may not


@dataclass(frozen=True)
class Check:
    command: str
    copy: tuple[Path, ...] = ()
    limits: Limits = LIMITS

    def job(self, response: str) -> tuple[list[str], dict[str, Any]]:
        """argv and `run_isolated` keyword arguments that check `response`."""
        code = extract_program(response) or response
        kwargs = {
            "stdin": response,
            "files": {SOLUTION: code},
            "copy": self.copy,
            "limits": self.limits,
        }
        return ["sh", "-c", self.command], kwargs
