"""Budget forcing for models that reason inside tags (s1, Muennighoff et al. 2025).

A `BudgetForcing` rides on one sequence and runs after each sampled token (`Decoder._record` calls it):
- `--think-budget N`: once the model has thought N tokens, the closing tag and an answer cue are appended
  as forced text, so the model answers now instead of thinking on.
- `--min-think N`: when the model tries to stop thinking earlier (writes the closing tag, or ends the
  generation), that tail is cut off and "Wait" is appended instead, so it keeps reasoning.
Forced text is evaluated like a prompt, never sampled, so it costs the budget nothing; the tokens the
model sampled and that were cut stay charged, because they were generated.
Tags are matched on bytes, not tokens, so a tag split across several tokens (as in most vocabularies
without a dedicated `</think>` token) is found all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ttc_cli.engine.decoder import Backend
    from ttc_cli.engine.sequence import Sequence


@dataclass(frozen=True)
class Thinking:
    """The tags and texts of a thinking model (profile `thinking:`) and the limits of one run."""

    open: str = "<think>"
    close: str = "</think>"
    wait: str = "Wait"
    answer: str = "\n\nThe answer is"
    budget: int | None = None  # --think-budget
    minimum: int = 0  # --min-think


@dataclass
class BudgetForcing:
    spec: Thinking
    thinking: bool = False  # inside the tags now
    done: bool = False  # the thinking ended (on its own or forced); nothing more to do
    think_tokens: int = 0
    actions: list[tuple[str, int]] = field(default_factory=list)  # ("wait" | "end", thinking tokens)
    reported: int = 0  # actions already turned into events
    _offsets: list[int] = field(default_factory=list)  # text byte offset where each sampled token began
    _positions: list[int] = field(default_factory=list)  # each sampled token's index in `seq.tokens`
    _think_from: int = 0  # byte offset where the thinking began

    def after_token(self, engine: Backend, seq: Sequence, eog: bool) -> bool:
        """Called after each sampled token; True when it rewrote the tail and generation must go on."""
        token_len = 0 if eog else len(engine.token_bytes(seq.tokens[-1]))
        self._offsets.append(len(seq.text_bytes) - token_len)
        self._positions.append(len(seq.tokens) - 1)
        if self.done:
            return False
        if not self.thinking:
            at = seq.text_bytes.find(self.spec.open.encode(), max(0, len(seq.text_bytes) - token_len - 64))
            if at == -1:
                return False
            self.thinking, self._think_from = True, at + len(self.spec.open.encode())
            return False
        self.think_tokens += 1
        close = self.spec.close.encode()
        at = seq.text_bytes.find(close, max(self._think_from, len(seq.text_bytes) - token_len - len(close)))
        if at != -1 or eog:
            if self.think_tokens < self.spec.minimum:
                cut_at = at if at != -1 else len(seq.text_bytes)
                self._cut(engine, seq, cut_at, eog)
                self._force(engine, seq, self.spec.wait)
                self.actions.append(("wait", self.think_tokens))
                return True
            self.thinking, self.done = False, True
            return False
        if self.spec.budget is not None and self.think_tokens >= self.spec.budget:
            self._force(engine, seq, self.spec.close + self.spec.answer)
            self.thinking, self.done = False, True
            self.actions.append(("end", self.think_tokens))
            return True
        return False

    def starts_inside(self) -> None:
        """The prompt itself opened the thinking (a template or prompt prefill ending in the open tag)."""
        self.thinking = True

    def _cut(self, engine: Backend, seq: Sequence, byte_at: int, eog: bool) -> None:
        """Drop the sampled tokens from the one holding byte `byte_at` on (an end token included)."""
        if eog and byte_at >= len(seq.text_bytes):
            first = len(self._offsets) - 1  # just the end-of-generation token
        else:
            first = max(k for k, off in enumerate(self._offsets) if off <= byte_at)
        engine.truncate(seq, self._positions[first])
        del seq.text_bytes[self._offsets[first] :]
        del self._offsets[first:]
        del self._positions[first:]

    def _force(self, engine: Backend, seq: Sequence, text: str) -> None:
        engine.append(seq, engine.tokenize(text, special=True))  # the profile's tags may be control tokens
        seq.text_bytes += text.encode()


def forced_cells(engine: Backend, spec: Thinking, max_tokens: int) -> int:
    """The most KV cells forcing adds to one sample beyond its `max_tokens` sampled ones, from the forced
    texts' real tokens: the end (closing tag and answer cue) once, and per "Wait" its tokens less the one
    sampled token it replaces. Every wait cuts at least that token, and waits stop at the minimum."""
    end = len(engine.tokenize(spec.close + spec.answer, special=True)) if spec.budget is not None else 0
    per_wait = max(0, len(engine.tokenize(spec.wait, special=True)) - 1)
    return end + min(spec.minimum, max_tokens) * per_wait


def prompt_opens_thinking(engine: Backend, prompt: list[int], spec: Thinking) -> bool:
    tail = b"".join(engine.token_bytes(t) for t in prompt[-16:])
    return tail.rstrip().endswith(spec.open.encode())
