"""The llama.cpp backend: with `llama_vocab.py` (its tokenizer and chat template), the only code that
imports llama_cpp.

One model per process, one context whose unified KV cache lets `llama_memory_seq_cp` fork a sequence by
sharing its cells, and one `llama_batch` allocated per context and reused for every forward pass. Sampling
uses llama.cpp's sampler chains (one per sequence, seeded), while log-probabilities and top-k alternatives
are computed with numpy from the same logit rows (see `Decoder`).

This module is longer than most here (~290 lines) because it is most of the llama.cpp boundary
(loading with its interruptible progress callback, the context and its resizing, batches, sampler
chains, grammars, logging): keeping the ctypes calls in two files is the rule that keeps the rest free
of them.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

import llama_cpp as L
import numpy as np

from ttc_cli.engine.base import Engine
from ttc_cli.engine.llama_vocab import LlamaVocab, init_backend
from ttc_cli.engine.sequence import MAX_SEQUENCES, EvalItem, SamplingParams, Sequence
from ttc_cli.errors import EngineError, Interrupted, UsageError

KV_PAGE = 256  # llama.cpp pads its KV cache to 256 cells; asking for whole pages wastes nothing


def supports_gpu_offload() -> bool:
    return bool(L.llama_supports_gpu_offload())


def build_features() -> str:
    """What this llama.cpp build was compiled with, as llama.cpp says it ('CPU : AVX2 = 1 | ...')."""
    init_backend(False)
    return " ".join(L.llama_print_system_info().decode(errors="replace").split())


def llama_version() -> str:
    return str(getattr(L, "__version__", "unknown"))


def gpu_devices() -> list[dict[str, Any]]:
    """The GPUs this llama.cpp build can offload to: [{name, description, total_bytes, free_bytes}], from
    ggml's device registry (the Python bindings do not wrap it, so ctypes reads libggml). [] on a CPU build,
    and when the library or its registry is not there (an older build)."""
    import ctypes

    init_backend(False)
    for lib in sorted((Path(L.__file__).parent / "lib").glob("*ggml.*")):  # libggml.so, .dylib, ggml.dll
        try:
            g = ctypes.CDLL(str(lib))
            count, get = g.ggml_backend_dev_count, g.ggml_backend_dev_get
        except (OSError, AttributeError):
            continue
        count.restype, get.restype, get.argtypes = ctypes.c_size_t, ctypes.c_void_p, [ctypes.c_size_t]
        for f in (g.ggml_backend_dev_name, g.ggml_backend_dev_description):
            f.restype, f.argtypes = ctypes.c_char_p, [ctypes.c_void_p]
        g.ggml_backend_dev_type.restype, g.ggml_backend_dev_type.argtypes = ctypes.c_int, [ctypes.c_void_p]
        size = ctypes.POINTER(ctypes.c_size_t)
        g.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, size, size]
        out = []
        for i in range(count()):
            dev = get(i)
            if g.ggml_backend_dev_type(dev) not in (1, 2):  # ggml's DEVICE_TYPE_GPU and _IGPU (not CPU)
                continue
            free, total = ctypes.c_size_t(), ctypes.c_size_t()
            g.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
            out.append({
                "name": g.ggml_backend_dev_name(dev).decode(errors="replace"),
                "description": g.ggml_backend_dev_description(dev).decode(errors="replace"),
                "total_bytes": total.value,
                "free_bytes": free.value,
            })  # fmt: skip
        return out
    return []


class LlamaEngine(Engine):
    """A GGUF model loaded once, with a context resized (between runs) to what a request needs."""

    # Tokens per forward pass. A pass cannot be interrupted, so it is what bounds how long Ctrl-C waits:
    # 128 prompt tokens take 0.4 s on the 135M model and 0.65 s on a 0.5B one on 2 cores (512: 1.6 and
    # 2.1 s), for 0-20 % less prefill throughput. Decode steps of up to 128 samples are one pass.
    n_batch = 128

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        gpu_layers: int | None = None,
        threads: int | None = None,
        n_ctx: int = 4096,
        n_seq_max: int = 64,
        extra_bufts: bool | None = None,
        verbose: bool = False,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__(n_seq_max)
        init_backend(verbose)
        self.path = Path(path)
        self.model_name = self.path.name
        self.threads = threads or os.cpu_count() or 1
        self.gpu_layers = (999 if supports_gpu_offload() else 0) if gpu_layers is None else gpu_layers
        if extra_bufts is None:
            from ttc_cli.engine.host import extra_bufts_allowed

            extra_bufts = extra_bufts_allowed(self.path, llama_version())

        params = L.llama_model_default_params()
        params.n_gpu_layers = self.gpu_layers
        params.use_extra_bufts = extra_bufts
        self.extra_bufts = extra_bufts
        # llama.cpp asks between tensors whether to go on: a big model's load stops at Ctrl-C too.
        going_on = L.llama_progress_callback(lambda progress, user: not (stop is not None and stop.is_set()))
        params.progress_callback = going_on
        self._model = L.llama_model_load_from_file(str(self.path).encode(), params)
        if not self._model and stop is not None and stop.is_set():
            raise Interrupted(130)
        if not self._model:
            raise UsageError(
                f"llama.cpp could not load {self.path} (truncated, corrupt or an unsupported architecture)",
                "check the file, or run with --verbose to see llama.cpp's log",
            )
        self.vocab = LlamaVocab(self._model)
        self._vocab = L.llama_model_get_vocab(self._model)
        self.n_vocab = self.vocab.n_vocab
        self.n_ctx_train = L.llama_model_n_ctx_train(self._model)
        self._ctx: Any = None
        self._batch: Any = None
        self.n_ctx = 0
        self._open_context(n_ctx, n_seq_max)

    @property
    def device(self) -> str:
        """Where the model runs, for the UI header: 'CPU · 2 threads' or 'GPU · 999 layers'."""
        if self.gpu_layers > 0 and supports_gpu_offload():
            return f"GPU · {self.gpu_layers} layers"
        return f"CPU · {self.threads} threads"

    # ---- context -----------------------------------------------------------------------------------
    def _open_context(self, n_ctx: int, n_seq_max: int) -> None:
        previous = (self.n_ctx, self.n_seq_max) if self._ctx is not None else None
        self._close_context()
        try:
            self._create_context(n_ctx, n_seq_max)
        except EngineError:
            # Out of memory for the larger context: put the old one back, so the engine stays usable
            # (a NULL context would crash the process at the next decode).
            if previous is not None:
                self._create_context(*previous)
            raise

    def _create_context(self, n_ctx: int, n_seq_max: int) -> None:
        params = L.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = self.n_batch
        params.n_ubatch = self.n_batch
        params.n_seq_max = n_seq_max
        params.kv_unified = True  # forks share cells instead of copying them
        params.n_threads = self.threads
        params.n_threads_batch = self.threads
        params.no_perf = True
        ctx = L.llama_init_from_model(self._model, params)
        if not ctx:
            raise EngineError(f"llama.cpp could not create a context of {n_ctx} tokens (out of memory?)")
        self._ctx = ctx
        self._mem = L.llama_get_memory(ctx)
        self.n_ctx = L.llama_n_ctx(ctx)
        self._batch = L.llama_batch_init(self.n_batch, 0, 1)
        self._reset_slots(n_seq_max)

    def _close_context(self) -> None:
        if self._batch is not None:
            L.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            L.llama_free(self._ctx)
            self._ctx = None

    def reserve(self, n_ctx: int, n_seq: int, cap: int | None = None) -> None:
        """Make sure the context holds `n_ctx` cells (in whole pages, never past `cap`) and `n_seq`
        sequences; recreating it drops every sequence, so this happens between runs only."""
        if n_seq > MAX_SEQUENCES:
            raise UsageError(
                f"{n_seq} parallel sequences requested", f"llama.cpp allows at most {MAX_SEQUENCES}"
            )
        cells = -(-n_ctx // KV_PAGE) * KV_PAGE
        cells = min(cells, cap) if cap is not None else cells
        if cells > self.n_ctx or n_seq > self.n_seq_max:
            self._open_context(max(cells, self.n_ctx), max(n_seq, self.n_seq_max))

    def throughput_key(self) -> str:
        from ttc_cli.engine.host import cpu_signature

        size = self.path.stat().st_size if self.path.exists() else 0
        offload = f"gpu {self.gpu_layers}" if self.gpu_layers > 0 and supports_gpu_offload() else "cpu"
        return (
            f"{cpu_signature()}|llama-cpp-python {llama_version()}|{self.model_name}:{size}|"
            f"threads {self.threads}|{offload}|extra-bufts {int(self.extra_bufts)}"
        )

    def fresh_context(self) -> None:
        self._open_context(self.n_ctx, self.n_seq_max)

    def close(self) -> None:
        self._close_context()
        if self._model:
            L.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        # At interpreter exit llama_cpp's module globals may already be gone.
        with contextlib.suppress(Exception):
            self.close()

    # ---- tokens and chat (the vocabulary's) ---------------------------------------------------------
    def tokenize(self, text: str, *, add_special: bool = False, special: bool = False) -> list[int]:
        return self.vocab.tokenize(text, add_special=add_special, special=special)

    def token_bytes(self, token: int) -> bytes:
        return self.vocab.token_bytes(token)

    def special_text(self, token: int) -> str:
        return self.vocab.special_text(token)

    def is_eog(self, token: int) -> bool:
        return self.vocab.is_eog(token)

    def metadata(self, key: str) -> str | None:
        return self.vocab.metadata(key)

    def chat_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        return self.vocab.chat_tokens(messages)

    # ---- backend primitives ------------------------------------------------------------------------
    def eval_batch(self, items: Seq[EvalItem]) -> None:
        batch = self._batch
        n = len(items)
        for i, (slot, token, pos, logits) in enumerate(items):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = slot
            batch.logits[i] = logits
        batch.n_tokens = n
        rc = L.llama_decode(self._ctx, batch)
        if rc == 1:
            raise EngineError(f"the KV cache ({self.n_ctx} cells) is full; raise --ctx or lower the budget")
        if rc != 0:
            raise EngineError(f"llama_decode failed with code {rc}")

    def batch_logits(self, n_outputs: int) -> np.ndarray:
        ptr = L.llama_get_logits(self._ctx)
        return np.ctypeslib.as_array(ptr, shape=(n_outputs, self.n_vocab))

    def sample_token(self, seq: Sequence, batch_index: int) -> int:
        return int(L.llama_sampler_sample(seq.sampler, self._ctx, batch_index))

    def new_sampler(self, params: SamplingParams) -> Any:
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        if params.logit_bias:
            pairs = [L.llama_logit_bias(token, bias) for token, bias in params.logit_bias]
            biases = (L.llama_logit_bias * len(pairs))(*pairs)
            L.llama_sampler_chain_add(
                chain, L.llama_sampler_init_logit_bias(self.n_vocab, len(params.logit_bias), biases)
            )
        if params.grammar:
            grammar = L.llama_sampler_init_grammar(self._vocab, params.grammar.encode(), b"root")
            if not grammar:
                L.llama_sampler_free(chain)
                raise UsageError(
                    "llama.cpp could not parse the grammar", "check its GBNF syntax (a 'root ::= ...' rule)"
                )
            L.llama_sampler_chain_add(chain, grammar)
        if params.temperature <= 0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
            return chain
        if params.top_k > 0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_k(params.top_k))
        if params.top_p < 1:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_p(params.top_p, 1))
        if params.min_p > 0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_min_p(params.min_p, 1))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_temp(params.temperature))
        L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(params.seed & 0xFFFFFFFF))
        return chain

    def free_sampler(self, sampler: Any) -> None:
        L.llama_sampler_free(sampler)

    def _copy_cells(self, src: int, dst: int, n: int) -> None:
        L.llama_memory_seq_cp(self._mem, src, dst, 0, n)

    def _drop_cells(self, slot: int) -> None:
        L.llama_memory_seq_rm(self._mem, slot, -1, -1)

    def _trim_cells(self, slot: int, keep: int) -> None:
        L.llama_memory_seq_rm(self._mem, slot, keep, -1)
