"""A GGUF model's tokenizer and chat template through llama.cpp: the in-process engine's vocabulary, and,
loaded alone (`vocab_only`, no weights, well under a second), a server's model's exact tokenizer
(`--tokenizer`), so that ttc can count, render and continue that model's text itself.

With `llama.py`, the only code that imports llama_cpp.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

import llama_cpp as L

from ttc_cli.errors import UsageError

# llama.cpp keeps a global log callback; the ctypes object must outlive every call into the library.
_LOG_STATE: dict[str, Any] = {"verbose": False, "callback": None}
_BACKEND_READY = False


def _log_callback(level: int, text: bytes, _user: Any) -> None:
    if _LOG_STATE["verbose"]:
        sys.stderr.write(text.decode("utf-8", errors="replace"))


def init_backend(verbose: bool) -> None:
    global _BACKEND_READY
    _LOG_STATE["verbose"] = verbose
    if _LOG_STATE["callback"] is None:
        _LOG_STATE["callback"] = L.llama_log_callback(_log_callback)
        L.llama_log_set(_LOG_STATE["callback"], ctypes.c_void_p(0))
    if not _BACKEND_READY:
        L.llama_backend_init()
        _BACKEND_READY = True


class LlamaVocab:
    """Tokenize, detokenize and render chat prompts with a loaded llama.cpp model's vocabulary."""

    def __init__(self, model: Any, owned: bool = False) -> None:
        self._model = model
        self._owned = owned  # loaded by `load`: freed by `close` (an engine frees its own model)
        self._vocab = L.llama_model_get_vocab(model)
        self.n_vocab = L.llama_vocab_n_tokens(self._vocab)
        self.bos = L.llama_vocab_bos(self._vocab)
        self.eos = L.llama_vocab_eos(self._vocab)
        self.add_bos = bool(L.llama_vocab_get_add_bos(self._vocab))
        self._piece_cache: dict[int, bytes] = {}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LlamaVocab:
        """Only the vocabulary of the GGUF at `path` (`close` frees it)."""
        init_backend(False)
        params = L.llama_model_default_params()
        params.vocab_only = True
        model = L.llama_model_load_from_file(str(path).encode(), params)
        if not model:
            raise UsageError(
                f"llama.cpp could not read the tokenizer of {path} (truncated, corrupt or not a GGUF)",
                "pass --tokenizer a GGUF of the server's model",
            )
        return cls(model, owned=True)

    def close(self) -> None:
        if self._owned and self._model:
            L.llama_model_free(self._model)
            self._model = None

    def tokenize(self, text: str, *, add_special: bool = False, special: bool = False) -> list[int]:
        """`text`'s tokens; control-token spellings (`<|im_end|>`) become control tokens only if `special`."""
        raw = text.encode("utf-8")
        cap = len(raw) + 16
        buf = (L.llama_token * cap)()
        n = L.llama_tokenize(self._vocab, raw, len(raw), buf, cap, add_special, special)
        if n < 0:
            cap = -n
            buf = (L.llama_token * cap)()
            n = L.llama_tokenize(self._vocab, raw, len(raw), buf, cap, add_special, special)
        return list(buf[:n])

    def token_bytes(self, token: int) -> bytes:
        """What `token` writes in a reply (control tokens write nothing)."""
        piece = self._piece_cache.get(token)
        if piece is None:
            piece = self._piece_cache[token] = self._piece(token, False)
        return piece

    def special_text(self, token: int) -> str:
        """`token`'s spelling, control tokens included (`<|im_start|>`)."""
        return self._piece(token, True).decode("utf-8", errors="replace") if token >= 0 else ""

    def _piece(self, token: int, special: bool) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = L.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = L.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        return buf.raw[: max(n, 0)]

    def spelled(self, token: int) -> bytes:
        """`token` as prompt text for a server that tokenizes it again: control tokens spelled out."""
        return self._piece(token, True) if self.is_control(token) else self.token_bytes(token)

    def is_control(self, token: int) -> bool:
        return bool(L.llama_vocab_is_control(self._vocab, token))

    def is_eog(self, token: int) -> bool:
        return bool(L.llama_vocab_is_eog(self._vocab, token))

    def metadata(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = L.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            L.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", errors="replace")

    def chat_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The prompt for `messages` in the model's own chat template, tokenized with one BOS at most.

        Special tokens are parsed in the template's text only; message contents are literal text.
        """
        from ttc_cli.engine.chat import render_chat

        template = self.metadata("tokenizer.chat_template")
        parts = render_chat(template, messages, self.special_text(self.bos), self.special_text(self.eos))
        tokens: list[int] = []
        for i, (text, is_template) in enumerate(parts):
            tokens += self.tokenize(text, add_special=self.add_bos and i == 0, special=is_template)
        while self.add_bos and len(tokens) > 1 and tokens[0] == tokens[1] == self.bos:
            tokens.pop(0)  # the template wrote a BOS and the tokenizer added another
        return tokens
