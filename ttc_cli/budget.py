"""Token budgets: a limit the engine charges as it decodes, never exceeds, and always reports.

A budget counts every token generated for a query across all sequences (candidates, verifier and judge
generations alike). Prompt tokens are evaluated, not generated, and are reported separately in the
run's usage. Strategies ask the budget what is left; only the engine spends it.

A budget may also carry a deadline (`--budget 30s`, `--deadline 30s`): people wait for seconds, and on a
local machine tokens are only a proxy for them. Once the deadline has passed the budget grants nothing and
has nothing left, so every strategy and the decoder stop exactly as they do on a spent token budget, and
answer with what has finished; `cut_by` then says the deadline, not the tokens, ended the run.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# 30s, 90s, 2m, 1m30s, 1.5s: a unit is required, since a bare number is a token count in --budget.
_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?)m)?(?:(\d+(?:\.\d*)?)s)?")


def parse_seconds(spec: str) -> float | None:
    """Seconds from '30s', '2m' or '1m30s'; None when `spec` is not a duration (or not a positive one)."""
    match = _DURATION.fullmatch(spec.strip().lower())
    if match is None or not any(match.groups()):
        return None
    minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = 60 * minutes + seconds
    return total if total > 0 else None


@dataclass
class TokenBudget:
    """A generation allowance of `limit` tokens; `spent` only grows, and never past `limit`.

    With `deadline_s`, nothing is granted once that many seconds have passed since `start()` (or, when
    nothing started it, since the first grant)."""

    limit: int
    preset: str | None = None
    deadline_s: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    spent: int = field(default=0, init=False)
    started: float | None = field(default=None, init=False)
    ended: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"a budget needs a positive limit, got {self.limit}")

    def start(self) -> None:
        """Start the deadline's clock (the run begins); a second call changes nothing."""
        if self.started is None:
            self.started = self.clock()

    def end(self) -> None:
        """Stop the clock (the run has its answer), so `elapsed_s` reports the run, not what came after."""
        if self.started is not None and self.ended is None:
            self.ended = self.clock()

    @property
    def elapsed_s(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else self.clock()) - self.started

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.deadline_s is not None and self.elapsed_s >= self.deadline_s

    @property
    def cut_by(self) -> str:
        """What ended a run that stopped short: `deadline`, or `budget` (its tokens). Tokens are never
        spent after the deadline, so a budget both spent and expired ran out of tokens first."""
        return "deadline" if self.expired and self.spent < self.limit else "budget"

    @property
    def remaining(self) -> int:
        return 0 if self.expired else self.limit - self.spent

    def take(self, n: int = 1) -> int:
        """Grant up to `n` tokens and charge them; returns how many were granted (0 when exhausted)."""
        self.start()
        granted = max(0, min(n, self.remaining))
        self.spent += granted
        return granted

    def refund(self, n: int) -> None:
        """Give back `n` granted tokens that were never generated (a step stopped halfway)."""
        self.spent -= min(n, self.spent)


@dataclass
class BudgetSlice(TokenBudget):
    """At most `limit` tokens of `parent`: spending here spends the parent too, and the parent's deadline
    binds the slice."""

    parent: TokenBudget | None = None

    def __post_init__(self) -> None:
        # A slice of what is left may be empty: the parent's deadline can pass between reading what is
        # left and cutting the slice. An empty slice grants nothing, as a spent budget does.
        self.limit = max(0, self.limit)

    @property
    def expired(self) -> bool:
        return self.parent is not None and self.parent.expired

    @property
    def remaining(self) -> int:
        own = self.limit - self.spent
        return own if self.parent is None else min(own, self.parent.remaining)

    def take(self, n: int = 1) -> int:
        granted = max(0, min(n, self.remaining))
        if self.parent is not None:  # what the parent grants: its deadline may pass in between
            granted = self.parent.take(granted)
        self.spent += granted
        return granted

    def refund(self, n: int) -> None:
        n = min(n, self.spent)
        super().refund(n)
        if self.parent is not None:
            self.parent.refund(n)
