"""Token budgets: a limit the engine charges as it decodes, never exceeds, and always reports.

A budget counts every token generated for a query across all sequences (candidates, verifier and judge
generations alike). Prompt tokens are evaluated, not generated, and are reported separately in the
run's usage. Strategies ask the budget what is left; only the engine spends it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TokenBudget:
    """A generation allowance of `limit` tokens; `spent` only grows, and never past `limit`."""

    limit: int
    preset: str | None = None
    spent: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"a budget needs a positive limit, got {self.limit}")

    @property
    def remaining(self) -> int:
        return self.limit - self.spent

    def take(self, n: int = 1) -> int:
        """Grant up to `n` tokens and charge them; returns how many were granted (0 when exhausted)."""
        granted = max(0, min(n, self.remaining))
        self.spent += granted
        return granted

    def refund(self, n: int) -> None:
        """Give back `n` granted tokens that were never generated (a step stopped halfway)."""
        self.spent -= min(n, self.spent)


@dataclass
class BudgetSlice(TokenBudget):
    """At most `limit` tokens of `parent`: spending here spends the parent too."""

    parent: TokenBudget | None = None

    @property
    def remaining(self) -> int:
        own = self.limit - self.spent
        return own if self.parent is None else min(own, self.parent.remaining)

    def take(self, n: int = 1) -> int:
        granted = max(0, min(n, self.remaining))
        self.spent += granted
        if self.parent is not None:
            self.parent.take(granted)
        return granted

    def refund(self, n: int) -> None:
        n = min(n, self.spent)
        super().refund(n)
        if self.parent is not None:
            self.parent.refund(n)
