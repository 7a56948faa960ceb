"""A scripted engine for exact control in unit tests of strategy and decoder logic.

Tokens are bytes (0-255) plus one end-of-generation token. Candidate i (seed base+i) types out script
i (cycling), one byte per step, then ends; its logit row puts `confidence` on the byte it is about to type,
so log-probabilities, and hence scores and vote weights, are controlled by the test. It runs through the
real `Engine`/`Decoder` code, so budget charging and finish reasons are the production ones.

An answer probe (`engine/answer_probe.py`: greedy, one line) reads the chain it forked from: it writes
the last "[N]" marker in the chain's text so far, or nothing, so a test scripts what probes find and when.

It also keeps llama.cpp's account of a unified KV cache: every evaluated token takes a cell, a fork's
copy shares its parent's cells, and a cell is free once no sequence holds it. `reserve` sets the capacity
and a decode past it fails as llama.cpp's does, so a test can check that `prepare` reserved enough.
"""

from __future__ import annotations

import re
from collections.abc import Sequence as Seq
from dataclasses import dataclass

import numpy as np

from ttc_cli.engine.answer_probe import PROBE_STOP
from ttc_cli.engine.base import Engine
from ttc_cli.engine.sequence import EvalItem, SamplingParams, Sequence
from ttc_cli.errors import EngineError

EOG = 256
VOCAB = 257


@dataclass
class Script:
    text: str
    confidence: float = 2.0  # logit of the scripted token; the other 256 logits are 0


class _Typist:
    def __init__(self, script: Script) -> None:
        self.data = script.text.encode() + bytes([0])  # sentinel position for EOG
        self.pos = 0
        self.confidence = script.confidence

    def peek(self) -> int:
        return EOG if self.pos >= len(self.data) - 1 else self.data[self.pos]


class _ProbeTypist(_Typist):
    """A probe's greedy line: the chain's last "[N]" marker, read when the probe first decodes."""

    def __init__(self) -> None:
        super().__init__(Script(""))
        self.read = False

    def start(self, tokens: list[int]) -> None:
        if not self.read:
            marks = re.findall(rb"\[(\d+)\]", bytes(t for t in tokens if t < 256))
            self.data = (b" " + marks[-1] + b".\n" if marks else b"\n") + bytes([0])
            self.read = True


class FakeEngine(Engine):
    model_name = "fake"
    n_ctx_train = 1 << 20

    def __init__(self, scripts: list[Script], n_seq_max: int = 64, n_batch: int = 512) -> None:
        super().__init__(n_seq_max)
        self.scripts = scripts
        self.n_batch = n_batch
        self.evals: list[list[EvalItem]] = []
        self.trims: list[tuple[int, int]] = []
        self._by_slot: dict[int, Sequence] = {}
        self._last: list[EvalItem] = []
        self.capacity: int | None = None  # cells reserved; None: unlimited
        self._cells: dict[int, dict[int, int]] = {}  # slot -> position -> cell id
        self._refs: dict[int, int] = {}  # cell id -> sequences holding it
        self._next_cell = 0
        self.peak_cells = 0

    def tokenize(self, text: str, *, add_special: bool = False, special: bool = False) -> list[int]:
        return list(text.encode())

    def chat_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        return self.tokenize("\n".join(m["content"] for m in messages))

    def reserve(self, n_ctx: int, n_seq: int, cap: int | None = None) -> None:
        self.capacity = n_ctx
        if n_seq > self.n_seq_max:
            self._reset_slots(n_seq)

    def close(self) -> None:
        pass

    def is_eog(self, token: int) -> bool:
        return token == EOG

    def token_bytes(self, token: int) -> bytes:
        return b"" if token == EOG else bytes([token])

    def prefill(self, tokens, stop=None):  # type: ignore[no-untyped-def]
        seq = super().prefill(tokens, stop)
        self._by_slot[seq.slot] = seq
        return seq

    def fork(self, seq: Sequence, at: int | None = None) -> Sequence:
        child = super().fork(seq, at)
        self._by_slot[child.slot] = child
        return child

    def eval_batch(self, items: Seq[EvalItem]) -> None:
        self._last = list(items)
        self.evals.append(self._last)
        for slot, _, pos, _ in items:
            self._unref(slot, [pos])
            self._cells.setdefault(slot, {})[pos] = self._next_cell
            self._refs[self._next_cell] = 1
            self._next_cell += 1
        self.peak_cells = max(self.peak_cells, len(self._refs))
        if self.capacity is not None and len(self._refs) > self.capacity:
            raise EngineError(f"the KV cache ({self.capacity} cells) is full")

    def _unref(self, slot: int, positions) -> None:  # type: ignore[no-untyped-def]
        held = self._cells.get(slot, {})
        for pos in list(positions):
            cell = held.pop(pos, None)
            if cell is not None:
                self._refs[cell] -= 1
                if not self._refs[cell]:
                    del self._refs[cell]

    def batch_logits(self, n_outputs: int) -> np.ndarray:
        rows = np.zeros((n_outputs, VOCAB), dtype=np.float32)
        outputs = [slot for slot, _, _, wants in self._last if wants]
        for row, slot in zip(rows, outputs, strict=True):
            seq = self._by_slot[slot]
            typist = seq.sampler
            if isinstance(typist, _ProbeTypist):
                typist.start(seq.tokens)
            row[typist.peek()] = typist.confidence
        return rows

    def sample_token(self, seq: Sequence, batch_index: int) -> int:
        typist: _Typist = seq.sampler
        token = typist.peek()
        typist.pos += 1
        return token

    def new_sampler(self, params: SamplingParams) -> _Typist:
        if params.temperature == 0 and params.stop == PROBE_STOP:
            return _ProbeTypist()
        return _Typist(self.scripts[params.seed % len(self.scripts)])

    def free_sampler(self, sampler: object) -> None:
        pass

    def _copy_cells(self, src: int, dst: int, n: int) -> None:
        for pos, cell in self._cells.get(src, {}).items():
            if pos < n:
                self._unref(dst, [pos])
                self._cells.setdefault(dst, {})[pos] = cell
                self._refs[cell] += 1

    def _drop_cells(self, slot: int) -> None:
        self._by_slot.pop(slot, None)
        self._unref(slot, list(self._cells.get(slot, {})))

    def _trim_cells(self, slot: int, keep: int) -> None:
        self.trims.append((slot, keep))
        self._unref(slot, [pos for pos in self._cells.get(slot, {}) if pos >= keep])

    @property
    def cells_in_use(self) -> int:
        return len(self._refs)
