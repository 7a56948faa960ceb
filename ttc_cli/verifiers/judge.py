"""LLM-as-judge: the model (or --verifier-model) reads a partial solution and says whether its latest step
is correct; the score is P("Yes") among Yes/No, read from the log-probabilities of its next token.

One decode per candidate, all candidates batched in one forward pass, one sampled token each charged to
the run's budget. The judge prompt (prompts/judge.yaml) is rendered with the model's chat template and
split around the solution into a head (system, question), the steps, and a tail (the question asked,
the assistant turn). The head is evaluated once per search; a candidate's judgement forks it. The judge
also keeps, per tree node, a sequence holding head + that node's path, so judging a child evaluates only
the child's own step and the tail: the judge's cost grows with the tree, not with depth × candidates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ttc_cli.engine.base import Engine
from ttc_cli.engine.sequence import KvNeeds, SamplingParams, common_prefix
from ttc_cli.engine.sequence import Sequence as KvSeq
from ttc_cli.task_prompts import load_aux_prompt
from ttc_cli.verifiers.base import Path, PathStep, Verifier, VerifierContext

JUDGE_PARAMS = SamplingParams(temperature=0.0, max_tokens=1, top_logprobs=20, seed=0)
YES = ("Yes", " Yes", "yes", " yes", "YES", " YES")
NO = ("No", " No", "no", " no", "NO", " NO")
PROMPT_KEYS = ("system", "step", "solution")
_MARKS = ("A", "Z")  # two one-letter placeholders: where their renders differ is where the steps go


@dataclass
class _Frame:
    """The judge prompt around the steps: `head` is cached in `seq`, the rest is appended per candidate."""

    seq: KvSeq
    head: int  # tokens in the head
    left: list[int]  # text between the head and the steps that the template glued to the placeholder
    right: list[int]  # the same after the steps, then the tail


def render(engine: Engine, prompts: dict[str, str], question: str, whole: bool, steps: str) -> list[int]:
    template = prompts["solution" if whole else "step"]
    user = template.replace("{steps}", steps).replace("{question}", question)
    messages = [{"role": "system", "content": prompts["system"]}, {"role": "user", "content": user}]
    return engine.chat_tokens(messages)


def judge_prompt_length(engine: Engine, question: str) -> int:
    """The judge prompt's tokens around the steps (the longer of its two forms), for sizing the cache."""
    prompts = load_aux_prompt("judge", PROMPT_KEYS)
    return max(len(render(engine, prompts, question, whole, "")) for whole in (False, True))


def judge_needs(engine: Engine, question: str, paths: int, tokens: int) -> KvNeeds:
    """Judging `paths` whole solutions of `tokens` policy tokens in all at once: both prompt heads, each
    path's prompt tail and (retokenized) text, and a sequence per path besides the heads."""
    j = judge_prompt_length(engine, question)
    return KvNeeds(2 * j + paths * (j + 9) + 2 * tokens, paths + 2)


def retokenized_limit(policy_tokens: int) -> int:
    """The most judge tokens a step of `policy_tokens` may take (the cache is sized for this): a step's
    text retokenized by the judge, its own model's or another's, is cut to it, keeping the end."""
    return 2 * policy_tokens + 8


class JudgeVerifier(Verifier):
    name = "judge"
    tokens_per_path = 1

    def __init__(self, vctx: VerifierContext) -> None:
        self.v = vctx
        self.engine = vctx.engine
        self.prompts = load_aux_prompt("judge", PROMPT_KEYS)
        self._frames: dict[bool, _Frame] = {}
        self._states: dict[int, tuple[KvSeq, int]] = {}  # node id -> (sequence, tokens through its step)
        self.yes = self._single_tokens(YES)
        self.no = self._single_tokens(NO)
        self.prompt_tokens = 0
        self.sampled = 0

    def _single_tokens(self, words: tuple[str, ...]) -> set[int]:
        found = {ids[0] for w in words if len(ids := self.engine.tokenize(w)) == 1}
        # A vocabulary without a one-token "Yes" (a byte-level toy) is read by its first token.
        return found or {self.engine.tokenize(words[0])[0]}

    def _render(self, whole: bool, steps: str) -> list[int]:
        return render(self.engine, self.prompts, self.v.question, whole, steps)

    def frame(self, whole: bool) -> _Frame:
        if whole not in self._frames:
            a, z = (self._render(whole, m) for m in _MARKS)
            head = common_prefix(a, z)
            tail = common_prefix(a[head:][::-1], z[head:][::-1])
            middle = b"".join(self.engine.token_bytes(t) for t in a[head : len(a) - tail])
            text = middle.decode("utf-8", errors="replace")
            at = text.find(_MARKS[0])
            left, right = (text[:at], text[at + 1 :]) if at >= 0 else ("", "")
            tok = self.engine.tokenize
            seq = self.engine.prefill(a[:head], self.v.stop)
            self.prompt_tokens += head
            right_ids = (tok(right) if right else []) + a[len(a) - tail :]
            self._frames[whole] = _Frame(seq, head, tok(left) if left else [], right_ids)
        return self._frames[whole]

    def _step_tokens(self, step: PathStep) -> list[int]:
        if self.v.same_model and (step.tokens or not step.text):
            return list(step.tokens)
        tokens = self.engine.tokenize(step.text)
        limit = retokenized_limit(max(len(step.tokens), step.length))
        return tokens[-limit:]

    def score(self, paths: Sequence[Path]) -> list[float | None]:
        if not paths:
            return []
        decoder = self.engine.decoder(self.v.budget, self.v.stop)
        jobs: list[tuple[KvSeq, tuple[int, int] | None]] = []
        for path in paths:
            frame = self.frame(path.whole)
            base, at, start = frame.seq, frame.head, 0
            for i in range(len(path.steps) - 1, -1, -1):
                node = path.steps[i].node
                if not path.whole and node is not None and node in self._states:
                    (base, at), start = self._states[node], i + 1
                    break
            seq = self.engine.fork(base, at=at)
            if start == 0:
                seq.tokens += frame.left
            keep: tuple[int, int] | None = None
            for step in path.steps[start:]:
                seq.tokens += self._step_tokens(step)
                if step.node is not None and not path.whole:
                    keep = (step.node, len(seq.tokens))  # the deepest tree node: its children come next
            seq.tokens += frame.right
            self.prompt_tokens += len(seq.tokens) - at
            decoder.add(seq, JUDGE_PARAMS)
            jobs.append((seq, keep))
        for _ in decoder:
            pass
        scores: list[float | None] = []
        for seq, keep in jobs:
            scores.append(self._p_yes(seq))
            self.sampled += seq.n_generated
            if keep is not None and keep[0] not in self._states:
                self._states[keep[0]] = (self.engine.fork(seq, at=keep[1]), keep[1])
            self.engine.release(seq)
        return scores

    def _p_yes(self, seq: KvSeq) -> float | None:
        if not seq.top_ids:
            return None  # the budget or Ctrl-C stopped it before the judge said anything
        ids, lps = seq.top_ids[0], seq.top_logprobs[0]
        yes = sum(math.exp(float(lp)) for t, lp in zip(ids, lps, strict=True) if int(t) in self.yes)
        no = sum(math.exp(float(lp)) for t, lp in zip(ids, lps, strict=True) if int(t) in self.no)
        return yes / (yes + no) if yes + no > 0 else 0.5

    def forget(self, nodes: Iterable[int]) -> None:
        for node in nodes:
            state = self._states.pop(node, None)
            if state is not None:
                self.engine.release(state[0])

    def close(self) -> None:
        self.forget(list(self._states))
        for frame in self._frames.values():
            self.engine.release(frame.seq)
        self._frames.clear()

    @property
    def usage(self) -> dict[str, int]:
        return {"judge_prompt_tokens": self.prompt_tokens, "judge_tokens": self.sampled}
