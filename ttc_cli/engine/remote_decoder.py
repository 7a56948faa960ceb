"""Decoding through a server: one streamed chat completion per sample, at most `parallel` at once.

It keeps `Decoder`'s contract, so the strategies cannot tell the two apart: `step()` returns at most one
new token per sample (so per-token consumers such as the DeepConf filter see every token once), `cancel`
ends a sample now (closing its stream, which makes the server stop), and the budget is never overdrawn.

With a local tokenizer (`RemoteEngine.continues_text`), a sample's request is a text completion of its
whole sequence, so a sequence may be continued (a search path's next step, a judge prompt), stop strings
are found here as the pieces arrive (so a step keeps its delimiter, as in process) and end the stream,
and budget forcing runs after each piece as `Decoder` runs it after each token: when it rewrites the
tail (a "Wait", a closing tag), the stream is closed and a new request continues from the new text.

The budget: a request's `max_tokens` is taken from the budget when it starts (the remaining budget shared
evenly among the samples still waiting to start, at most the sample's own cap), and whatever the reply did
not use is given back when it ends. So no reply can exceed what the budget had, whatever the server does,
and the budget spent is what the replies generated: the server's reported usage where it reports one, the
streamed tokens otherwise.

It is longer than most modules here: requests, grants and give-backs, stops and forcing act on the same
per-sample record, and split apart each would need the others' state.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ttc_cli.budget import TokenBudget
from ttc_cli.engine import remote_wire as wire
from ttc_cli.engine.decoder import Backend, Decoder, Step
from ttc_cli.engine.sequence import (
    FINISH_BUDGET,
    FINISH_CANCELLED,
    FINISH_INTERRUPTED,
    FINISH_LENGTH,
    FINISH_STOP,
    SamplingParams,
    Sequence,
)
from ttc_cli.engine.server import StreamedReply
from ttc_cli.errors import EngineError

if TYPE_CHECKING:
    from ttc_cli.engine.capabilities import Capabilities
    from ttc_cli.engine.server import Server


class ServerBackend(Backend, Protocol):
    """What `RemoteDecoder` needs of its engine (`engine.remote.RemoteEngine`): the server, what it can
    do, and how a sequence becomes a request."""

    server: Server
    caps: Capabilities
    parallel: int | None
    continues_text: bool

    @property
    def eos(self) -> int | None: ...
    def request_of(self, seq: Sequence) -> tuple[list[dict[str, str]], str]: ...
    def prompt_text(self, seq: Sequence) -> str: ...
    def piece_token(self, text: str) -> int: ...


POLL_S = 0.05  # how often a waiting step looks at Ctrl-C


@dataclass(eq=False)
class Reply:
    """One sample's request: what it was granted, and what its stream has delivered but not yet stepped."""

    seq: Sequence
    granted: int
    pieces: deque[wire.Piece] = field(default_factory=deque)
    finish: str | None = None  # the server's finish reason
    done: str | None = None  # set when the stream has ended (after its usage chunk): the finish reason
    usage: int | None = None  # completion tokens the server reported
    error: str | None = None
    stream: StreamedReply | None = None
    cancelled: bool = False
    used: int = 0  # pieces stepped from this request


class RemoteDecoder:
    def __init__(
        self, engine: ServerBackend, budget: TokenBudget, stop: threading.Event | None = None
    ) -> None:
        self.engine = engine
        self.budget = budget
        self.stop = stop
        self.live: list[Sequence] = []
        self.waiting: list[Sequence] = []  # added, not yet requested (beyond `parallel`)
        self.replies: dict[Sequence, Reply] = {}
        self.arrived = threading.Condition()

    def add(self, seq: Sequence, params: SamplingParams) -> None:
        if seq.released:
            raise EngineError("cannot decode a released sequence")
        if not self.engine.continues_text and self.engine.request_of(seq)[1]:
            raise EngineError("a server cannot continue a partial reply without --tokenizer")
        seq.params = params
        seq.gen_start = len(seq.tokens)
        seq.logprobs, seq.top_ids, seq.top_logprobs = [], [], []
        seq.text_bytes, seq.text_end, seq.finish_reason = bytearray(), None, None
        seq.n_sampled = 0
        self.live.append(seq)
        self.waiting.append(seq)

    def cancel(self, seq: Sequence, reason: str = FINISH_CANCELLED) -> None:
        if seq in self.live:
            self.live.remove(seq)
            self._end(seq, reason)

    def __iter__(self) -> Any:
        while self.live:
            yield self.step()

    def step(self) -> Step:
        if self._stopped():
            return self._finish_all(FINISH_INTERRUPTED)
        if self.budget.expired:  # the deadline: every stream closes now, its unused grant given back
            return self._finish_all(FINISH_BUDGET)
        self._start_waiting()
        with self.arrived:
            while not self._ready() and not self._stopped() and not self.budget.expired:
                self.arrived.wait(POLL_S)
        if self._stopped():
            return self._finish_all(FINISH_INTERRUPTED)
        sampled: list[tuple[Sequence, int]] = []
        finished: list[Sequence] = []
        start = time.perf_counter()
        for seq in list(self.live):
            reply = self.replies.get(seq)
            if reply is None:
                if seq.finish_reason is not None:  # the budget had nothing left for it
                    self.live.remove(seq)
                    finished.append(seq)
                continue
            if reply.error is not None:
                self._finish_all(FINISH_INTERRUPTED)
                raise EngineError(reply.error)
            with self.arrived:
                piece = reply.pieces.popleft() if reply.pieces else None
            if piece is not None:
                reply.used += 1
                sampled.append((seq, self._record(seq, *piece)))
                reason = self._after_piece(seq) if self.engine.continues_text else None
            elif reply.done is not None:
                reason = self._at_end(seq, reply)
            else:
                continue
            if reason is not None:
                self.live.remove(seq)
                self._end(seq, reason)
                finished.append(seq)
        self.engine.stats.decode_s += time.perf_counter() - start
        self.engine.stats.generated_tokens += len(sampled)
        return Step(tuple(sampled), tuple(finished))

    def _after_piece(self, seq: Sequence) -> str | None:
        """What `Decoder._record` does after a token, for a text completion: forcing, stops, the cap."""
        params = seq.params or SamplingParams()
        if seq.forcing is not None and seq.forcing.after_token(self.engine, seq, False):
            return self._again(seq)
        if params.stop and Decoder.hit_stop(seq, params.stop):
            return FINISH_STOP
        return FINISH_LENGTH if seq.n_sampled >= params.max_tokens else None

    def _at_end(self, seq: Sequence, reply: Reply) -> str | None:
        """The stream ended: why the sample did (None when forcing sent it on with a new request)."""
        reason = self._reason(seq, reply)
        eos = self.engine.eos  # None without a vocabulary
        if reason == FINISH_STOP and eos is not None:
            # The server ended the reply by itself: its end token, as a sequence in process holds it
            # (the searches read a step's end from it). The server counts it in no usage: not charged.
            seq.tokens.append(eos)
            if seq.forcing is not None and seq.forcing.after_token(self.engine, seq, True):
                return self._again(seq)
        return reason

    def _again(self, seq: Sequence) -> str | None:
        """Forcing rewrote the sequence's tail: end this request, and queue one that continues the new
        text (first in line), unless the sample's cap is reached."""
        params = seq.params or SamplingParams()
        if seq.n_sampled >= params.max_tokens:
            return FINISH_LENGTH
        self._settle(self.replies.pop(seq))
        self.waiting.insert(0, seq)
        return None

    # ---- requests ------------------------------------------------------------------------------------
    def _start_waiting(self) -> None:
        running = sum(1 for s in self.live if s in self.replies)
        while self.waiting and running < (self.engine.parallel or 1):
            seq = self.waiting.pop(0)
            params = seq.params or SamplingParams()
            share = self.budget.remaining // (len(self.waiting) + 1)
            cap = params.max_tokens - seq.n_sampled  # a continued sample has used part of its cap
            granted = self.budget.take(min(cap, share)) if share > 0 else 0
            if granted <= 0:
                seq.finish_reason = FINISH_BUDGET
                continue
            reply = self.replies[seq] = Reply(seq, granted)
            threading.Thread(target=self._stream, args=(reply, params), daemon=True).start()
            running += 1

    def _stream(self, reply: Reply, params: SamplingParams) -> None:
        """Runs on its own thread: feeds the reply's pieces to `step` as they arrive."""
        try:
            if self.engine.continues_text:
                prompt = self.engine.prompt_text(reply.seq)
                body = wire.completion_body(self.engine.caps, prompt, params, reply.granted)
                stream = self.engine.server.stream("/completions", body)
            else:
                messages, _ = self.engine.request_of(reply.seq)
                body = wire.chat_body(self.engine.caps, messages, params, reply.granted)
                stream = self.engine.server.stream("/chat/completions", body)
            with self.arrived:
                if reply.cancelled:
                    stream.close()
                    return
                reply.stream = stream
            for chunk in stream.chunks():
                self._take(reply, chunk)
            with self.arrived:
                reply.done = reply.finish or "stop"
                self.arrived.notify_all()
        except Exception as e:  # noqa: BLE001 - a thread's failure must reach `step`, never print a traceback
            with self.arrived:
                if not reply.cancelled:  # closing a stream from `_end` makes its reader fail: expected
                    url = self.engine.server.url
                    reply.error = (
                        str(e) if isinstance(e, EngineError) else f"the server at {url} failed: {e!r}"
                    )
                reply.done = "error"
                self.arrived.notify_all()

    def _take(self, reply: Reply, chunk: dict[str, Any]) -> None:
        pieces, finish, usage = wire.parse_chunk(chunk)
        with self.arrived:
            reply.pieces.extend(pieces)
            reply.usage = usage if usage is not None else reply.usage
            reply.finish = finish or reply.finish
            self.arrived.notify_all()

    # ---- bookkeeping -------------------------------------------------------------------------------------
    def _ready(self) -> bool:
        for seq in self.live:
            reply = self.replies.get(seq)
            if reply is None:
                if seq.finish_reason is not None:
                    return True
            elif reply.pieces or reply.done is not None or reply.error is not None:
                return True
        return False

    def _record(self, seq: Sequence, text: str, logprob: float, top: list[tuple[str, float]]) -> int:
        params = seq.params or SamplingParams()
        token = self.engine.piece_token(text)
        seq.tokens.append(token)
        seq.n_sampled += 1
        seq.tail_is_sampled = True
        seq.logprobs.append(logprob)
        if params.top_logprobs > 0 and top:
            seq.top_ids.append(np.array([self.engine.piece_token(t) for t, _ in top], dtype=np.int32))
            seq.top_logprobs.append(np.array([lp for _, lp in top], dtype=np.float32))
        seq.text_bytes += text.encode()
        return token

    def _reason(self, seq: Sequence, reply: Reply) -> str:
        if reply.done == "length":
            params = seq.params or SamplingParams()
            return FINISH_LENGTH if seq.n_sampled >= params.max_tokens else FINISH_BUDGET
        return FINISH_STOP

    def _end(self, seq: Sequence, reason: str) -> None:
        """Close a sample's stream and settle its budget: what it generated stays spent, the rest returns."""
        seq.finish_reason = reason
        reply = self.replies.get(seq)
        if reply is None:
            if seq in self.waiting:
                self.waiting.remove(seq)
            return
        self._settle(reply)

    def _settle(self, reply: Reply) -> None:
        """Close a request's stream if still open; what it generated stays spent, the rest returns."""
        with self.arrived:
            reply.cancelled = reply.done is None
            stream = reply.stream
        if stream is not None and reply.cancelled:
            stream.close()
        used = reply.used
        if reply.usage is not None and not reply.cancelled:
            # The server's own count, where it gave one (pieces may be several tokens without logprobs).
            extra = min(reply.granted, reply.usage) - used
            if extra > 0:
                self.engine.stats.generated_tokens += extra
                used += extra
        self.budget.refund(max(0, reply.granted - used))
        reply.granted = used

    def _finish_all(self, reason: str) -> Step:
        done = tuple(self.live)
        for seq in done:
            self._end(seq, reason)
        self.live = []
        self.waiting = []
        return Step((), done)

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()
