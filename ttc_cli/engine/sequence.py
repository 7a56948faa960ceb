"""A sequence of tokens in the KV cache, how it samples, and why it stopped: the engine's vocabulary.

A `Sequence` is a row of tokens whose prefix lives in the KV cache (`tokens[:n_cached]`) and whose tail is
pending evaluation. Keeping the last sampled token pending, rather than evaluating it eagerly, makes every
fork uniform and free: a child copies the parent's cached cells (with a unified KV cache that shares them,
nothing is re-evaluated) and inherits the pending tail, which the next batched step evaluates in the
child's own sequence.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EvalItem = tuple[int, int, int, bool]  # (slot, token, position, wants_logits)
MAX_SEQUENCES = 256  # sequences one context runs at once: llama.cpp's limit (LLAMA_MAX_SEQ)

FINISH_STOP = "stop"  # end-of-generation token or stop string
FINISH_LENGTH = "length"  # the candidate's own max tokens
FINISH_BUDGET = "budget"  # the query's token budget ran out
FINISH_CANCELLED = "cancelled"  # a strategy cancelled it (pruning, early stop)
FINISH_INTERRUPTED = "interrupted"  # the user pressed Ctrl-C
FINISH_PROBED = "probed"  # its answer probes agreed: it ended there, its probed answer its vote


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


@dataclass(frozen=True)
class KvNeeds:
    """What a run holds at once at most: KV-cache cells (one per evaluated token) and sequences."""

    cells: int
    sequences: int

    def __add__(self, other: KvNeeds) -> KvNeeds:
        return KvNeeds(self.cells + other.cells, self.sequences + other.sequences)


def common_prefix(a: Seq[int], b: Seq[int]) -> int:
    """How many leading tokens two token lists share (a fork can reuse that much of a cached sequence)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
