"""What answer probes say, as arithmetic: when a running chain's answer counts, and when the chain may end.

A probe reads the answer a chain would give if it stopped now (`engine/answer_probe.py`). One probe is
weak evidence: mid-way a small model often repeats a number from the question. A chain's probed answer
therefore counts only once its last `settle` probes agree (Certaindex's "the answer stopped moving"),
and a chain whose last `agree` probes agree may end there, its probed answer standing as its vote.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Probing:
    """The profile's `probe:` settings (`--probe-every`, `--no-probe`)."""

    every: int  # tokens of a chain between two probes
    tokens: int  # tokens a probe may write after the cue
    settle: int  # a running chain's probed answer votes once its last `settle` probes agree
    agree: int  # a chain whose last `agree` probes agree ends, its probed answer its vote (0: never)
    weight: float  # a probed vote's weight in the stop rule, against 1 for a finished chain's


@dataclass
class ChainProbes:
    """One chain's probed answers in order: (tokens it had written, answer key or None, answer text)."""

    readings: list[tuple[int, str | None, str | None]] = field(default_factory=list)

    def last_agree(self, k: int) -> tuple[str, str] | None:
        """(key, answer) when the last `k` probes all read the same answer; None otherwise."""
        if k < 1 or len(self.readings) < k:
            return None
        tail = self.readings[-k:]
        key = tail[0][1]
        if key is None or any(r[1] != key for r in tail):
            return None
        return key, tail[-1][2] or key

    @property
    def probed_at(self) -> int:
        return self.readings[-1][0] if self.readings else 0


class ProbeBook:
    """Every running chain's probes; which are due, which have settled, which may end."""

    def __init__(self, probing: Probing) -> None:
        self.probing = probing
        self.chains: dict[int, ChainProbes] = {}

    def due(self, index: int, written: int) -> bool:
        """Whether chain `index`, having written `written` tokens, is due for a probe."""
        last = self.chains[index].probed_at if index in self.chains else 0
        return written - last >= self.probing.every

    def record(self, index: int, written: int, key: str | None, answer: str | None) -> None:
        self.chains.setdefault(index, ChainProbes()).readings.append((written, key, answer))

    def settled(self, index: int) -> tuple[str, str] | None:
        """The chain's probed (key, answer) once it has stopped moving; None until then."""
        chain = self.chains.get(index)
        return chain.last_agree(self.probing.settle) if chain is not None else None

    def may_end(self, index: int) -> tuple[str, str] | None:
        """The chain's probed (key, answer) when its probes agree enough for the chain to end there."""
        chain = self.chains.get(index)
        return chain.last_agree(self.probing.agree) if chain is not None else None

    def latest(self, index: int) -> str | None:
        chain = self.chains.get(index)
        return chain.readings[-1][2] if chain is not None and chain.readings else None
