"""`ttc doctor`: what ttc runs on here, as figures: ttc's and Python's versions, the CPU, the llama.cpp
build and the GPUs it can offload to (or the one line that gets a GPU build), the model loaded without -m
and where that choice came from, the sandbox mode model-written code gets and why, and each model's
measured decoding speed per width (the curve the sampling width is chosen from)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ttc_cli.caches import cache_dir
from ttc_cli.engine import throughput
from ttc_cli.engine.host import cpu_advertises_amx, cpu_signature


def measure_now(load: Callable[[], Any], widest: int, stop: threading.Event) -> dict[str, throughput.Curve]:
    """Load a model with `load` and measure its curve up to `widest` samples at once (cached too); Ctrl-C
    (`stop`) ends it with nothing measured."""
    from contextlib import closing

    from ttc_cli.engine.sequence import MAX_SEQUENCES, SamplingParams
    from ttc_cli.errors import UsageError

    if not 1 <= widest < MAX_SEQUENCES:
        raise UsageError(f"--widest must be from 1 to {MAX_SEQUENCES - 1}, got {widest}", "e.g. --widest 16")
    with closing(load()) as engine:
        engine.reserve(64 + widest * 16, widest + 1)
        key = engine.throughput_key()
        curve = throughput.measure_and_store(engine, key, widest, SamplingParams(top_logprobs=20), stop)
    return {key: curve} if curve is not None else {}


def report(measured: dict[str, throughput.Curve] | None = None) -> dict[str, Any]:
    """The host and every cached curve (`measured`: curves this command just measured, by key)."""
    import os
    import platform

    from ttc_cli import __version__
    from ttc_cli.engine.host import extra_bufts_verdicts
    from ttc_cli.engine.llama import build_features, gpu_devices, llama_version, supports_gpu_offload
    from ttc_cli.models.stores import all_models
    from ttc_cli.yaml_layers import user_path

    curves = throughput.all_cached() | (measured or {})
    stores: dict[str, int] = {}
    for found in all_models():
        stores[found.source] = stores.get(found.source, 0) + 1
    return {
        "ttc": __version__,
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "default_model": _default_model(),
        "cpu": cpu_signature(),
        "threads": os.cpu_count(),
        "amx": cpu_advertises_amx(),
        "amx_probe": extra_bufts_verdicts(),
        "llama_cpp_python": llama_version(),
        "build": build_features(),
        "gpu_offload": supports_gpu_offload(),
        "gpus": gpu_devices(),
        "app_dir": str(user_path()),
        "cache": str(cache_dir()),
        "models_found": stores,
        "sandbox": _sandbox(),
        "backend": os.environ.get("TTC_BACKEND", "llama"),
        "base_url": os.environ.get("TTC_BASE_URL"),
        "tokenizer": os.environ.get("TTC_TOKENIZER"),
        "servers": _servers(),
        "curves": [
            {
                "key": key,
                "tokens_per_s": curve.to_json(),
                "speedup": round(curve.rate(curve.widest) / curve.rate(1), 2),
                "measured_now": key in (measured or {}),
            }
            for key, curve in sorted(curves.items())
        ],
    }


def text(data: dict[str, Any]) -> str:
    default = data["default_model"]
    lines = [
        f"ttc               {data['ttc']} · Python {data['python']}",
        f"cpu               {data['cpu']}{' (AMX)' if data['amx'] else ''}",
        f"llama-cpp-python  {data['llama_cpp_python']} · GPU offload {_yes(data['gpu_offload'])}",
        *_gpu_lines(data),
        f"build             {data['build']}",
        f"default model     {default['name']} (from {default['from']})"
        + (f": {default['path']}" if default.get("path") else f": {default['error']}"),
        f"threads           {data['threads']} (ttc uses them all; --threads sets fewer)",
        f"app dir           {data['app_dir']} (profiles/, prompts/, models.yaml, config.yaml)",
        f"cache             {data['cache']}",
        "models found      "
        + (
            ", ".join(f"{n} in {src}" for src, n in data["models_found"].items())
            or "none besides the built-in one (see `ttc models`)"
        ),
    ]
    lines.append(f"sandbox           {data['sandbox']}")
    url = f" · TTC_BASE_URL {data['base_url']}" if data["base_url"] else ""
    url += f" · TTC_TOKENIZER {data['tokenizer']}" if data["tokenizer"] else ""
    lines.append(f"backend           {data['backend']}{url}")
    for s in data["servers"]:
        lost = "; ".join(s["degraded"]) or "nothing degraded"
        lines.append(
            f"server            {s['url']} {s['model']} ({s['kind']}, {s['parallel']} at once): {lost}"
        )
    if data["amx"]:
        verdicts = data["amx_probe"]
        lines.append(f"AMX probe         {verdicts or 'not run yet (runs at the first model load)'}")
    if not data["curves"]:
        lines.append("no throughput measured yet: `ttc doctor --measure [-m MODEL]`, or any sampling run")
    for c in data["curves"]:
        _, _, model, threads, offload, *_ = c["key"].split("|") + [""] * 6
        rates = " · ".join(f"{w}: {r:g}" for w, r in c["tokens_per_s"].items())
        widest = list(c["tokens_per_s"])[-1]
        lines.append(f"{model.rsplit(':', 1)[0]} ({threads}, {offload}) tok/s by samples at once  {rates}")
        lines.append(f"    {widest} at once decode {c['speedup']:g}x as fast as one")
    return "\n".join(lines)


def _sandbox() -> str:
    """How model-written code is contained here, and why in this mode (`execution.isolation`'s line)."""
    from ttc_cli.errors import UsageError
    from ttc_cli.execution import isolation

    try:
        return isolation()
    except UsageError as e:  # a bad TTC_SANDBOX, or Windows: doctor still reports the rest
        return f"unavailable: {e}"


def _servers() -> list[dict[str, Any]]:
    """The OpenAI-compatible servers ttc has probed, with what each offered."""
    from ttc_cli.caches import read_cache
    from ttc_cli.engine.capabilities import CAPABILITY_CACHE, Capabilities

    out = []
    for key, entry in sorted(read_cache(CAPABILITY_CACHE).items()):
        try:
            caps = Capabilities(**entry)
        except TypeError:
            continue
        url = key.split(" ", 1)[0]
        out.append({"url": url, "model": caps.model, "kind": caps.kind, "parallel": caps.parallel,
                    "degraded": caps.degraded()})  # fmt: skip
    return out


def _default_model() -> dict[str, Any]:
    """The model a command without -m loads, where that choice came from, and its file (or why none)."""
    from ttc_cli.errors import UsageError
    from ttc_cli.models.files import BUILTIN_NAME, resolve_model_path
    from ttc_cli.models.user_default import chosen

    try:
        choice = chosen(None)
    except UsageError as e:  # a config.yaml that cannot be read: the rest of the report still helps
        return {"name": "?", "from": "ttc models default", "error": str(e)}
    out: dict[str, Any] = {"name": choice.value or BUILTIN_NAME, "from": choice.source()}
    try:
        out["path"] = str(resolve_model_path(out["name"]))  # by name: the error unwrapped, its origin is here
    except UsageError as e:
        out["error"] = e.message
    return out


def _gpu_lines(data: dict[str, Any]) -> list[str]:
    """Each GPU llama.cpp can offload to; with none, what to do about it."""
    if not data["gpu_offload"]:
        return [
            "gpu               none: this llama-cpp-python is a CPU build; for an NVIDIA GPU, "
            'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python '
            "(-DGGML_METAL=on on a Mac, -DGGML_VULKAN=on for others)"
        ]
    if not data["gpus"]:
        return ["gpu               a GPU build, but llama.cpp finds no GPU (a driver missing?)"]
    return [
        f"gpu               {g['description'] or g['name']} ({g['name']}): "
        f"{g['total_bytes'] / 2**30:.1f} GiB, {g['free_bytes'] / 2**30:.1f} GiB free"
        for g in data["gpus"]
    ]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
