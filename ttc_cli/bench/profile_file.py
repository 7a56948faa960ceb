"""Writing a fitted profile: `profiles/NAME.yaml` in the app dir, holding auto's routes and greedy's
confidence map, each with how it was fitted, layered over the default profile like any other
(`ttc ask -s auto --profile NAME`)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import yaml

from ttc_cli.errors import UsageError
from ttc_cli.yaml_layers import user_path


def write_profile(name: str, fitted: dict[str, Any], source: str) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"'{name}' cannot name a profile", "use a plain name, e.g. --fit mine")
    folder = user_path() / "profiles"
    path = folder / f"{name}.yaml"
    fitted_by = {"by": f"ttc bench --fit {name}", "on": source, "date": datetime.date.today().isoformat()}
    data: dict[str, Any] = {}
    uses = []
    if "routes" in fitted:
        keep = ("fitted_auto", "best_fixed_at_no_more_tokens", "source")
        summary = {k: fitted[k] for k in keep if k in fitted}
        data["auto"] = {"routes": dict(fitted["routes"]), "fitted": {**fitted_by, **summary}}
        uses.append(f"ttc ask -s auto --profile {name}")
    if calibrated := fitted.get("greedy_confidence"):
        line = {k: calibrated[k] for k in ("slope", "intercept")}
        how = {k: v for k, v in calibrated.items() if k not in line}
        data["calibration"] = {"greedy": {**line, "fitted": {**fitted_by, **how}}}
        uses.append(f"ttc ask -s greedy --profile {name}")
    what = " and ".join(w for w, k in (("auto's samples per difficulty", "auto"),
                                       ("greedy's confidence", "calibration")) if k in data)  # fmt: skip
    header = (
        f"# {what[0].upper()}{what[1:]}, fitted by `ttc bench {source} --fit {name}`.\n"
        f"# Use: {'; '.join(uses)}. Everything else comes from the default profile.\n"
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    except OSError as e:
        raise UsageError(
            f"cannot write {path}: {e.strerror or e}", "check the app dir's permissions"
        ) from None
    return path
