"""A scripted engine for tree searches: the next step depends on the path so far.

`steps` maps the text generated so far (after the prompt) to the steps that may come next; the k-th
sequence started from a path types the k-th option (cycling). A path not in `steps` writes "The answer
is 0." and ends. Steps end with a blank line (the default step delimiter); an option without one ends the
solution. Runs through the real Engine/Decoder like `FakeEngine`, so budgets and forks are the real ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence as Seq
from dataclasses import dataclass

import numpy as np
from fake_engine import EOG, VOCAB, FakeEngine, Script, _Typist

from ttc_cli.engine.sequence import SamplingParams, Sequence
from ttc_cli.verifiers.base import Path, Verifier


@dataclass
class _Lazy:
    typist: _Typist | None = None


class StepEngine(FakeEngine):
    def __init__(self, steps: dict[str, list[str]], prompt: str, **kw) -> None:
        super().__init__([Script("")], **kw)
        self.steps = steps
        self.prompt_len = len(prompt.encode())
        self.started: Counter[str] = Counter()

    def new_sampler(self, params: SamplingParams) -> _Lazy:
        return _Lazy()

    def _typist(self, seq: Sequence) -> _Typist:
        lazy: _Lazy = seq.sampler
        if lazy.typist is None:
            text = bytes(t for t in seq.tokens[self.prompt_len :] if t < 256).decode()
            options = self.steps.get(text, ["The answer is 0."])
            lazy.typist = _Typist(Script(options[self.started[text] % len(options)]))
            self.started[text] += 1
        return lazy.typist

    def batch_logits(self, n_outputs: int) -> np.ndarray:
        rows = np.zeros((n_outputs, VOCAB), dtype=np.float32)
        outputs = [slot for slot, _, _, wants in self._last if wants]
        for row, slot in zip(rows, outputs, strict=True):
            typist = self._typist(self._by_slot[slot])
            row[typist.peek()] = typist.confidence
        return rows

    def sample_token(self, seq: Sequence, batch_index: int) -> int:
        typist = self._typist(seq)
        token = typist.peek()
        typist.pos += 1
        return token


class WordVerifier(Verifier):
    """Scores a path's latest step by the first of `words` it contains (else `default`); records calls."""

    name = "words"

    def __init__(self, words: dict[str, float], default: float = 0.5) -> None:
        self.words = words
        self.default = default
        self.calls: list[list[str]] = []
        self.forgotten: list[int] = []

    def score(self, paths: Seq[Path]) -> list[float | None]:
        self.calls.append([p.text for p in paths])
        return [self._one(p.steps[-1].text if p.steps else "") for p in paths]

    def _one(self, text: str) -> float:
        return next((s for w, s in self.words.items() if w in text), self.default)

    def forget(self, nodes) -> None:  # type: ignore[no-untyped-def]
        self.forgotten.extend(nodes)


__all__ = ["EOG", "StepEngine", "WordVerifier"]
