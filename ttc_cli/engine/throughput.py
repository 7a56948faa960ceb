"""The engine's throughput curve: generated tokens per second with 1, 2, 4, ... sequences decoding at once.

How much a batch buys depends on the host (2 AVX2 cores: 16 sequences ~1.5x one; AVX-512: ~3.5x; a GPU:
~16x), so the sampler's width policy (`strategies/width.py`) reads it from a measurement, not a guess.
The measurement decodes a few tokens at each width from a three-token prompt, with the run's sampling
settings (their per-token numpy work is part of the cost), in about the time of one short answer, and is
cached per host, llama.cpp build, model file, threads and offload (`throughput.json` beside the host
probe's verdicts). The context is recreated afterwards, so a run that measured decodes exactly as one
that found the curve cached.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ttc_cli.budget import TokenBudget
from ttc_cli.caches import read_cache, write_cache
from ttc_cli.engine.sequence import SamplingParams

if TYPE_CHECKING:
    from ttc_cli.engine.base import Engine

WARM_STEPS = 1  # an untimed step first: the first pass at a new width allocates compute buffers
TIMED_STEPS = 5
PROBE_TEXT = "Once upon a time"
CACHE = "throughput.json"


@dataclass(frozen=True)
class Curve:
    """Measured tokens/s per width; between widths linear, past the widest measured flat (no more gain
    is assumed than was seen)."""

    rates: tuple[tuple[int, float], ...]  # (width, tokens/s), widths ascending

    def rate(self, width: int) -> float:
        points = self.rates
        if width <= points[0][0]:
            return points[0][1] * width / points[0][0]
        for (w0, r0), (w1, r1) in zip(points, points[1:], strict=False):
            if width <= w1:
                return r0 + (r1 - r0) * (width - w0) / (w1 - w0)
        return points[-1][1]

    @property
    def widest(self) -> int:
        return self.rates[-1][0]

    def to_json(self) -> dict[str, float]:
        return {str(w): round(r, 1) for w, r in self.rates}

    @staticmethod
    def from_json(data: dict[str, float]) -> Curve:
        return Curve(tuple(sorted((int(w), float(r)) for w, r in data.items())))


def cells(widest: int) -> int:
    """KV cells a measurement up to `widest` holds at its widest: the probe prompt, and each fork's copy
    of its last token and the tokens it decodes."""
    return 16 + widest * (1 + WARM_STEPS + TIMED_STEPS)


def widths_up_to(most: int) -> list[int]:
    """1, 2, 4, ... up to `most`, and `most` itself."""
    out, w = [], 1
    while w < most:
        out.append(w)
        w *= 2
    return out + [most]


def measure(
    engine: Engine, widths: list[int], params: SamplingParams, stop: threading.Event | None = None
) -> Curve | None:
    """Tokens/s at each width on `engine` (None if Ctrl-C stopped it): every sequence decodes
    WARM_STEPS + TIMED_STEPS tokens, end-of-text ignored, and only the timed steps count."""
    probe = replace(params, grammar="", stop=(), ignore_eos=True, max_tokens=WARM_STEPS + TIMED_STEPS)
    root = engine.prefill(engine.tokenize(PROBE_TEXT, add_special=True), stop)
    rates: list[tuple[int, float]] = []
    try:
        for width in widths:
            seqs = [engine.fork(root) for _ in range(width)]
            decoder = engine.decoder(TokenBudget(width * probe.max_tokens), stop)
            for i, seq in enumerate(seqs):
                decoder.add(seq, replace(probe, seed=probe.seed + i))
            for _ in range(WARM_STEPS):
                decoder.step()
            start = time.perf_counter()
            tokens = sum(len(decoder.step().sampled) for _ in range(TIMED_STEPS))
            seconds = time.perf_counter() - start
            for seq in seqs:
                engine.release(seq)
            if stop is not None and stop.is_set():
                return None
            rates.append((width, tokens / max(seconds, 1e-9)))
    finally:
        engine.release(root)
        engine.fresh_context()
    return Curve(tuple(rates))


def cached(key: str, widest: int) -> Curve | None:
    """The cached curve for `key` if it reaches `widest`."""
    curve = all_cached().get(key)
    return curve if curve is not None and curve.widest >= widest else None


def store(key: str, curve: Curve) -> None:
    write_cache(CACHE, read_cache(CACHE) | {key: curve.to_json()})


def all_cached() -> dict[str, Curve]:
    """Every cached curve by key; an entry that is not a curve (a damaged file) is left out."""
    out = {}
    for key, entry in read_cache(CACHE).items():
        try:
            if isinstance(entry, dict) and entry:
                out[key] = Curve.from_json(entry)
        except (TypeError, ValueError, AttributeError):
            continue
    return out


def measure_and_store(
    engine: Engine, key: str, widest: int, params: SamplingParams, stop: threading.Event | None = None
) -> Curve | None:
    """Measure the curve up to `widest` sequences and cache it under `key`; None if Ctrl-C cut it."""
    curve = measure(engine, widths_up_to(widest), params, stop)
    if curve is not None:
        store(key, curve)
    return curve
