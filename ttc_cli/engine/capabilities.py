"""What an OpenAI-compatible server offers for a model, probed once per URL and model and cached: log-
probabilities, llama.cpp's sampler extras, a tokenize endpoint, how many requests it serves at once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import httpx

from ttc_cli.caches import read_cache, write_cache
from ttc_cli.engine.server import Server
from ttc_cli.errors import EngineError, UsageError

CAPABILITY_CACHE = "servers.json"


@dataclass(frozen=True)
class Capabilities:
    """What one server offers for one model, as probed (see `probe`)."""

    model: str
    context: int | None  # the model's context length, where the server says (vLLM's max_model_len)
    logprobs: bool  # per-token log-probabilities with top alternatives in streamed chat completions
    sampler_extras: bool  # top_k, min_p and grammar accepted (llama.cpp's servers, vLLM)
    tokenize: str | None  # the tokenize endpoint's path under the root URL, if any
    parallel: int  # requests it serves at once (llama-server's slots; 1 for llama-cpp-python's server)
    kind: str  # "llama-server", "llama-cpp-python", or "openai-compatible"

    def degraded(self) -> list[str]:
        """What ttc loses on this server, one phrase each (the live header and --json's backend.degraded)."""
        out = []
        if not self.logprobs:
            out.append("no logprobs: mean-logprob and confidence scores and the DeepConf filter off")
        if not self.sampler_extras:
            out.append("no top_k/min_p/grammar: sampling uses temperature and top_p only")
        if self.tokenize is None:
            out.append("no tokenize endpoint: prompt token counts are tiktoken estimates")
        return out


def probe(server: Server, model: str | None) -> Capabilities:
    """What the server offers for `model` (its only model when None), cached per URL and model."""
    listed = server.get("/models")
    models = listed.get("data", []) if isinstance(listed, dict) else []
    ids = [str(m.get("id")) for m in models if isinstance(m, dict)]
    if model is None:
        if len(ids) != 1:
            names = ", ".join(ids) or "none"
            raise UsageError(f"the server at {server.url} serves {names}", "choose one with -m NAME")
        model = ids[0]
    elif ids and model not in ids:
        raise UsageError(
            f"the server at {server.url} does not serve '{model}'", f"it serves: {', '.join(ids)}"
        )
    key = f"{server.v1} {model}"
    cached = read_cache(CAPABILITY_CACHE).get(key)
    if isinstance(cached, dict):
        try:
            return Capabilities(**cached)
        except TypeError:
            pass  # an older cache's shape: probe again
    entry = next((m for m in models if isinstance(m, dict) and m.get("id") == model), {})
    context = entry.get("max_model_len") or entry.get("meta", {}).get("n_ctx_train")
    caps = _probe(server, model, int(context) if context else None)
    cache = read_cache(CAPABILITY_CACHE)
    cache[key] = asdict(caps)
    write_cache(CAPABILITY_CACHE, cache)
    return caps


EXTRAS = {"top_k": 40, "min_p": 0.05}


def _probe(server: Server, model: str, context: int | None) -> Capabilities:
    one = {"model": model, "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 1}
    logprobs = {"logprobs": True, "top_logprobs": 5}
    extras = logs = False
    for body, with_extras, with_logs in (
        ({**one, **logprobs, **EXTRAS}, True, True),
        ({**one, **logprobs}, False, True),
        (one, False, False),
    ):
        response = server._send("POST", "/chat/completions", body)
        if response.status_code < 400:
            reply = server._json(response)
            choice = (reply.get("choices") or [{}])[0]
            content = (choice.get("logprobs") or {}).get("content") or []
            logs = with_logs and bool(content) and bool(content[0].get("top_logprobs"))
            extras = with_extras
            break
        if response.status_code >= 500 or response.status_code in (401, 403, 404):
            raise EngineError(server.refusal(response))
    else:
        raise EngineError(server.refusal(response))
    tokenize, kind = None, "openai-compatible"
    for path, payload in (
        ("/extras/tokenize", {"input": "Hello world", "model": model}),
        ("/tokenize", {"content": "Hello world", "prompt": "Hello world", "model": model}),
    ):
        try:
            response = server.client.post(f"{server.root}{path}", json=payload)
        except httpx.HTTPError:
            continue
        if response.status_code == 200 and "tokens" in _maybe_json(response):
            tokenize = path
            kind = "llama-cpp-python" if path == "/extras/tokenize" else kind
            break
    parallel = 1 if kind == "llama-cpp-python" else 8
    try:
        props = server.client.get(f"{server.root}/props")
        slots = _maybe_json(props).get("total_slots") if props.status_code == 200 else None
        if isinstance(slots, int) and slots > 0:
            parallel, kind = slots, "llama-server"
    except httpx.HTTPError:
        pass
    return Capabilities(model, context, logs, extras, tokenize, parallel, kind)


def _maybe_json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def count_tokens(server: Server, caps: Capabilities, text: str) -> int | None:
    """`text`'s token count by the server's own tokenizer, or None where it has no tokenize endpoint."""
    if caps.tokenize is None:
        return None
    body = (
        {"input": text, "model": caps.model}
        if caps.tokenize == "/extras/tokenize"
        else {"content": text, "prompt": text, "model": caps.model}
    )
    data = server.post(f"{server.root}{caps.tokenize}", body)
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if isinstance(data, dict) and isinstance(data.get("count"), int):
        return int(data["count"])
    return len(tokens) if isinstance(tokens, list) else None
