"""What goes over the wire to an OpenAI-compatible server and back: request bodies for one sample (a chat
completion, or a text completion of a whole sequence) and the pieces of a streamed chunk."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ttc_cli.engine.capabilities import Capabilities
from ttc_cli.engine.sequence import SamplingParams

Piece = tuple[str, float, list[tuple[str, float]]]  # streamed text, its log-probability, top alternatives


def chat_body(
    caps: Capabilities, messages: list[dict[str, str]], params: SamplingParams, granted: int
) -> dict[str, Any]:
    """A streamed chat completion's request for one sample, `granted` tokens at most."""
    body: dict[str, Any] = {
        "model": caps.model,
        "messages": messages,
        "max_tokens": granted,
        "temperature": params.temperature,
        "top_p": params.top_p if params.temperature > 0 else 1.0,
        "seed": params.seed,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if params.stop:
        body["stop"] = list(params.stop[:4])  # the API's limit
    if caps.logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = max(1, min(params.top_logprobs, 20))
    if caps.sampler_extras:
        body["top_k"] = params.top_k if params.temperature > 0 else 1
        body["min_p"] = params.min_p
        if params.grammar:
            body["grammar"] = params.grammar
    return body


def completion_body(caps: Capabilities, prompt: str, params: SamplingParams, granted: int) -> dict[str, Any]:
    """A text completion's request: the chat request's sampling; stops are left to the decoder, which
    finds them as the pieces arrive, so that a step keeps its delimiter."""
    body = chat_body(caps, [], replace(params, stop=()), granted)
    del body["messages"]
    body["prompt"] = prompt
    if body.pop("logprobs", None):
        body["logprobs"] = body.pop("top_logprobs")  # the completions API's spelling: how many
    if params.logit_bias:  # token ids: meaningful to the server only with its own vocabulary here
        body["logit_bias"] = {str(t): max(-100.0, min(100.0, b)) for t, b in params.logit_bias}
    return body


def parse_chunk(chunk: dict[str, Any]) -> tuple[list[Piece], str | None, int | None]:
    """A streamed chunk's pieces, its finish reason and the completion tokens it reports (if any)."""
    pieces: list[Piece] = []
    finish = None
    for choice in chunk.get("choices") or []:
        text = choice["text"] if "text" in choice else (choice.get("delta") or {}).get("content")
        pieces += _pieces(text or "", choice.get("logprobs") or {})
        finish = choice.get("finish_reason") or finish
    usage = chunk.get("usage")
    used = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return pieces, finish, used if isinstance(used, int) else None


def _pieces(text: str, logprobs: dict[str, Any]) -> list[Piece]:
    """A streamed chunk's pieces: one per token where it carries log-probabilities, else its text as one.

    Chat completions (and llama-server's text completions) list tokens under `content`; the legacy text
    completions API (llama-cpp-python, vLLM) has parallel lists and a dict of alternatives per token.
    """
    if logprobs.get("content"):
        out = []
        for entry in logprobs["content"]:
            alts = entry.get("top_logprobs") or []
            top = [(str(t.get("token", "")), float(t.get("logprob", 0.0))) for t in alts]
            out.append((str(entry.get("token", "")), float(entry.get("logprob", 0.0)), top))
        return out
    tokens = logprobs.get("tokens") or []
    if not tokens:
        return [(text, 0.0, [])] if text else []
    values = logprobs.get("token_logprobs") or []
    tops = logprobs.get("top_logprobs") or []
    out = []
    for i, token in enumerate(tokens):
        value = values[i] if i < len(values) and values[i] is not None else 0.0
        top = tops[i] if i < len(tops) and isinstance(tops[i], dict) else {}
        alts = sorted(((str(t), float(lp)) for t, lp in top.items()), key=lambda a: -a[1])
        out.append((str(token), float(value), alts))
    return out
