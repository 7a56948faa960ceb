"""Profiles: budget presets and every default of a run (sampling, early stopping, forcing, search).

The built-in `profiles/default.yaml` is the one home of ttc's defaults: every profile is merged over it
(and over the user's own `default.yaml`), so each key has a value and no code carries a fallback of its
own. `--profile NAME` then layers `NAME.yaml`, built-in and the user's, on top.

It is longer than most modules here because it checks every section a profile may hold, each key's type
and range, so that a mistake in a user's YAML is one line naming the key and the file, never a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ttc_cli.answers.behaviour import SIGNALS
from ttc_cli.budget import TokenBudget, parse_seconds
from ttc_cli.errors import UsageError
from ttc_cli.strategies.search_params import PER_PRESET, WORDS
from ttc_cli.yaml_layers import invalid, key_name, keys_text, load_layers, require


@dataclass(frozen=True)
class Preset:
    name: str
    tokens: int
    samples: int
    max_tokens: int


@dataclass(frozen=True)
class Profile:
    name: str
    default_budget: str
    presets: dict[str, Preset]
    sampling: dict[str, float]
    max_context: int
    early_stop: dict[str, Any]
    probe: dict[str, Any]
    thinking: dict[str, str]
    search: dict[str, Any] = field(default_factory=dict)  # tree-search defaults (see _check_search)
    execution: dict[str, Any] = field(default_factory=dict)  # programs: auto_task, hybrid share, limits
    auto: dict[str, int] = field(default_factory=dict)  # auto's samples per difficulty (`ttc bench --fit`)
    code: dict[str, Any] = field(default_factory=dict)  # code questions: which tests choose, test writing
    greedy_confidence: tuple[float, float] | None = None  # (slope, intercept) from `ttc bench --fit`

    def budget(self, spec: str | None) -> tuple[TokenBudget, Preset]:
        """Parse --budget (a preset name, a positive token count, or seconds such as 30s or 2m) into a
        budget and its defaults. Seconds are a deadline on the default preset: its tokens stay the
        contract, and `--budget high --deadline 30s` pairs a deadline with another preset."""
        spec = (self.default_budget if spec is None else spec).strip().lower()
        if (seconds := parse_seconds(spec)) is not None:
            budget, preset = self.budget(None)
            return TokenBudget(budget.limit, preset=budget.preset, deadline_s=seconds), preset
        if spec in self.presets:
            preset = self.presets[spec]
            return TokenBudget(preset.tokens, preset=spec), preset
        try:
            tokens = int(spec.replace("_", "").replace(",", ""))
        except ValueError:
            tokens = 0
        if tokens < 1:
            raise UsageError(
                f"invalid budget '{spec}'",
                f"use a preset ({', '.join(self.presets)}), a positive token count (e.g. --budget 2000) "
                "or seconds (e.g. --budget 30s)",
            )
        # A numeric budget borrows N and the length cap from the largest preset it can afford.
        affordable = [p for p in self.presets.values() if p.tokens <= tokens]
        preset = (
            max(affordable, key=lambda p: p.tokens)
            if affordable
            else min(self.presets.values(), key=lambda p: p.tokens)
        )
        return TokenBudget(tokens), preset


_SAMPLING_KEYS = {"temperature", "top_k", "top_p", "min_p", "top_logprobs"}


def load_profile(name: str = "default") -> Profile:
    """Profile `name` over the default profile (built-in, then the user's), so every key has a value."""
    data, where = load_layers("profiles", name, under=("default",))
    known = {"default_budget", "budgets", "sampling", "engine", "early_stop", "thinking", "search"}
    known |= {"execution", "auto", "calibration", "code", "probe"}
    unknown = set(data) - known
    require(not unknown, where, f"unknown key(s) {keys_text(unknown)}")
    budgets = data.get("budgets")
    if not isinstance(budgets, dict) or not budgets:
        raise invalid(where, "'budgets' must map preset names to settings")
    presets = {}
    for preset_name, spec in budgets.items():
        require(isinstance(spec, dict), where, f"budget {key_name(preset_name)} must be a mapping")
        extra = set(spec) - {"tokens", "samples", "max_tokens"}
        require(not extra, where, f"budget {key_name(preset_name)} has unknown key(s) {keys_text(extra)}")
        for key in ("tokens", "samples", "max_tokens"):
            value = spec.get(key)
            ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
            require(ok, where, f"budgets.{key_name(preset_name)}.{key} must be a positive integer")
        presets[str(preset_name)] = Preset(
            str(preset_name), spec["tokens"], spec["samples"], spec["max_tokens"]
        )
    default_budget = str(data["default_budget"])
    require(default_budget in presets, where, f"default_budget '{default_budget}' is not a preset")
    sampling = _section(data.get("sampling"), where, "sampling", _SAMPLING_KEYS)
    for key, value in sampling.items():
        require(
            isinstance(value, int | float) and not isinstance(value, bool),
            where,
            f"sampling.{key} must be a number",
        )
    engine = data.get("engine")
    engine = {} if engine is None else engine
    require(isinstance(engine, dict), where, "'engine' must be a mapping")
    max_context = engine.get("max_context", 0)  # none at all is refused below, as a zero is
    require(
        isinstance(max_context, int) and max_context > 0,
        where,
        "engine.max_context must be a positive integer",
    )
    return Profile(
        name=name,
        default_budget=default_budget,
        presets=presets,
        sampling=dict(sampling),
        max_context=max_context,
        early_stop=_early_stop(data.get("early_stop"), where),
        probe=_probe(data.get("probe"), where),
        thinking=_thinking(data.get("thinking"), where),
        search=_search(data.get("search"), where),
        execution=_execution(data.get("execution"), where),
        auto=_auto(data.get("auto"), where),
        code=_code(data.get("code"), where),
        greedy_confidence=_greedy_confidence(data.get("calibration"), where),
    )


_EARLY_STOP_TYPES: dict[str, tuple[type, ...]] = {
    "enabled": (bool,),
    "rule": (str,),
    "confidence": (int, float),
    "width": (int, str),  # a number, or "auto": chosen from the measured throughput
    "warmup": (int,),
    "window": (int,),
    "keep": (int, float),
}


def _section(section: object, where: list[Path], name: str, known: Iterable[str]) -> dict[str, Any]:
    """A profile section as a mapping of known keys (absent: no keys, so the defaults hold; an empty list
    or string is not a mapping, and would otherwise stand in for the defaults it replaced)."""
    section = {} if section is None else section
    require(isinstance(section, dict), where, f"'{name}' must be a mapping")
    assert isinstance(section, dict)
    extra = set(section) - set(known)
    require(not extra, where, f"unknown {name} key(s) {keys_text(extra)}")
    return section


def _typed(
    section: object, where: list[Path], name: str, known: dict[str, tuple[type, ...]]
) -> dict[str, Any]:
    """A section whose every key has a type (a bool is no number, unless the key is a switch)."""
    section = _section(section, where, name, known)
    for key, value in section.items():
        types = known[key]
        ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
        require(ok, where, f"{name}.{key} must be a {types[-1].__name__}")
    return section


def _early_stop(section: object, where: list[Path]) -> dict[str, Any]:
    section = _typed(section, where, "early_stop", _EARLY_STOP_TYPES)
    width = section.get("width", "auto")
    require(width == "auto" or isinstance(width, int), where, "early_stop.width must be a number or auto")
    for key in ("warmup", "window") + (("width",) if isinstance(width, int) else ()):
        require(section.get(key, 1) > 0, where, f"early_stop.{key} must be positive")
    require(0 < section.get("keep", 0.5) <= 1, where, "early_stop.keep must be in (0, 1]")
    return dict(section)


_PROBE_KEYS: dict[str, tuple[type, ...]] = {
    "enabled": (bool,),
    "every": (int,),
    "tokens": (int,),
    "settle": (int,),
    "agree": (int,),
    "weight": (int, float),
}


def _probe(section: object, where: list[Path]) -> dict[str, Any]:
    section = _typed(section, where, "probe", _PROBE_KEYS)
    for key in ("every", "tokens", "settle"):
        require(section.get(key, 1) > 0, where, f"probe.{key} must be positive")
    require(section.get("agree", 0) >= 0, where, "probe.agree must be 0 (never) or more")
    require(section.get("weight", 1) > 0, where, "probe.weight must be positive")
    return dict(section)


_EXECUTION_KEYS = {"hybrid_share": (0.0, 1.0), "timeout_s": (0.1, 3600.0), "memory_mb": (16, 1 << 20)}
AUTO_TASKS = ("math", "program", "hybrid")  # what --task auto may give a question with numbers


def _execution(section: object, where: list[Path]) -> dict[str, Any]:
    section = _section(section, where, "execution", {*_EXECUTION_KEYS, "auto_task"})
    for key, value in section.items():
        if key == "auto_task":
            ok = value in AUTO_TASKS
            require(ok, where, f"execution.auto_task must be one of {', '.join(AUTO_TASKS)}")
            continue
        lo, hi = _EXECUTION_KEYS[key]
        ok = isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi
        require(ok, where, f"execution.{key} must be a number from {lo:g} to {hi:g}")
    return dict(section)


_CODE_NUMBERS = {"test_samples": (0, 8), "test_max_tokens": (16, 4096), "case_timeout_s": (0.05, 60.0)}


def _code(section: object, where: list[Path]) -> dict[str, Any]:
    keys = {*_CODE_NUMBERS, "tests", "width", "greedy_first", "write_tests", "confidence"}
    section = _section(section, where, "code", keys)
    for key, value in section.items():
        if key == "tests":
            require(value in SIGNALS, where, f"code.tests must be one of {', '.join(SIGNALS)}")
        elif key == "width":
            ok = value in ("auto", "grow") or (
                isinstance(value, int) and not isinstance(value, bool) and value > 0
            )
            require(ok, where, "code.width must be a positive number, grow or auto")
        elif key == "write_tests":
            ok = value in ("always", "without-examples")
            require(ok, where, "code.write_tests must be always or without-examples")
        elif key == "confidence":
            rates = _section(value, where, "code.confidence", ("examples_pass", "examples_fail"))
            for name, rate in rates.items():
                ok = isinstance(rate, int | float) and not isinstance(rate, bool) and 0 <= rate <= 1
                require(ok, where, f"code.confidence.{name} must be a probability from 0 to 1")
        elif key == "greedy_first":
            require(isinstance(value, bool), where, "code.greedy_first must be true or false")
        else:
            lo, hi = _CODE_NUMBERS[key]
            ok = isinstance(value, int | float) and not isinstance(value, bool) and lo <= value <= hi
            require(ok, where, f"code.{key} must be a number from {lo:g} to {hi:g}")
    return dict(section)


def _auto(section: object, where: list[Path]) -> dict[str, int]:
    """`auto: {routes: {easy: 4, medium: 8, hard: 16}}`: samples (probe included) per difficulty."""
    section = _section(section, where, "auto", {"routes", "fitted"})
    routes = _section(section.get("routes"), where, "auto.routes", DIFFICULTIES)
    for key, value in routes.items():
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        require(ok, where, f"auto.routes.{key} must be a positive number of samples")
    return dict(routes)


def _greedy_confidence(section: object, where: list[Path]) -> tuple[float, float] | None:
    """`calibration: {greedy: {slope: 40.1, intercept: 3.2}}`: greedy's confidence (answers.calibration)."""
    greedy = _section(_section(section, where, "calibration", {"greedy"}).get("greedy"), where,
                      "calibration.greedy", {"slope", "intercept", "fitted"})  # fmt: skip
    if not greedy:
        return None
    for key in ("slope", "intercept"):
        value = greedy.get(key)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        require(ok, where, f"calibration.greedy.{key} must be a number")
    return float(greedy["slope"]), float(greedy["intercept"])


DIFFICULTIES = ("easy", "medium", "hard")
_THINKING_KEYS = {"open", "close", "wait", "answer"}


def _thinking(section: object, where: list[Path]) -> dict[str, str]:
    section = _section(section, where, "thinking", _THINKING_KEYS)
    for key, value in section.items():
        require(isinstance(value, str), where, f"thinking.{key} must be a string")
    require(bool(section.get("close", "x")), where, "thinking.close must not be empty")
    return dict(section)


def _search(section: object, where: list[Path]) -> dict[str, Any]:
    search = {} if section is None else section
    _check_search(search, where)
    assert isinstance(search, dict)
    return search


def _check_search(search: Any, where: list[Path]) -> None:
    """`search:` holds tree-search defaults: words and `exploration` at the top, numbers per preset."""
    require(isinstance(search, dict), where, "'search' must be a mapping")
    for key, value in search.items():
        if key == "exploration":
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
            require(ok, where, "search.exploration must be a number ≥ 0")
        elif key in WORDS:
            require(isinstance(value, str), where, f"search.{key_name(key)} must be a string")
        else:
            require(
                isinstance(value, dict),
                where,
                f"search.{key_name(key)} must be a mapping of numbers per preset",
            )
            extra = set(value) - set(PER_PRESET)
            renamed = "width" in extra and "beams kept per step is `beams` now (`width`: samples at once)"
            require(not renamed, where, f"search.{key_name(key)}.width: {renamed}")
            require(not extra, where, f"search.{key_name(key)} has unknown key(s) {keys_text(extra)}")
            for k, v in value.items():
                ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
                require(ok, where, f"search.{key_name(key)}.{key_name(k)} must be an integer ≥ 0")
