"""Whether this host can use llama.cpp's extra CPU buffer types (AMX, repacked weights).

On some Xeons that advertise AMX, ggml's AMX kernels crash the process at the first decode inside this
kind of sandbox, and a segfault cannot be caught in Python. On a real AMX server they work and speed up
prefill, so they are not switched off everywhere: on a CPU that advertises AMX, a child process loads the
model and decodes once; if it dies, the engine loads with `use_extra_bufts = False`. The verdict is cached
per CPU, llama.cpp build and model file. `TTC_EXTRA_BUFTS=0|1` overrides the probe.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ttc_cli.caches import read_cache, write_cache

PROBE_CACHE = "host-probe.json"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def cpu_advertises_amx(cpuinfo: str | None = None) -> bool:
    info = _cpuinfo() if cpuinfo is None else cpuinfo
    return any(flag in info.split() for flag in ("amx_int8", "amx_tile", "amx_bf16"))


def _cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown-cpu"


def cpu_signature(cpuinfo: str | None = None) -> str:
    """The CPU model and the vector extensions llama.cpp's kernels choose by, e.g.
    'Intel(R) Xeon(R) Processor @ 2.00GHz [avx2 avx512f]': what a host's decode speed depends on."""
    info = _cpuinfo() if cpuinfo is None else cpuinfo
    flags = set(info.split())
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_int8", "amx_bf16", "neon", "sve")
    return f"{_cpu_model(info)} [{' '.join(f for f in wanted if f in flags)}]"


def extra_bufts_allowed(model_path: Path, llama_version: str) -> bool:
    """True when loading `model_path` with extra buffer types is safe on this host."""
    override = os.environ.get("TTC_EXTRA_BUFTS")
    if override in ("0", "1"):
        return override == "1"
    info = _cpuinfo()
    if not cpu_advertises_amx(info):
        return True
    stat = model_path.stat()
    key = f"{_cpu_model(info)}|llama-cpp-python {llama_version}|{model_path.name}:{stat.st_size}"
    verdicts = read_cache(PROBE_CACHE)
    if key not in verdicts:
        verdicts[key] = probe_extra_bufts(model_path)
        write_cache(PROBE_CACHE, verdicts)
    return bool(verdicts[key])


def extra_bufts_verdicts() -> dict[str, bool]:
    """The probe's cached verdicts (key: CPU, build, model), for `ttc doctor`."""
    return read_cache(PROBE_CACHE)


def probe_extra_bufts(model_path: Path) -> bool:
    """Load and decode in a child process with extra buffer types on; False if the child dies."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ttc_cli.engine.probe", str(model_path)],
            capture_output=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0
