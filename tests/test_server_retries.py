"""The client's retries against a stub server on 127.0.0.1 that this test starts: a 429 or 503 with
Retry-After (seconds or an HTTP date) is waited at least that long, a wait past the cap is not made, and
the backoff's jitter is the injected random's."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ttc_cli.engine import server as wire
from ttc_cli.engine.server import Server, backoff_s, retry_after_s
from ttc_cli.errors import EngineError


class Scripted(BaseHTTPRequestHandler):
    """Answers request i with the class's `replies[i]` (status, headers; the last one repeats) and notes
    when each came."""

    replies: list[tuple[int, dict[str, str]]] = []
    seen: list[float] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(time.monotonic())
        status, headers = self.replies[min(len(self.seen), len(self.replies)) - 1]
        body = b'{"data": [{"id": "m"}]}' if status == 200 else b'{"error": {"message": "slow down"}}'
        if status == 200 and self.command == "POST":
            body = b'data: {"choices": [{"text": "ok"}]}\n\ndata: [DONE]\n\n'
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(*replies: tuple[int, dict[str, str]]) -> Iterator[tuple[str, list[float]]]:
    handler = type("H", (Scripted,), {"replies": list(replies), "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", handler.seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_429_is_retried_after_the_seconds_it_asks_for():
    # 2 s is more than the first backoff can be (at most BACKOFF_S), so only Retry-After explains the wait
    assert wire.BACKOFF_S < 2
    with serve((429, {"Retry-After": "2"}), (200, {})) as (url, seen):
        client = Server(url, rng=random.Random(0))
        try:
            assert client.get("/models") == {"data": [{"id": "m"}]}
        finally:
            client.close()
        assert len(seen) == 2 and 2.0 <= seen[1] - seen[0] < 2.0 + 1.5


def test_a_503_with_an_http_date_is_retried_no_sooner_while_opening_a_stream():
    when = formatdate(time.time() + 3, usegmt=True)  # whole seconds: the wait is 2 to 3 s
    with serve((503, {"Retry-After": when}), (200, {"Content-Type": "text/event-stream"})) as (url, seen):
        client = Server(url, rng=random.Random(0))
        try:
            reply = client.stream("/completions", {"prompt": "x"})
            assert [c["choices"][0]["text"] for c in reply.chunks()] == ["ok"]
        finally:
            client.close()
        assert len(seen) == 2 and seen[1] - seen[0] >= 2.0


def test_a_wait_longer_than_the_cap_is_not_made_and_the_refusal_says_when():
    with serve((429, {"Retry-After": "3600"})) as (url, seen):
        client = Server(url, rng=random.Random(0))
        started = time.monotonic()
        try:
            with pytest.raises(
                EngineError, match=r"\(429\): slow down \(it asked to be retried after 3600 s\)"
            ):
                client.get("/models")
        finally:
            client.close()
        assert len(seen) == 1 and time.monotonic() - started < 5  # no retry, and no hour-long wait


def test_retry_after_reads_seconds_and_dates_and_ignores_the_rest():
    now = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("7") == 7.0 and retry_after_s(" 0 ") == 0.0 and retry_after_s("-3") == 0.0
    assert retry_after_s(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert retry_after_s("Tue, 01 Dec 2026 11:59:00 GMT", now) == 0.0  # in the past: at once
    assert retry_after_s(None) is None and retry_after_s("soon") is None


def test_the_backoff_is_jittered_by_the_injected_random_and_doubles():
    waits = [backoff_s(a, random.Random(7)) for a in range(4)]
    assert waits == [backoff_s(a, random.Random(7)) for a in range(4)]  # the seed decides
    for attempt, wait in enumerate(waits):
        ceiling = wire.BACKOFF_S * 2**attempt
        assert ceiling / 2 <= wait <= ceiling
    draws = {round(backoff_s(0, random.Random(seed)), 6) for seed in range(20)}
    assert len(draws) == 20  # jittered: twenty streams refused together come back at twenty times
    client = Server("http://127.0.0.1:9/v1", rng=random.Random(7))
    try:
        assert client.pause_s(0, None, 0.0) == backoff_s(0, random.Random(7))
        assert client.pause_s(3, None, wire.MAX_WAIT_S - 0.25) == 0.25  # all waits together stay capped
    finally:
        client.close()
