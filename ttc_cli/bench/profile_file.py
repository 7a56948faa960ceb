"""Writing a fitted profile: `profiles/NAME.yaml` in the app dir, holding auto's routes and how they were
fitted, layered over the default profile like any other (`ttc ask -s auto --profile NAME`)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import yaml

from ttc_cli.config import user_path
from ttc_cli.errors import UsageError


def write_profile(name: str, fitted: dict[str, Any], source: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"'{name}' cannot name a profile", "use a plain name, e.g. --fit mine")
    folder = user_path() / "profiles"
    path = folder / f"{name}.yaml"
    summary = {k: fitted[k] for k in ("fitted_auto", "best_fixed_at_no_more_tokens", "source") if k in fitted}
    data: dict[str, Any] = {
        "auto": {
            "routes": dict(fitted["routes"]),
            "fitted": {"by": f"ttc bench --fit {name}", "on": source,
                       "date": datetime.date.today().isoformat(), **summary},
        }
    }  # fmt: skip
    header = (
        f"# auto's samples per difficulty, fitted by `ttc bench {source} --fit {name}`.\n"
        f"# Use: ttc ask -s auto --profile {name}. Everything else comes from the default profile.\n"
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    except OSError as e:
        raise UsageError(
            f"cannot write {path}: {e.strerror or e}", "check the app dir's permissions"
        ) from None
    return path
