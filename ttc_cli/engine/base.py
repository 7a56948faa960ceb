"""The backend-independent half of the engine: sequences, forking and the batched decode loop.

A `Sequence` is a row of tokens whose prefix lives in the KV cache (`tokens[:n_cached]`) and whose tail is
pending evaluation. Keeping the last sampled token pending, rather than evaluating it eagerly, makes every
fork uniform and free: a child copies the parent's cached cells (with a unified KV cache that shares them,
nothing is re-evaluated) and inherits the pending tail, which the next batched step evaluates in the
child's own sequence. So "prefill once, fork N" is `prefill(prompt)` (all but the last prompt token) then
N forks, and a tree search forks from any point of any sequence the same way.

`Decoder` runs one `llama_decode` per step over every live sequence, samples each with its own sampler,
records log-probabilities and top-k alternatives, and charges the budget per sampled token: it never
samples more tokens than the budget has left. Backends (llama.cpp, a scripted fake for tests) provide a
handful of primitives (`_eval`, `_logits`, `_sample`, cache copy/drop, token bytes).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ttc_cli.budget import TokenBudget

EvalItem = tuple[int, int, int, bool]  # (slot, token, position, wants_logits)
MAX_SEQUENCES = 256  # sequences one context runs at once: llama.cpp's limit (LLAMA_MAX_SEQ)

FINISH_STOP = "stop"  # end-of-generation token or stop string
FINISH_LENGTH = "length"  # the candidate's own max tokens
FINISH_BUDGET = "budget"  # the query's token budget ran out
FINISH_CANCELLED = "cancelled"  # a strategy cancelled it (pruning, early stop)
FINISH_INTERRUPTED = "interrupted"  # the user pressed Ctrl-C


class EngineError(Exception):
    """The engine could not do what was asked (context full, decode failure)."""


@dataclass(frozen=True)
class SamplingParams:
    """How one sequence samples. temperature 0 means greedy."""

    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    seed: int = 0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    top_logprobs: int = 5
    ignore_eos: bool = False
    grammar: str = ""  # GBNF that every reply must follow (a prompt's `grammar:`); "" for none
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token, bias) added to the logits before sampling


@dataclass(eq=False)
class Sequence:
    """A KV-cache sequence and what it generated since it was added to a decoder."""

    slot: int
    tokens: list[int]
    n_cached: int
    gen_start: int = 0
    params: SamplingParams | None = None
    sampler: Any = None
    logprobs: list[float] = field(default_factory=list)
    top_ids: list[np.ndarray] = field(default_factory=list)
    top_logprobs: list[np.ndarray] = field(default_factory=list)
    text_bytes: bytearray = field(default_factory=bytearray)
    text_end: int | None = None  # byte offset where a stop string began
    finish_reason: str | None = None
    tail_is_sampled: bool = False  # the first pending token is one this sequence sampled
    released: bool = False
    n_sampled: int = 0  # tokens sampled (and charged) since `Decoder.add`
    forcing: Any = None  # a `Forcing` that may edit the sequence after each token (budget forcing)

    @property
    def generated(self) -> list[int]:
        """Tokens after the point generation started, forced ones included."""
        return self.tokens[self.gen_start :]

    @property
    def n_generated(self) -> int:
        """Tokens this sequence sampled: what it cost the budget (forced text is not sampled)."""
        return self.n_sampled

    @property
    def text(self) -> str:
        raw = self.text_bytes if self.text_end is None else self.text_bytes[: self.text_end]
        return raw.decode("utf-8", errors="replace")

    @property
    def mean_logprob(self) -> float:
        return float(np.mean(self.logprobs)) if self.logprobs else 0.0

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None


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


@dataclass(frozen=True)
class KvNeeds:
    """What a run holds at once at most: KV-cache cells (one per evaluated token) and sequences."""

    cells: int
    sequences: int

    def __add__(self, other: KvNeeds) -> KvNeeds:
        return KvNeeds(self.cells + other.cells, self.sequences + other.sequences)


@dataclass(frozen=True)
class Step:
    """What one decode step did: tokens sampled per sequence, and the sequences that finished."""

    sampled: tuple[tuple[Sequence, int], ...]
    finished: tuple[Sequence, ...]


class Engine(ABC):
    """Sequences, forks and batched decoding over a backend's primitives."""

    model_name: str = "model"
    n_batch: int = 512
    n_ctx_train: int = 4096  # the model's own context window (positions per sequence)

    def __init__(self, n_seq_max: int) -> None:
        self.stats = EngineStats()
        self._free_slots: list[int] = list(range(n_seq_max - 1, -1, -1))
        self._n_seq_max = n_seq_max

    # ---- backend primitives ------------------------------------------------------------------------
    @abstractmethod
    def _eval(self, items: Seq[EvalItem]) -> None:
        """Evaluate (slot, token, position, wants_logits) items in one forward pass."""

    @abstractmethod
    def _logits(self, n_outputs: int) -> np.ndarray:
        """Logit rows of the last `_eval`, one per item that wanted logits, in item order."""

    @abstractmethod
    def _sample(self, seq: Sequence, batch_index: int) -> int:
        """Sample `seq`'s next token from the logits of item `batch_index` of the last `_eval`."""

    @abstractmethod
    def _new_sampler(self, params: SamplingParams) -> Any: ...

    @abstractmethod
    def _free_sampler(self, sampler: Any) -> None: ...

    @abstractmethod
    def _copy_cells(self, src: int, dst: int, n: int) -> None:
        """Make positions [0, n) of slot `src` part of slot `dst` too."""

    @abstractmethod
    def _drop_cells(self, slot: int) -> None: ...

    @abstractmethod
    def _trim_cells(self, slot: int, keep: int) -> None:
        """Drop slot `slot`'s cells at positions >= `keep`."""

    @abstractmethod
    def is_eog(self, token: int) -> bool: ...

    @abstractmethod
    def token_bytes(self, token: int) -> bytes: ...

    @abstractmethod
    def tokenize(self, text: str, *, add_special: bool = False, special: bool = False) -> list[int]:
        """`text`'s tokens. Only with `special` do control-token spellings become control tokens: true
        for text ttc or the user's profile wrote (tags, prefills), never for questions or model output."""

    @abstractmethod
    def chat_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt for chat `messages`, in the model's own template, ready to prefill."""

    @abstractmethod
    def reserve(self, n_ctx: int, n_seq: int, cap: int | None = None) -> None:
        """Make room for `n_ctx` cache cells and `n_seq` sequences (between runs only). The engine may
        round up to its own page size, never past `cap` cells."""

    @property
    def device(self) -> str:
        """Where decoding runs, for the UI header."""
        return "CPU"

    @abstractmethod
    def close(self) -> None:
        """Free what the backend holds (the model, its context); the engine is unusable afterwards."""

    def check_sampling(self, params: SamplingParams) -> None:
        """Build and free a sampler for `params`, so a bad grammar fails before any decoding."""
        self._free_sampler(self._new_sampler(params))

    # ---- sequences ---------------------------------------------------------------------------------
    @property
    def n_seq_max(self) -> int:
        return self._n_seq_max

    def _reset_slots(self, n_seq_max: int) -> None:
        self._free_slots = list(range(n_seq_max - 1, -1, -1))
        self._n_seq_max = n_seq_max

    def _take_slot(self) -> int:
        if not self._free_slots:
            raise EngineError(f"all {self._n_seq_max} sequences of the context are in use")
        return self._free_slots.pop()

    def prefill(self, tokens: Seq[int], stop: threading.Event | None = None) -> Sequence:
        """Evaluate a prompt once (all but its last token, which stays pending for the forks)."""
        if not tokens:
            raise EngineError("cannot prefill an empty prompt")
        seq = Sequence(slot=self._take_slot(), tokens=list(tokens), n_cached=0)
        start = time.perf_counter()
        for lo in range(0, len(tokens) - 1, self.n_batch):
            if stop is not None and stop.is_set():
                break
            chunk = tokens[lo : min(lo + self.n_batch, len(tokens) - 1)]
            self._eval([(seq.slot, t, lo + i, False) for i, t in enumerate(chunk)])
            seq.n_cached = lo + len(chunk)
        self.stats.prefill_calls += 1
        self.stats.prompt_eval_tokens += seq.n_cached
        self.stats.prefill_s += time.perf_counter() - start
        return seq

    def fork(self, seq: Sequence, at: int | None = None) -> Sequence:
        """A new sequence equal to `seq.tokens[:at]` that shares `seq`'s cached prefix."""
        at = len(seq.tokens) if at is None else at
        if not 1 <= at <= len(seq.tokens):
            raise EngineError(f"cannot fork at {at}: the sequence has {len(seq.tokens)} tokens")
        if seq.released:
            raise EngineError("cannot fork a released sequence")
        cached = min(seq.n_cached, at - 1)
        child = Sequence(slot=self._take_slot(), tokens=seq.tokens[:at], n_cached=cached)
        if cached:
            self._copy_cells(seq.slot, child.slot, cached)
        return child

    def release(self, seq: Sequence) -> None:
        """Free a sequence's cache cells and slot (idempotent)."""
        if seq.released:
            return
        if seq.sampler is not None:
            self._free_sampler(seq.sampler)
            seq.sampler = None
        self._drop_cells(seq.slot)
        self._free_slots.append(seq.slot)
        seq.released = True

    def truncate(self, seq: Sequence, n_tokens: int) -> None:
        """Cut `seq` back to its first `n_tokens` tokens; the last one becomes pending again."""
        if not 1 <= n_tokens <= len(seq.tokens):
            raise EngineError(f"cannot truncate to {n_tokens}: the sequence has {len(seq.tokens)} tokens")
        keep = min(seq.n_cached, n_tokens - 1)
        if keep < seq.n_cached:
            self._trim_cells(seq.slot, keep)
        del seq.tokens[n_tokens:]
        seq.n_cached = keep
        seq.tail_is_sampled = False

    def append(self, seq: Sequence, tokens: Seq[int]) -> None:
        """Add forced tokens after `seq`'s pending tail; the next step evaluates them with it."""
        seq.tokens.extend(tokens)

    def decoder(self, budget: TokenBudget, stop: threading.Event | None = None) -> Decoder:
        return Decoder(self, budget, stop)


def logsumexp_rows(rows: np.ndarray) -> np.ndarray:
    """Per-row log of the softmax normaliser; a token's log-probability is its logit minus this.

    float32 is enough: after subtracting the row maximum every term is in (0, 1], so the sum of even a
    150k vocabulary is exact to about 1e-6 relative, far below what any score here can resolve.
    """
    m = rows.max(axis=1)
    return m + np.log(np.exp(rows - m[:, None]).sum(axis=1))


class Decoder:
    """Decodes every live sequence in one forward pass per step, charging `budget` per sampled token."""

    def __init__(self, engine: Engine, budget: TokenBudget, stop: threading.Event | None = None) -> None:
        self.engine = engine
        self.budget = budget
        self.stop = stop
        self.live: list[Sequence] = []

    def add(self, seq: Sequence, params: SamplingParams) -> None:
        """Start generating on `seq` (a fresh fork or a finished sequence to continue)."""
        if seq.released:
            raise EngineError("cannot decode a released sequence")
        if seq.sampler is not None:
            self.engine._free_sampler(seq.sampler)
        seq.params = params
        seq.sampler = self.engine._new_sampler(params)
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
        for chunk, owners in self._chunks(active):
            self.engine._eval(chunk)
            rows = self.engine._logits(len(owners))
            norms = logsumexp_rows(rows)
            for out, (seq, batch_index) in enumerate(owners):
                token = self.engine._sample(seq, batch_index)
                self._record(seq, token, rows[out], float(norms[out]))
                sampled.append((seq, token))
                if seq.finish_reason is not None:
                    finished.append(seq)
        self.engine.stats.decode_s += time.perf_counter() - start
        self.engine.stats.generated_tokens += len(sampled)
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
        if eog or params.stop and self._hit_stop(seq, params.stop):
            self._finish(seq, FINISH_STOP)
        elif seq.n_sampled >= params.max_tokens:
            self._finish(seq, FINISH_LENGTH)

    @staticmethod
    def _hit_stop(seq: Sequence, stops: tuple[str, ...]) -> bool:
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
