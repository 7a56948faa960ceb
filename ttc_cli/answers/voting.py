"""Vote tallies over extracted answers: plurality or confidence-weighted.

Answers are grouped by their canonical key (so "1,000" and "1000.0" are one answer); the leader is the
answer with the most votes (or the most weight, when weighted), ties broken by total weight and then by
which answer appeared first, so a seeded run always picks the same winner.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ttc_cli.events import Vote


@dataclass
class _Entry:
    answer: str
    count: int = 0
    weight: float = 0.0
    first: int = 0


@dataclass
class VoteTally:
    weighted: bool = False
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def add(self, key: str, answer: str, weight: float = 1.0) -> None:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(answer, first=len(self._entries))
        entry.count += 1
        entry.weight += weight

    @property
    def total(self) -> int:
        return sum(e.count for e in self._entries.values())

    def _rank(self, key: str) -> tuple[float, float, int]:
        e = self._entries[key]
        primary = e.weight if self.weighted else e.count
        return (-primary, -e.weight, e.first)

    def snapshot(self) -> tuple[Vote, ...]:
        """Votes from leader down."""
        keys = sorted(self._entries, key=self._rank)
        return tuple(
            Vote(self._entries[k].answer, k, self._entries[k].count, self._entries[k].weight) for k in keys
        )

    def leader(self) -> Vote | None:
        votes = self.snapshot()
        return votes[0] if votes else None
