"""YAML data shipped with ttc that a user can override: where it lives and how its layers merge.

Built-ins live in the `ttc_cli.profiles` / `ttc_cli.prompts` packages (the repository's top-level
`profiles/` and `prompts/`). A file of the same name in `$TTC_USER_PATH/profiles|prompts/` is merged over
the built-in one, so a user changes one key without copying the rest; a new name adds a profile or a task.
Every file is validated where it is read (`task_prompts.py` for prompts, `profile.py` for profiles), with
the helpers below, so a typo becomes one line naming the file and the key, not a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from ttc_cli.errors import UsageError


def user_path() -> Path:
    """ttc's app dir: $TTC_USER_PATH, else the platform's (e.g. ~/.config/ttc)."""
    explicit = os.environ.get("TTC_USER_PATH")
    if explicit:
        return Path(explicit).expanduser()
    import typer

    return Path(typer.get_app_dir("ttc"))


def _builtin_dir(kind: str) -> Path:
    try:
        return Path(str(resources.files(f"ttc_cli.{kind}")))
    except ModuleNotFoundError:  # running from a source tree that was never installed
        return Path(__file__).resolve().parent.parent / kind


def names(kind: str) -> list[str]:
    """The names of `kind`'s files (profiles, prompts), built-in and the user's."""
    found = {p.stem for p in _builtin_dir(kind).glob("*.yaml")}
    found |= {p.stem for p in (user_path() / kind).glob("*.yaml")}
    return sorted(found)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}", "check the file's permissions") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text", "save it as UTF-8") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise UsageError(f"malformed YAML in {path}{where}: {problem}", "fix the file or remove it") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(
            f"{path} must hold a YAML mapping, not a {type(data).__name__}", "see the built-in files"
        )
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over`'s keys over `base`'s, mappings merged key by key. A section left empty (`sampling:` with
    nothing under it, which YAML reads as null) changes nothing, rather than erasing the one below."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif value is not None or not isinstance(out.get(key), dict):
            out[key] = value
    return out


def load_layers(kind: str, name: str, under: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[Path]]:
    """`name`'s YAML, built-in then the user's, merged over the layers `under` (built-in then user's too).

    `under` are files every `name` builds on (the default profile): they fill whatever `name` leaves out.
    """
    dirs = (_builtin_dir(kind), user_path() / kind)
    own = [d / f"{name}.yaml" for d in dirs if (d / f"{name}.yaml").is_file()]
    if not own:
        known = ", ".join(names(kind)) or "none"
        singular = kind.rstrip("s")
        raise UsageError(
            f"unknown {singular} '{name}'",
            f"choose one of: {known} (or add {user_path() / kind / (name + '.yaml')})",
        )
    layers = [d / f"{u}.yaml" for u in under if u != name for d in dirs]
    sources = [p for p in layers if p.is_file()] + own
    data: dict[str, Any] = {}
    for path in sources:
        data = _merge(data, _read_yaml(path))
    return data, sources


def keys_text(keys: Iterable[object]) -> str:
    """Key names for a message; YAML keys need not be strings (`1: x` is an int key). A name that is empty
    or holds a newline or other unprintable character is quoted, so the message stays one line."""
    return ", ".join(sorted(map(key_name, keys)))


def key_name(key: object) -> str:
    name = str(key)
    return name if name.isprintable() and name.strip() == name and name else repr(name)


def invalid(where: list[Path], what: str) -> UsageError:
    return UsageError(f"invalid {where[-1]}: {what}", "fix the file or remove it to use the built-in")


def require(cond: bool, where: list[Path], what: str) -> None:
    if not cond:
        raise invalid(where, what)
