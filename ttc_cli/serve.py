"""llama-cpp-python's OpenAI-compatible server, started with ttc's guard on llama.cpp's extra buffer types.

`python -m llama_cpp.server` loads its model with llama.cpp's defaults, extra buffer types (AMX kernels,
repacked weights) included, and has no option to leave them out: on a Xeon whose AMX kernels crash (see
engine/host.py) it answers /v1/models, then dies at its first completion. This launcher is that server
with one change: every model it loads gets `use_extra_bufts` from `host.extra_bufts_allowed` (the same
probe, cache and `TTC_EXTRA_BUFTS` override as ttc's own engine), and it says on stderr what it chose.
Every other option is llama_cpp.server's own and passes through untouched:

    ttc serve --model model.gguf --port 8080 --interrupt_requests False
    python -m ttc_cli.serve --model qwen2.5:7b      # the same; --model may name a model as -m does

The hook is `llama_cpp._internals.LlamaModel.__init__`, the one place every `llama_cpp.Llama` (so every
model the server loads, a config file's too) hands its model params to llama.cpp. `main(argv)` is the
entry point of both commands.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ttc_cli.engine import host

PROG = "python -m ttc_cli.serve"
INSTALL_HINT = "pip install 'llama-cpp-python[server]' (or ttc's test extra)"


def extra_bufts_decision(model: Path, llama_version: str) -> tuple[bool, str]:
    """Whether `model` may load with extra buffer types here, and why, in words for the log line."""
    allowed = host.extra_bufts_allowed(model, llama_version)
    override = os.environ.get("TTC_EXTRA_BUFTS")
    if override in ("0", "1"):
        return allowed, f"TTC_EXTRA_BUFTS={override}"
    if not host.cpu_advertises_amx():
        return allowed, "this CPU has no AMX"
    return allowed, "the AMX check passed on this CPU" if allowed else "the AMX check crashed on this CPU"


def say(model: Path, on: bool, reason: str) -> None:
    """One line on stderr per model load, so a server's log shows which kernels it runs."""
    state = "on" if on else "off"
    sys.stderr.write(f"ttc: {model.name}: llama.cpp's extra buffer types {state} ({reason})\n")
    sys.stderr.flush()


def guard_model_loads(
    decide: Callable[[Path, str], tuple[bool, str]] = extra_bufts_decision,
    report: Callable[[Path, bool, str], None] = say,
) -> None:
    """From now on, every model llama_cpp loads in this process gets `use_extra_bufts` as `decide` says.
    Idempotent; the report reads the flag back from the params llama.cpp is given."""
    from llama_cpp import _internals

    from ttc_cli.engine.llama import llama_version

    load = _internals.LlamaModel.__init__
    if getattr(load, "ttc_guarded", False):
        return
    version = llama_version()  # part of the probe cache's key, as for ttc's own engine

    def guarded(self: Any, *, path_model: str, params: Any, verbose: bool = True) -> None:
        allowed, reason = decide(Path(path_model), version)
        params.use_extra_bufts = allowed
        report(Path(path_model), bool(params.use_extra_bufts), reason)
        load(self, path_model=path_model, params=params, verbose=verbose)

    guarded.ttc_guarded = True  # type: ignore[attr-defined]
    _internals.LlamaModel.__init__ = guarded  # type: ignore[method-assign]


def resolved(argv: list[str]) -> list[str]:
    """argv with its `--model` (a path, or a name ttc's model stores know, e.g. ollama's `qwen2.5:7b`)
    as a GGUF file's path; a model that is not there is ttc's one-line error, not the server's traceback."""
    from ttc_cli.models.files import resolve_model_path

    out = list(argv)
    for i, arg in enumerate(out):
        if arg == "--model" and i + 1 < len(out):
            out[i + 1] = str(resolve_model_path(out[i + 1]))
        elif arg.startswith("--model="):
            out[i] = f"--model={resolve_model_path(arg.split('=', 1)[1])}"
    return out


def main(argv: list[str] | None = None, prog: str = PROG) -> None:
    """Run llama_cpp.server's own command line (`argv`, default sys.argv[1:]) with the guard installed."""
    from ttc_cli.errors import UsageError

    try:
        from llama_cpp.server import __main__ as server
    except ModuleNotFoundError as missing:
        # fastapi, uvicorn, sse_starlette...: the server extra is optional, so say how to get it.
        sys.stderr.write(
            f"ttc: error: llama-cpp-python's server is not installed (no module {missing.name!r}); "
            f"{INSTALL_HINT}\n"
        )
        raise SystemExit(2) from None
    try:
        args = resolved(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        sys.stderr.write(f"ttc: error: {e}\n")
        raise SystemExit(2) from None
    guard_model_loads()
    sys.argv = [prog, *args]  # its parser reads sys.argv itself
    server.main()


if __name__ == "__main__":
    main()
