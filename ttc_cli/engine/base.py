"""The backend-independent engine: sequences, forks and batched decoding over a backend's primitives.

"Prefill once, fork N" is `prefill(prompt)` (all but the last prompt token, which stays pending) then N
forks, and a tree search forks from any point of any sequence the same way (see `sequence.py` for why the
pending token makes forks free). Backends (llama.cpp, a scripted fake for tests) provide a handful of
primitives (`eval_batch`, `batch_logits`, `sample_token`, cache copy/drop/trim, token bytes); `decoder.py`
runs the loop, over the part of them its `Backend` protocol names.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence as Seq
from typing import Any

import numpy as np

from ttc_cli.budget import TokenBudget
from ttc_cli.engine.decoder import Decoder, EngineStats
from ttc_cli.engine.sequence import EvalItem, SamplingParams, Sequence
from ttc_cli.errors import EngineError


class Engine(ABC):
    """Sequences, forks and batched decoding over a backend's primitives."""

    model_name: str = "model"
    n_batch: int = 512
    n_ctx_train: int = 4096  # the model's own context window (positions per sequence)
    continues_text = True  # can extend a reply mid-way (forks at any token, forced text)
    gives_logprobs = True  # records each token's log-probability and its top alternatives
    parallel: int | None = None  # requests a server serves at once; None for an in-process engine

    def __init__(self, n_seq_max: int) -> None:
        self.stats = EngineStats()
        self._free_slots: list[int] = list(range(n_seq_max - 1, -1, -1))
        self._n_seq_max = n_seq_max

    # ---- backend primitives ------------------------------------------------------------------------
    @abstractmethod
    def eval_batch(self, items: Seq[EvalItem]) -> None:
        """Evaluate (slot, token, position, wants_logits) items in one forward pass."""

    @abstractmethod
    def batch_logits(self, n_outputs: int) -> np.ndarray:
        """Logit rows of the last `eval_batch`, one per item that wanted logits, in item order."""

    @abstractmethod
    def sample_token(self, seq: Sequence, batch_index: int) -> int:
        """Sample `seq`'s next token from the logits of item `batch_index` of the last `eval_batch`."""

    @abstractmethod
    def new_sampler(self, params: SamplingParams) -> Any: ...

    @abstractmethod
    def free_sampler(self, sampler: Any) -> None: ...

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

    def backend_json(self) -> dict[str, Any]:
        """--json's `backend`: where the run went."""
        return {"name": "in-process", "device": self.device}

    def throughput_key(self) -> str | None:
        """What its decoding speed depends on (host, build, model, threads, offload), naming its cached
        throughput curve; None for an engine whose speed means nothing (a scripted fake)."""
        return None

    def fresh_context(self) -> None:  # noqa: B027 (a backend without a context has nothing to redo)
        """Start over with an empty cache of the same size (after a measurement, so the run that follows
        decodes exactly as it would have without one); every sequence must have been released."""

    def check_sampling(self, params: SamplingParams) -> None:
        """Build and free a sampler for `params`, so a bad grammar fails before any decoding."""
        self.free_sampler(self.new_sampler(params))

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
            self.eval_batch([(seq.slot, t, lo + i, False) for i, t in enumerate(chunk)])
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
            self.free_sampler(seq.sampler)
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
