"""Talking to an OpenAI-compatible server (llama-server, llama-cpp-python's server, vLLM, ollama): requests
with bounded retries and streamed chat completions (what a server can do is `capabilities.py`).

A retry waits a jittered exponential backoff, so that the many streams one refusal hits do not return in
step; a 429 or 503 with `Retry-After` is waited at least that long, and all of one request's waits
together stay under MAX_WAIT_S: a server that asks for longer gets its refusal reported instead.

Every failure the network or the server causes becomes an `EngineError` naming the URL and what went wrong
(exit 1); a URL that cannot be one is a `UsageError` (exit 2). The API key travels only in the
Authorization header: it is never part of a message, a log line or the capability cache.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from ttc_cli.errors import EngineError, UsageError

RETRIES = 3  # attempts after the first, for refused connections, 429 and 5xx before any token came
BACKOFF_S = 1.0  # the first retry's wait before jitter; doubled for each one after
MAX_WAIT_S = 30.0  # all of one request's waits together; a server asking for longer is not waited for
CONNECT_S = 5.0
READ_S = 300.0  # a long prompt's prefill on a CPU server comes before its first token
RETRYABLE = {429, 500, 502, 503, 504}
SAYS_WHEN = {429, 503}  # the statuses whose Retry-After header is honoured


def backoff_s(attempt: int, rng: random.Random) -> float:
    """The wait before retry `attempt` + 1: exponential, drawn from its upper half ("equal jitter"), so
    the streams a refusal hit together do not come back together, and none comes back at once."""
    ceiling = BACKOFF_S * 2**attempt
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header's wait in seconds (delay-seconds or an HTTP date); None when absent or not
    one of the two."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT; a sloppy one without a zone is taken as such
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Server:
    """One OpenAI-compatible server at `base_url` (ending in /v1 or not)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
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
        self.rng = rng or random.Random()  # the backoff's jitter; a test passes a seeded one
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
        waited = 0.0
        for attempt in range(RETRIES + 1):
            try:
                response = self.client.request(method, url, json=body)
            except httpx.TransportError as e:
                if attempt == RETRIES or self._stopped():
                    raise EngineError(f"cannot reach the server at {self.url}: {_reason(e)}") from None
                waited += self._wait(self.pause_s(attempt, None, waited) or 0.0)
                continue
            if response.status_code not in RETRYABLE or attempt == RETRIES:
                return response
            pause = self.pause_s(attempt, response, waited)
            if pause is None:  # the server asks for a longer wait than ttc gives one request
                return response
            waited += self._wait(pause)
        raise AssertionError("unreachable")

    def pause_s(self, attempt: int, response: httpx.Response | None, waited: float) -> float | None:
        """How long to wait before retry `attempt` + 1, having waited `waited` already: the jittered
        backoff, or longer where a 429 or 503 says when to come back; None when that would pass
        MAX_WAIT_S in all (then the refusal is the answer)."""
        pause = backoff_s(attempt, self.rng)
        if response is not None and response.status_code in SAYS_WHEN:
            asked = retry_after_s(response.headers.get("Retry-After"))
            if asked is not None:
                if waited + asked > MAX_WAIT_S:
                    return None
                pause = max(pause, asked)
        return min(pause, max(0.0, MAX_WAIT_S - waited))

    def _wait(self, seconds: float) -> float:
        if self.stop is not None:
            self.stop.wait(seconds)
        else:
            time.sleep(seconds)
        return seconds

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
        asked = retry_after_s(response.headers.get("Retry-After")) if status in SAYS_WHEN else None
        later = f" (it asked to be retried after {asked:.0f} s)" if asked else ""
        return f"the server at {self.url} refused {path} ({status}): {text}{later}"

    # ---- streaming ---------------------------------------------------------------------------------
    def stream(self, path: str, body: dict[str, Any]) -> StreamedReply:
        """Open a streamed (chat or text) completion at `path` under /v1, retrying as `_send` does until
        the stream is open."""
        request = self.client.build_request("POST", f"{self.v1}{path}", json=body)
        waited = 0.0
        for attempt in range(RETRIES + 1):
            try:
                response = self.client.send(request, stream=True)
            except httpx.TransportError as e:
                if attempt == RETRIES or self._stopped():
                    raise EngineError(f"cannot reach the server at {self.url}: {_reason(e)}") from None
                waited += self._wait(self.pause_s(attempt, None, waited) or 0.0)
                continue
            if response.status_code < 400:
                return StreamedReply(self, response)
            retryable = response.status_code in RETRYABLE and attempt < RETRIES
            pause = self.pause_s(attempt, response, waited) if retryable else None
            if pause is None:
                message = self.refusal(response)
                response.close()
                raise EngineError(message)
            response.close()
            waited += self._wait(pause)
        raise AssertionError("unreachable")


class StreamedReply:
    """The server-sent events of one streamed chat completion, as parsed chunks; `close` cancels it (the
    server stops generating when it sees the connection go)."""

    def __init__(self, server: Server, response: httpx.Response) -> None:
        self.server = server
        self.response = response
        self.closed = False

    def chunks(self) -> Iterator[dict[str, Any]]:
        # Server-sent events read by hand, not with httpx-sse: every OpenAI-compatible server sends each
        # chunk as one `data:` line and ends with `data: [DONE]`, so the few lines below are all of the
        # protocol this client uses, and a package for them would be one more dependency every install
        # pays for. Comments, `event:`, `id:` and `retry:` lines carry nothing ttc needs and are skipped.
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
