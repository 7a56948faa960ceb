"""Loading the engine a command runs on: a GGUF in-process (llama.cpp), or a model behind an
OpenAI-compatible server (`--backend openai`)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from ttc_cli.options import EngineOptions

if TYPE_CHECKING:
    from ttc_cli.engine.base import Engine


def load_engine(
    model: str | None, opts: EngineOptions, stop: threading.Event | None = None
) -> tuple[Engine, float]:
    """Resolve and load the model once (Ctrl-C, setting `stop`, cuts the load short); returns the
    engine and the seconds it took."""
    if opts.backend == "openai":
        return _load_remote(model, opts, stop)
    if opts.backend != "llama":
        from ttc_cli.errors import UsageError

        raise UsageError(f"unknown backend '{opts.backend}'", "choose llama or openai")
    from ttc_cli.models.files import resolve_model_path

    path = resolve_model_path(model)
    if opts.verbose:
        sys.stderr.write(f"ttc: load: {path}\n")
    start = time.perf_counter()
    from ttc_cli.engine.llama import LlamaEngine

    # A minimal context: `runner.prepare` sizes it for the request (and never past --ctx).
    engine = LlamaEngine(
        path,
        gpu_layers=opts.gpu_layers,
        threads=opts.threads,
        verbose=opts.verbose,
        n_ctx=256,
        n_seq_max=2,
        stop=stop,
    )
    return engine, time.perf_counter() - start


def _load_remote(
    model: str | None, opts: EngineOptions, stop: threading.Event | None = None
) -> tuple[Engine, float]:
    """An OpenAI-compatible server's model: `-m` is the server's name for it (its only one when left out)."""
    from ttc_cli.engine.remote import RemoteEngine
    from ttc_cli.errors import UsageError

    if not opts.base_url:
        raise UsageError("--backend openai needs the server's URL", "pass --base-url or set TTC_BASE_URL")
    if opts.verbose:
        sys.stderr.write(f"ttc: load: {opts.base_url} {model or ''}\n")
    start = time.perf_counter()
    tokenizer = None
    if opts.tokenizer:
        from ttc_cli.models.files import resolve_model_path

        tokenizer = resolve_model_path(opts.tokenizer)
    key = os.environ.get(opts.api_key_env) or None
    engine = RemoteEngine(opts.base_url, model, key, opts.parallel, stop, tokenizer)
    return engine, time.perf_counter() - start
