"""Tree-search parameters: profile defaults per budget preset, overridden by options, checked up front."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

from ttc_cli.errors import UsageError
from ttc_cli.verifiers.process import AGGREGATES, check_verifier

PICKS = ("score", "vote")
MCTS_MAX_OPEN = 32  # open MCTS leaves that keep their KV cache; the least promising beyond it are closed


@dataclass(frozen=True)
class SearchOptions:
    """What the command line said; None means the profile's value."""

    verifier: str | None = None
    verifier_model: str | None = None
    aggregate: str | None = None
    pick: str | None = None
    exploration: float | None = None
    width: int | None = None
    expansions: int | None = None
    step_tokens: int | None = None
    lookahead: int | None = None
    rollouts: int | None = None
    refine_rounds: int | None = None


@dataclass(frozen=True)
class SearchParams:
    verifier: str = "judge"
    aggregate: str = "min"
    pick: str = "score"
    exploration: float = 1.0
    width: int = 3
    expansions: int = 3
    step_tokens: int = 96
    lookahead: int = 1
    rollouts: int = 1
    refine_rounds: int = 2
    delimiter: str = "\n\n"
    verifier_model: str | None = None
    verify_samples: bool = False  # best-of-n scores its samples with the verifier (an explicit --verifier)

    @property
    def max_open(self) -> int:
        return MCTS_MAX_OPEN


_MINIMUM = {"width": 1, "expansions": 1, "step_tokens": 1, "lookahead": 0, "rollouts": 0, "refine_rounds": 1}


def resolve(profile_search: dict[str, Any], preset: str, opts: SearchOptions, delimiter: str) -> SearchParams:
    """Profile words, then the preset's numbers, then options; every value checked."""
    values: dict[str, Any] = {}
    for key in ("verifier", "aggregate", "pick", "exploration"):
        if key in profile_search:
            values[key] = profile_search[key]
    values.update(profile_search.get(preset) or {})
    for f in fields(opts):
        given = getattr(opts, f.name)
        if given is not None:
            values[f.name] = given
    params = replace(SearchParams(), delimiter=delimiter, **values)
    for key, low in _MINIMUM.items():
        value = getattr(params, key)
        if value < low:
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{flag} must be at least {low}, got {value}", f"e.g. {flag} {max(low, 2)}")
    if params.width * params.expansions > 64:
        raise UsageError(
            f"--width {params.width} × --expansions {params.expansions} is more than 64 branches a step",
            "lower --width or --expansions",
        )
    if not 0 <= params.exploration < math.inf:
        raise UsageError(f"--exploration must be 0 or more, got {params.exploration}", "e.g. --exploration 1")
    if params.aggregate not in AGGREGATES:
        raise UsageError(f"unknown aggregate '{params.aggregate}'", f"choose one of: {', '.join(AGGREGATES)}")
    if params.pick not in PICKS:
        raise UsageError(f"unknown pick '{params.pick}'", f"choose one of: {', '.join(PICKS)}")
    check_verifier(params.verifier)
    return params
