"""`cmd:COMMAND`: the user's command decides whether a whole solution is right; exit status 0 scores 1.

It is `--check` for the tree searches, put the same way (`execution.check`): the solution is the
command's stdin and its code is `solution.py` in the command's directory, and the command may well run it
(`cmd:python -`), so it runs as model-written code does (`ttc_cli.execution`): in a fresh scratch
directory, with an environment of a few safe variables (no API keys), resource limits, a wall timeout that
kills its whole process group, and its output captured up to a cap; several candidates are checked at
once, two at a time. Under bubblewrap it also has no network and sees only the system, read-only, and
its scratch dir: none of the user's files, the current directory included (`--check-file` copies in what
it needs). Without bubblewrap it runs as the user (as nobody when ttc is root), so it is not a sandbox
unless the command itself is one.
Partial solutions score a neutral 0.5, so in a tree search the command decides only between finished
solutions. It spends no tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

from ttc_cli.execution import ExecutionPool, Limits, Outcome
from ttc_cli.execution.check import LIMITS, Check
from ttc_cli.verifiers.base import Path, Verifier

WORKERS = 2  # checks at once: more would take cores from the model's decoding


class CommandVerifier(Verifier):
    name = "cmd"

    def __init__(self, command: str, limits: Limits = LIMITS) -> None:
        self.command = command
        self.check = Check(command, limits=limits)
        self.outcomes: list[Outcome] = []  # of the last `score`, in path order (whole paths only)

    def score(self, paths: Sequence[Path]) -> list[float | None]:
        whole = [i for i, p in enumerate(paths) if p.whole]
        results: dict[int, Outcome] = {}
        with ExecutionPool[int](WORKERS) as pool:
            for i in whole:
                argv, kwargs = self.check.job(paths[i].text)
                pool.submit(i, argv, **kwargs)
            while pool.pending:
                results.update(pool.wait())
        self.outcomes = [results[i] for i in whole]
        scores: list[float | None] = [0.5] * len(paths)
        for i, outcome in results.items():
            scores[i] = 1.0 if outcome.status == "ok" else 0.0
        return scores
