"""ttc's JSON caches (throughput curves, host probes, server capabilities, GGUF metadata): one directory,
each cache one file, written whole. A lost or unreadable cache costs a recomputation, never an error.

The directory follows the platform's convention for caches, as platformdirs' `user_cache_dir` does,
in a few lines rather than one more dependency: $XDG_CACHE_HOME or ~/.cache on Linux and other Unixes,
~/Library/Caches on macOS, %LOCALAPPDATA% on Windows; $TTC_CACHE_PATH overrides it everywhere.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """Where ttc keeps its caches: $TTC_CACHE_PATH, else the platform's cache directory + ttc."""
    explicit = os.environ.get("TTC_CACHE_PATH")
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(local) / "ttc" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "ttc"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ttc"


def read_cache(name: str) -> dict[str, Any]:
    """One of ttc's JSON caches (`name` in the cache dir); empty when missing or unreadable."""
    try:
        data = json.loads((cache_dir() / name).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_cache(name: str, data: dict[str, Any]) -> None:
    """Replace a JSON cache whole (atomically); an unwritable cache costs a recomputation later, no more."""
    path = cache_dir() / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError:
        pass
