"""Which model a command loads when `-m` is not given, and where that choice came from.

The order is `-m`, then $TTC_MODEL, then the user's default (`ttc models default NAME`, kept as
`default_model:` in the app dir's `config.yaml`), then the built-in SmolLM2. One function decides it, so
`ask`, `ttc models` and `ttc doctor` cannot disagree, and an error about a model that cannot be found
says which of the four named it: a stale $TTC_MODEL is then fixed where it was set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttc_cli.errors import UsageError

CONFIG_FILE = "config.yaml"
KEY = "default_model"
GIVEN, ENV, USER, BUILTIN = "-m", "TTC_MODEL", "ttc models default", "built-in"


@dataclass(frozen=True)
class ModelChoice:
    value: str | None  # what names the model (a path or a store's name); None: the built-in model
    origin: str  # GIVEN, ENV, USER or BUILTIN

    def source(self) -> str:
        """Where the choice came from, as a person reads it ("ttc models default, in ~/.config/...")."""
        return f"{USER}, in {config_file()}" if self.origin == USER else self.origin


def config_file() -> Path:
    from ttc_cli.yaml_layers import user_path

    return user_path() / CONFIG_FILE


def _read() -> dict[str, Any]:
    import yaml

    path = config_file()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UsageError(f"cannot read {path}: {e}", "fix or delete that file") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get(KEY, ""), str):
        raise UsageError(f"{path} must be a mapping with '{KEY}: NAME'", "fix or delete that file")
    return data


def user_default() -> str | None:
    """The model `ttc models default NAME` set, or None."""
    return _read().get(KEY) or None


def set_user_default(value: str | None) -> None:
    """Keep `value` as the user's default model (None clears it); other keys of the file are kept."""
    import yaml

    data = _read()
    if value is None:
        data.pop(KEY, None)
    else:
        data[KEY] = value
    path = config_file()
    if not data:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")


def chosen(model: str | None) -> ModelChoice:
    """The model a command loads: `model` (-m), else $TTC_MODEL, else the user's default, else built-in."""
    if model:
        return ModelChoice(model, GIVEN)
    if env := os.environ.get("TTC_MODEL"):
        return ModelChoice(env, ENV)
    if mine := user_default():
        return ModelChoice(mine, USER)
    return ModelChoice(None, BUILTIN)
