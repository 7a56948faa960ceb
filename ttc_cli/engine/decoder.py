"""The batched decode loop: one forward pass per step over every live sequence, charged to a budget.

`Decoder` samples each sequence with its own sampler, records log-probabilities and top-k alternatives
(computed with numpy from the same logit rows), and charges the budget before sampling, one token per
sequence: it never samples more tokens than the budget has left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ttc_cli.budget import TokenBudget
from ttc_cli.engine.sequence import (
    FINISH_BUDGET,
    FINISH_CANCELLED,
    FINISH_INTERRUPTED,
    FINISH_LENGTH,
    FINISH_STOP,
    EvalItem,
    SamplingParams,
    Sequence,
)
from ttc_cli.errors import EngineError


@dataclass
class EngineStats:
    """Cumulative counters; a run reports the difference between two snapshots."""

    prefill_calls: int = 0
    prompt_eval_tokens: int = 0
    generated_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0

    def snapshot(self) -> EngineStats:
        return EngineStats(**vars(self))

    def since(self, before: EngineStats) -> EngineStats:
        return EngineStats(**{k: v - getattr(before, k) for k, v in vars(self).items()})

    @staticmethod
    def total(parts: Iterable[EngineStats]) -> EngineStats:
        out = EngineStats()
        for part in parts:
            for k, v in vars(part).items():
                setattr(out, k, getattr(out, k) + v)
        return out


class Backend(Protocol):
    """What a decoder drives: an engine's batched forward pass and samplers (`engine.base.Engine` is one;
    so is the scripted fake of the tests), and what budget forcing edits a sequence with."""

    stats: EngineStats
    n_batch: int

    def eval_batch(self, items: Seq[EvalItem]) -> None: ...
    def batch_logits(self, n_outputs: int) -> np.ndarray: ...
    def sample_token(self, seq: Sequence, batch_index: int) -> int: ...
    def new_sampler(self, params: SamplingParams) -> Any: ...
    def free_sampler(self, sampler: Any) -> None: ...
    def is_eog(self, token: int) -> bool: ...
    def token_bytes(self, token: int) -> bytes: ...
    def tokenize(self, text: str, *, add_special: bool = False, special: bool = False) -> list[int]: ...
    def truncate(self, seq: Sequence, n_tokens: int) -> None: ...
    def append(self, seq: Sequence, tokens: Seq[int]) -> None: ...


@dataclass(frozen=True)
class Step:
    """What one decode step did: tokens sampled per sequence, and the sequences that finished."""

    sampled: tuple[tuple[Sequence, int], ...]
    finished: tuple[Sequence, ...]


def logsumexp_rows(rows: np.ndarray) -> np.ndarray:
    """Per-row log of the softmax normaliser; a token's log-probability is its logit minus this.

    float32 is enough: after subtracting the row maximum every term is in (0, 1], so the sum of even a
    150k vocabulary is exact to about 1e-6 relative, far below what any score here can resolve.
    """
    m = rows.max(axis=1)
    return m + np.log(np.exp(rows - m[:, None]).sum(axis=1))


class Decoder:
    """Decodes every live sequence in one forward pass per step, charging `budget` per sampled token."""

    def __init__(self, engine: Backend, budget: TokenBudget, stop: threading.Event | None = None) -> None:
        self.engine = engine
        self.budget = budget
        self.stop = stop
        self.live: list[Sequence] = []

    def add(self, seq: Sequence, params: SamplingParams) -> None:
        """Start generating on `seq` (a fresh fork or a finished sequence to continue)."""
        if seq.released:
            raise EngineError("cannot decode a released sequence")
        if seq.sampler is not None:
            self.engine.free_sampler(seq.sampler)
        seq.params = params
        seq.sampler = self.engine.new_sampler(params)
        seq.gen_start = len(seq.tokens)
        seq.logprobs, seq.top_ids, seq.top_logprobs = [], [], []
        seq.text_bytes, seq.text_end, seq.finish_reason = bytearray(), None, None
        seq.n_sampled = 0
        self.live.append(seq)

    def cancel(self, seq: Sequence, reason: str = FINISH_CANCELLED) -> None:
        """Stop a live sequence now; its cache stays until the owner calls `engine.release`."""
        if seq in self.live:
            self.live.remove(seq)
            seq.finish_reason = reason

    def __iter__(self) -> Iterator[Step]:
        while self.live:
            yield self.step()

    def step(self) -> Step:
        """Evaluate every live sequence's pending tokens and sample one token for each."""
        if self.stop is not None and self.stop.is_set():
            return self._finish_all(FINISH_INTERRUPTED)
        # The budget is charged before sampling, one token per sequence: only as many sequences as it
        # grants may sample this step, and the rest end here rather than overdraw it.
        granted = self.budget.take(len(self.live))
        if granted <= 0:
            return self._finish_all(FINISH_BUDGET)
        active, starved = self.live[:granted], self.live[granted:]
        for seq in starved:
            self._finish(seq, FINISH_BUDGET)

        sampled: list[tuple[Sequence, int]] = []
        finished: list[Sequence] = list(starved)
        start = time.perf_counter()
        for passes, (chunk, owners) in enumerate(self._chunks(active)):
            if passes and self.stop is not None and self.stop.is_set():
                # Ctrl-C between two passes of one step (long prompts of forks or judgements): what the
                # rest would have sampled was charged, and is given back.
                self.budget.refund(granted - len(sampled))
                break
            self.engine.eval_batch(chunk)
            rows = self.engine.batch_logits(len(owners))
            norms = logsumexp_rows(rows)
            for out, (seq, batch_index) in enumerate(owners):
                token = self.engine.sample_token(seq, batch_index)
                self._record(seq, token, rows[out], float(norms[out]))
                sampled.append((seq, token))
                if seq.finish_reason is not None:
                    finished.append(seq)
        self.engine.stats.decode_s += time.perf_counter() - start
        self.engine.stats.generated_tokens += len(sampled)
        if self.stop is not None and self.stop.is_set() and len(sampled) < len(active):
            for seq in self.live:
                if seq.finish_reason is None:
                    self._finish(seq, FINISH_INTERRUPTED)
                    finished.append(seq)
        self.live = [s for s in self.live if s.finish_reason is None]
        return Step(tuple(sampled), tuple(finished))

    def _chunks(self, seqs: list[Sequence]) -> Iterator[tuple[list[EvalItem], list[tuple[Sequence, int]]]]:
        """Pack the pending tokens of `seqs` into forward passes of at most n_batch tokens.

        A sequence's logits come from its last pending token, so it is sampled after the pass that holds
        that token; `owners` lists those sequences in output order with that token's index in the pass.
        """
        items: list[EvalItem] = []
        owners: list[tuple[Sequence, int]] = []
        for seq in seqs:
            pending = seq.tokens[seq.n_cached :]
            # Only a token this sequence sampled counts as generated; anything else it evaluates (the
            # prompt's last token after a fork, appended text) is prompt evaluation.
            self.engine.stats.prompt_eval_tokens += len(pending) - (1 if seq.tail_is_sampled else 0)
            for i, token in enumerate(pending):
                last = i == len(pending) - 1
                items.append((seq.slot, token, seq.n_cached + i, last))
                if last:
                    owners.append((seq, len(items) - 1))
                if len(items) == self.engine.n_batch:
                    yield items, owners
                    items, owners = [], []
            seq.n_cached = len(seq.tokens)
        if items:
            yield items, owners

    def _record(self, seq: Sequence, token: int, logits: np.ndarray, norm: float) -> None:
        params = seq.params or SamplingParams()
        seq.tokens.append(token)
        seq.n_sampled += 1
        seq.tail_is_sampled = True
        seq.logprobs.append(float(logits[token]) - norm)
        k = params.top_logprobs
        if k > 0:
            top = np.argpartition(logits, -k)[-k:]
            top = top[np.argsort(logits[top])[::-1]]
            seq.top_ids.append(top.astype(np.int32))
            seq.top_logprobs.append((logits[top] - norm).astype(np.float32))
        eog = self.engine.is_eog(token) and not params.ignore_eos
        if not eog:
            seq.text_bytes += self.engine.token_bytes(token)
        if seq.forcing is not None and seq.forcing.after_token(self.engine, seq, eog):
            # The forcing rewrote the tail (appended "Wait", or closed the thinking): generation goes on.
            if seq.n_sampled >= params.max_tokens:
                self._finish(seq, FINISH_LENGTH)
            return
        if eog or params.stop and self.hit_stop(seq, params.stop):
            self._finish(seq, FINISH_STOP)
        elif seq.n_sampled >= params.max_tokens:
            self._finish(seq, FINISH_LENGTH)

    @staticmethod
    def hit_stop(seq: Sequence, stops: tuple[str, ...]) -> bool:
        """Whether `seq`'s text now holds a stop string; if so `text_end` marks where it begins."""
        # Only the tail can newly contain a stop string; searching it keeps the check O(1) per token.
        for stop in stops:
            needle = stop.encode()
            window = len(needle) + 64
            lo = max(0, len(seq.text_bytes) - window)
            at = seq.text_bytes.find(needle, lo)
            if at != -1:
                seq.text_end = at
                return True
        return False

    def _finish(self, seq: Sequence, reason: str) -> None:
        seq.finish_reason = reason

    def _finish_all(self, reason: str) -> Step:
        done = tuple(self.live)
        for seq in done:
            self._finish(seq, reason)
        self.live = []
        return Step((), done)
