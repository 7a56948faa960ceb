"""Talking to an OpenAI-compatible server (llama-server, llama-cpp-python's server, vLLM, ollama): requests
with bounded retries and streamed chat completions (what a server can do is `capabilities.py`).

Every failure the network or the server causes becomes an `EngineError` naming the URL and what went wrong
(exit 1); a URL that cannot be one is a `UsageError` (exit 2). The API key travels only in the
Authorization header: it is never part of a message, a log line or the capability cache.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from ttc_cli.errors import EngineError, UsageError

RETRIES = 3  # attempts after the first, for refused connections, 429 and 5xx before any token came
BACKOFF_S = (0.5, 1.0, 2.0)
CONNECT_S = 5.0
READ_S = 300.0  # a long prompt's prefill on a CPU server comes before its first token
RETRYABLE = {429, 500, 502, 503, 504}


class Server:
    """One OpenAI-compatible server at `base_url` (ending in /v1 or not)."""

    def __init__(
        self, base_url: str, api_key: str | None = None, stop: threading.Event | None = None
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(
                f"'{base_url}' is not a server URL", "pass --base-url like http://127.0.0.1:8080/v1"
            )
        path = parts.path.rstrip("/")
        root_path = path[: -len("/v1")] if path.endswith("/v1") else path
        self.root = f"{parts.scheme}://{parts.netloc}{root_path}"
        self.v1 = f"{self.root}/v1"
        self.url = self.v1  # what messages name
        self.stop = stop
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        timeout = httpx.Timeout(READ_S, connect=CONNECT_S)
        self.client = httpx.Client(headers=headers, timeout=timeout, limits=httpx.Limits(max_connections=64))

    def close(self) -> None:
        self.client.close()

    # ---- plain requests ---------------------------------------------------------------------------
    def get(self, path: str) -> Any:
        return self._json(self._send("GET", path, None))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._json(self._send("POST", path, body))

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
        """One request, retried on refused connections, timeouts, 429 and 5xx (bounded, with backoff)."""
        url = path if path.startswith("http") else f"{self.v1}{path}"
        for attempt in range(RETRIES + 1):
            try:
                response = self.client.request(method, url, json=body)
            except httpx.TransportError as e:
                if attempt == RETRIES or self._stopped():
                    raise EngineError(f"cannot reach the server at {self.url}: {_reason(e)}") from None
            else:
                if response.status_code not in RETRYABLE or attempt == RETRIES:
                    return response
            self._wait(attempt)
        raise AssertionError("unreachable")

    def _wait(self, attempt: int) -> None:
        if self.stop is not None:
            self.stop.wait(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
        else:
            time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _json(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise EngineError(self.refusal(response))
        try:
            return response.json()
        except ValueError:
            raise EngineError(
                f"the server at {self.url} answered {response.request.url.path} with something other "
                "than JSON"
            ) from None

    def refusal(self, response: httpx.Response) -> str:
        """A rejected request as one line: the status and the server's own message."""
        try:
            response.read()
            detail = response.json()
            if isinstance(detail, dict):
                err = detail.get("error", detail.get("detail", detail))
                detail = err.get("message", err) if isinstance(err, dict) else err
        except (ValueError, httpx.HTTPError):
            detail = response.text[:200] if response.is_stream_consumed else ""
        text = " ".join(str(detail).split())[:300]
        path, status = response.request.url.path, response.status_code
        return f"the server at {self.url} refused {path} ({status}): {text}"

    # ---- streaming ---------------------------------------------------------------------------------
    def stream(self, path: str, body: dict[str, Any]) -> StreamedReply:
        """Open a streamed (chat or text) completion at `path` under /v1, retrying as `_send` does until
        the stream is open."""
        request = self.client.build_request("POST", f"{self.v1}{path}", json=body)
        for attempt in range(RETRIES + 1):
            try:
                response = self.client.send(request, stream=True)
            except httpx.TransportError as e:
                if attempt == RETRIES or self._stopped():
                    raise EngineError(f"cannot reach the server at {self.url}: {_reason(e)}") from None
            else:
                if response.status_code < 400:
                    return StreamedReply(self, response)
                if response.status_code not in RETRYABLE or attempt == RETRIES:
                    message = self.refusal(response)
                    response.close()
                    raise EngineError(message)
                response.close()
            self._wait(attempt)
        raise AssertionError("unreachable")


class StreamedReply:
    """The server-sent events of one streamed chat completion, as parsed chunks; `close` cancels it (the
    server stops generating when it sees the connection go)."""

    def __init__(self, server: Server, response: httpx.Response) -> None:
        self.server = server
        self.response = response
        self.closed = False

    def chunks(self) -> Iterator[dict[str, Any]]:
        try:
            for line in self.response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise EngineError(f"the server at {self.server.url} streamed malformed JSON") from None
                if isinstance(chunk, dict) and "error" in chunk:
                    err = chunk["error"]
                    message = err.get("message", err) if isinstance(err, dict) else err
                    raise EngineError(f"the server at {self.server.url} failed mid-answer: {message}")
                yield chunk
        except (httpx.HTTPError, httpx.StreamError, OSError) as e:
            if not self.closed:
                raise EngineError(
                    f"the server at {self.server.url} broke off mid-answer ({_reason(e)})"
                ) from None

    def close(self) -> None:
        self.closed = True
        self.response.close()


def _reason(e: Exception) -> str:
    if isinstance(e, httpx.ConnectError):
        return "connection refused or host unreachable"
    if isinstance(e, httpx.TimeoutException):
        return "timed out"
    if isinstance(e, httpx.RemoteProtocolError):
        return "the connection closed"
    return type(e).__name__
