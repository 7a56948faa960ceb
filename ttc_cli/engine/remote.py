"""The engine for an OpenAI-compatible server (`--backend openai`): the same interface, text on the wire.

Two ways to stand for the server's tokens, chosen by whether the user gave a local copy of the model's
tokenizer (`--tokenizer`, a GGUF of the same model; only its vocabulary is loaded):

- Without one, a server takes chat messages and streams back text, so this engine's "tokens" are the
  pieces the server streams, interned into a vocabulary of its own. A prompt is padding up to its real
  token count (the server's tokenizer where it has an endpoint, else a tiktoken estimate), so every check
  on prompt length stays true, then a marker token that stands for its chat messages (last, so that a
  conversation grown by a turn shares the padding of the one before, as a prefix). Such a sequence
  cannot be continued mid-reply: the step-level searches (beam, lookahead, mcts), budget forcing, a
  prompt's assistant prefill and the judge are refused with one line (`refine` works: each of its turns
  is a whole new conversation).
- With one, tokens are the model's own: ttc renders the chat template and counts exactly, and any
  sequence (a search path, a judge prompt, a reply with forced text) is sent as its text to
  `/v1/completions`, so every strategy runs. The server's prefix cache does what KV forking does in
  process: a path's next step re-sends the path, and the server re-evaluates only what it has not cached.
  Streamed pieces that are one token of the vocabulary become that token; any other piece (several
  tokens in one chunk, a split character) is interned past the vocabulary's end.

Prefill evaluates nothing, forks copy a list, and `RemoteDecoder` streams one request per sample,
`parallel` at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

import numpy as np

from ttc_cli.budget import TokenBudget
from ttc_cli.engine import token_count
from ttc_cli.engine.base import Engine
from ttc_cli.engine.capabilities import Capabilities, count_tokens, probe
from ttc_cli.engine.llama_vocab import LlamaVocab
from ttc_cli.engine.sequence import MAX_SEQUENCES, EvalItem, SamplingParams, Sequence
from ttc_cli.engine.server import Server
from ttc_cli.errors import EngineError

PAD = 0  # fills a prompt out to its token count; contributes no text
PER_MESSAGE = 4  # template tokens around each chat message, in the tiktoken estimate (OpenAI's figure)


class RemoteEngine(Engine):
    """An OpenAI-compatible server's model behind the engine interface (every strategy with a local
    tokenizer; the sampling strategies without one)."""

    def __init__(
        self,
        base_url: str,
        model: str | None,
        api_key: str | None = None,
        parallel: int | None = None,
        stop: threading.Event | None = None,
        tokenizer: Path | None = None,
    ) -> None:
        super().__init__(MAX_SEQUENCES)
        self.vocab: LlamaVocab | None = None
        self.tokenizer = tokenizer
        self.server = Server(base_url, api_key, stop)
        try:
            self.caps: Capabilities = probe(self.server, model)
            if tokenizer is not None:
                self.vocab = LlamaVocab.load(tokenizer)
        except BaseException:
            self.close()
            raise
        self.model_name = self.caps.model
        self.n_ctx_train = self.caps.context or 1 << 20  # unknown: the server says when a prompt is too long
        self.parallel = max(1, parallel or self.caps.parallel)
        self.continues_text = self.vocab is not None
        self.gives_logprobs = self.caps.logprobs
        self.n_batch = 1 << 30
        self._base = self.vocab.n_vocab if self.vocab is not None else 0  # interned pieces' first id
        # Without a vocabulary, piece 0 is the padding (no text); with one, id 0 is the model's own.
        self._pieces: list[bytes] = [] if self.vocab is not None else [b""]
        self._ids: dict[bytes, int] = {} if self.vocab is not None else {b"": PAD}
        self._piece_ids: dict[str, int] = {}  # streamed text -> its token (pieces repeat: cache them)
        self._prompts: dict[int, list[dict[str, str]]] = {}

    # ---- vocabulary --------------------------------------------------------------------------------
    def intern(self, piece: bytes) -> int:
        token = self._ids.get(piece)
        if token is None:
            token = self._ids[piece] = self._base + len(self._pieces)
            self._pieces.append(piece)
        return token

    def piece_token(self, text: str) -> int:
        """The token a streamed piece stands for: the vocabulary's, where it is exactly one of them."""
        token = self._piece_ids.get(text)
        if token is None:
            ids = self.vocab.tokenize(text) if self.vocab is not None else []
            exact = len(ids) == 1 and self.token_bytes(ids[0]) == text.encode()
            token = self._piece_ids[text] = ids[0] if exact else self.intern(text.encode())
        return token

    def token_bytes(self, token: int) -> bytes:
        if token < self._base:
            assert self.vocab is not None
            return self.vocab.token_bytes(token)
        return self._pieces[token - self._base]

    def is_eog(self, token: int) -> bool:
        # Without a vocabulary a server ends a reply by ending the stream, never with a token.
        return self.vocab is not None and token < self._base and self.vocab.is_eog(token)

    @property
    def eos(self) -> int | None:
        """The token that stands for a reply the server ended by itself (with a vocabulary only)."""
        return self.vocab.eos if self.vocab is not None and self.vocab.eos >= 0 else None

    def count(self, text: str) -> int:
        """`text`'s tokens: the local tokenizer's, else the server's, else a tiktoken estimate."""
        if self.vocab is not None:
            return len(self.vocab.tokenize(text))
        exact = count_tokens(self.server, self.caps, text) if text else 0
        return exact if exact is not None else token_count.count(text, self.model_name)

    def tokenize(self, text: str, *, add_special: bool = False, special: bool = False) -> list[int]:
        if self.vocab is not None:
            return self.vocab.tokenize(text, add_special=add_special, special=special)
        n = self.count(text)
        return [self.intern(text.encode())] + [PAD] * (n - 1) if n else []

    def chat_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        if self.vocab is not None:
            return self.vocab.chat_tokens(messages)
        text = "".join(m["content"] for m in messages)
        n = self.count(text) + PER_MESSAGE * len(messages)
        marker = self.intern(f"\0prompt {len(self._prompts)}".encode())
        self._prompts[marker] = [dict(m) for m in messages]
        return [PAD] * (n - 1) + [marker]

    def request_of(self, seq: Sequence) -> tuple[list[dict[str, str]], str]:
        """The chat messages a sequence's tokens stand for, and the reply text already in it."""
        at = next((i for i in range(len(seq.tokens) - 1, -1, -1) if seq.tokens[i] in self._prompts), None)
        if at is None:
            raise EngineError("a server can only continue a sequence that holds a chat prompt")
        reply = b"".join(self._pieces[t] for t in seq.tokens[at + 1 :]).decode("utf-8", errors="replace")
        return self._prompts[seq.tokens[at]], reply

    def prompt_text(self, seq: Sequence) -> str:
        """A sequence as the text prompt of a completion: control tokens spelled out (the server parses
        them back), the leading BOS left to the server, which adds its own."""
        vocab = self.vocab
        assert vocab is not None, "only a vocabulary's tokens can be sent as text"
        tokens = seq.tokens[1:] if vocab.add_bos and seq.tokens[:1] == [vocab.bos] else seq.tokens
        raw = b"".join(vocab.spelled(t) if t < self._base else self._pieces[t - self._base] for t in tokens)
        return raw.decode("utf-8", errors="replace")

    # ---- the engine interface ------------------------------------------------------------------------
    def prefill(self, tokens: Seq[int], stop: threading.Event | None = None) -> Sequence:
        if not tokens:
            raise EngineError("cannot prefill an empty prompt")
        seq = Sequence(slot=self._take_slot(), tokens=list(tokens), n_cached=len(tokens) - 1)
        self.stats.prefill_calls += 1
        return seq

    def decoder(self, budget: TokenBudget, stop: threading.Event | None = None) -> Any:
        from ttc_cli.engine.remote_decoder import RemoteDecoder

        return RemoteDecoder(self, budget, stop)

    def check_sampling(self, params: SamplingParams) -> None:
        if params.grammar and not self.caps.sampler_extras:
            raise EngineError(f"the server at {self.server.url} takes no grammar, which this prompt needs")

    def reserve(self, n_ctx: int, n_seq: int, cap: int | None = None) -> None:
        pass  # the server sizes its own cache

    def degraded(self) -> list[str]:
        """What this run loses on this server (a local tokenizer makes up for a missing tokenize endpoint)."""
        lost = self.caps.degraded()
        if self.vocab is not None:
            lost = [w for w in lost if not w.startswith("no tokenize endpoint")]
        return lost

    @property
    def device(self) -> str:
        lost = "".join(f" · {what}" for what in self.degraded())  # the live header says what is lost
        return f"{self.caps.kind} at {self.server.url}{lost}"

    def close(self) -> None:
        self.server.close()
        if self.vocab is not None:
            self.vocab.close()

    def backend_json(self) -> dict[str, Any]:
        """--json's `backend`: where the run went, and what this server could not give it."""
        return {
            "name": "openai",
            "device": self.device,
            "url": self.server.url,
            "server": self.caps.kind,
            "parallel": self.parallel,
            "token_counts": self.token_counts,
            "tokenizer": str(self.tokenizer) if self.tokenizer is not None else None,
            "continues_text": self.continues_text,
            "degraded": self.degraded(),
        }

    @property
    def token_counts(self) -> str:
        """Whose counts the prompt lengths are: the local tokenizer's, the server's, or tiktoken's."""
        if self.vocab is not None:
            return "local-tokenizer"
        return "server" if self.caps.tokenize is not None else "tiktoken-estimate"

    # ---- primitives a server does not have (nothing in this engine calls them) -----------------------
    def eval_batch(self, items: Seq[EvalItem]) -> None:
        raise EngineError("a server evaluates whole requests, not single tokens")

    def batch_logits(self, n_outputs: int) -> np.ndarray:
        raise EngineError("a server returns log-probabilities of its choices, not logit rows")

    def sample_token(self, seq: Sequence, batch_index: int) -> int:
        raise EngineError("a server samples on its side")

    def new_sampler(self, params: SamplingParams) -> Any:
        return None

    def free_sampler(self, sampler: Any) -> None:
        pass

    def _copy_cells(self, src: int, dst: int, n: int) -> None:
        pass  # nothing is cached here: a fork's prompt is re-sent, and the server's prefix cache reuses it

    def _drop_cells(self, slot: int) -> None:
        pass

    def _trim_cells(self, slot: int, keep: int) -> None:
        pass
