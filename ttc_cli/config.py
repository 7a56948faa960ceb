"""Profiles and prompts: YAML data shipped with ttc that a user can override.

Built-ins live in the `ttc_cli.profiles` / `ttc_cli.prompts` packages (the repository's top-level
`profiles/` and `prompts/`). A file of the same name in `$TTC_USER_PATH/profiles|prompts/` is merged over
the built-in one, so a user changes one key without copying the rest; a new name adds a profile or a task.
Every file is validated here, so a typo becomes one line naming the file and the key, not a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ttc_cli.budget import TokenBudget
from ttc_cli.errors import UsageError

PRESETS = ("low", "medium", "high", "max")


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


def _names(kind: str) -> list[str]:
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
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _load(kind: str, name: str) -> tuple[dict[str, Any], list[Path]]:
    sources = [
        p for p in (_builtin_dir(kind) / f"{name}.yaml", user_path() / kind / f"{name}.yaml") if p.is_file()
    ]
    if not sources:
        known = ", ".join(_names(kind)) or "none"
        singular = kind.rstrip("s")
        raise UsageError(
            f"unknown {singular} '{name}'",
            f"choose one of: {known} (or add {user_path() / kind / (name + '.yaml')})",
        )
    data: dict[str, Any] = {}
    for path in sources:
        data = _merge(data, _read_yaml(path))
    return data, sources


def _keys(keys: Iterable[object]) -> str:
    """Key names for a message; YAML keys need not be strings (`1: x` is an int key)."""
    return ", ".join(sorted(map(str, keys)))


def _invalid(where: list[Path], what: str) -> UsageError:
    return UsageError(f"invalid {where[-1]}: {what}", "fix the file or remove it to use the built-in")


def _require(cond: bool, where: list[Path], what: str) -> None:
    if not cond:
        raise _invalid(where, what)


# ---- profiles --------------------------------------------------------------------------------------
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
    thinking: dict[str, str]
    search: dict[str, Any] = field(default_factory=dict)  # tree-search defaults (see _check_search)

    def budget(self, spec: str | None) -> tuple[TokenBudget, Preset]:
        """Parse --budget (a preset name or a positive token count) into a budget and its defaults."""
        spec = (self.default_budget if spec is None else spec).strip().lower()
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
                f"use a preset ({', '.join(self.presets)}) or a positive token count, e.g. --budget 2000",
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
    data, where = _load("profiles", name)
    known = {"default_budget", "budgets", "sampling", "engine", "early_stop", "thinking", "search"}
    unknown = set(data) - known
    _require(not unknown, where, f"unknown key(s) {_keys(unknown)}")
    budgets = data.get("budgets")
    if not isinstance(budgets, dict) or not budgets:
        raise _invalid(where, "'budgets' must map preset names to settings")
    presets = {}
    for preset_name, spec in budgets.items():
        _require(isinstance(spec, dict), where, f"budget '{preset_name}' must be a mapping")
        extra = set(spec) - {"tokens", "samples", "max_tokens"}
        _require(not extra, where, f"budget '{preset_name}' has unknown key(s) {_keys(extra)}")
        for key in ("tokens", "samples", "max_tokens"):
            value = spec.get(key)
            ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
            _require(ok, where, f"budgets.{preset_name}.{key} must be a positive integer")
        presets[str(preset_name)] = Preset(
            str(preset_name), spec["tokens"], spec["samples"], spec["max_tokens"]
        )
    default_budget = str(data.get("default_budget", "medium"))
    _require(default_budget in presets, where, f"default_budget '{default_budget}' is not a preset")
    sampling = data.get("sampling") or {}
    _require(isinstance(sampling, dict), where, "'sampling' must be a mapping")
    extra = set(sampling) - _SAMPLING_KEYS
    _require(not extra, where, f"unknown sampling key(s) {_keys(extra)}")
    for key, value in sampling.items():
        _require(
            isinstance(value, int | float) and not isinstance(value, bool),
            where,
            f"sampling.{key} must be a number",
        )
    engine = data.get("engine") or {}
    _require(isinstance(engine, dict), where, "'engine' must be a mapping")
    max_context = engine.get("max_context", 65536)
    _require(
        isinstance(max_context, int) and max_context > 0,
        where,
        "engine.max_context must be a positive integer",
    )
    return Profile(
        name,
        default_budget,
        presets,
        dict(sampling),
        max_context,
        _early_stop(data.get("early_stop"), where),
        _thinking(data.get("thinking"), where),
        _search(data.get("search"), where),
    )


_EARLY_STOP_TYPES: dict[str, tuple[type, ...]] = {
    "enabled": (bool,),
    "rule": (str,),
    "confidence": (int, float),
    "width": (int,),
    "warmup": (int,),
    "window": (int,),
    "keep": (int, float),
}


def _early_stop(section: object, where: list[Path]) -> dict[str, Any]:
    section = section or {}
    _require(isinstance(section, dict), where, "'early_stop' must be a mapping")
    assert isinstance(section, dict)
    extra = set(section) - set(_EARLY_STOP_TYPES)
    _require(not extra, where, f"unknown early_stop key(s) {_keys(extra)}")
    for key, value in section.items():
        types = _EARLY_STOP_TYPES[key]
        ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
        _require(ok, where, f"early_stop.{key} must be a {types[-1].__name__}")
    for key in ("width", "warmup", "window"):
        _require(section.get(key, 1) > 0, where, f"early_stop.{key} must be positive")
    _require(0 < section.get("keep", 0.5) <= 1, where, "early_stop.keep must be in (0, 1]")
    return dict(section)


_THINKING_KEYS = {"open", "close", "wait", "answer"}


def _thinking(section: object, where: list[Path]) -> dict[str, str]:
    section = section or {}
    _require(isinstance(section, dict), where, "'thinking' must be a mapping")
    assert isinstance(section, dict)
    extra = set(section) - _THINKING_KEYS
    _require(not extra, where, f"unknown thinking key(s) {_keys(extra)}")
    for key, value in section.items():
        _require(isinstance(value, str), where, f"thinking.{key} must be a string")
    _require(bool(section.get("close", "x")), where, "thinking.close must not be empty")
    return dict(section)


def _search(section: object, where: list[Path]) -> dict[str, Any]:
    search = section or {}
    _check_search(search, where)
    assert isinstance(search, dict)
    return search


SEARCH_INTS = ("width", "expansions", "step_tokens", "lookahead", "rollouts", "refine_rounds")
SEARCH_WORDS = ("verifier", "aggregate", "pick")


def _check_search(search: Any, where: list[Path]) -> None:
    """`search:` holds tree-search defaults: words and `exploration` at the top, numbers per preset."""
    _require(isinstance(search, dict), where, "'search' must be a mapping")
    for key, value in search.items():
        if key in SEARCH_WORDS:
            _require(isinstance(value, str), where, f"search.{key} must be a string")
        elif key == "exploration":
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
            _require(ok, where, "search.exploration must be a number ≥ 0")
        else:
            _require(isinstance(value, dict), where, f"search.{key} must be a mapping of numbers per preset")
            extra = set(value) - set(SEARCH_INTS)
            _require(not extra, where, f"search.{key} has unknown key(s) {_keys(extra)}")
            for k, v in value.items():
                ok = isinstance(v, int) and not isinstance(v, bool) and v >= 0
                _require(ok, where, f"search.{key}.{k} must be an integer ≥ 0")


# ---- prompts ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    template: str
    prefill: str = ""  # the start of the model's reply, e.g. "<think>\n" to open a thinking block
    step_delimiter: str = "\n\n"  # where a reasoning step ends, for the tree searches
    grammar: str = ""  # GBNF every reply must follow (each step, in a tree search); "" for free text

    def messages(self, question: str) -> list[dict[str, str]]:
        user = self.template.replace("{question}", question)
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": user}]


AUX_PROMPTS = ("judge", "refine")  # prompts of verifiers and strategies, not tasks


def load_prompt(name: str) -> PromptTemplate:
    if name in AUX_PROMPTS:
        raise UsageError(f"'{name}' is not a task prompt", "use --task math, general, auto or your own")
    data, where = _load("prompts", name)
    unknown = set(data) - {"system", "template", "prefill", "step_delimiter", "grammar"}
    _require(not unknown, where, f"unknown key(s) {_keys(unknown)}")
    template = data.get("template")
    if not isinstance(template, str) or "{question}" not in template:
        raise _invalid(where, "'template' must contain {question}")
    system = data.get("system", "")
    _require(isinstance(system, str), where, "'system' must be a string")
    prefill = data.get("prefill", "")
    _require(isinstance(prefill, str), where, "'prefill' must be a string")
    delimiter = data.get("step_delimiter", "\n\n")
    _require(isinstance(delimiter, str) and delimiter != "", where, "'step_delimiter' must be a string")
    grammar = data.get("grammar", "")
    _require(isinstance(grammar, str), where, "'grammar' must be a string (GBNF, with a root rule)")
    return PromptTemplate(
        name, system.strip(), template, prefill=prefill, step_delimiter=delimiter, grammar=grammar
    )


def load_aux_prompt(name: str, keys: tuple[str, ...]) -> dict[str, str]:
    """A verifier's or strategy's own prompts (judge, refine): each of `keys` a non-empty string."""
    data, where = _load("prompts", name)
    unknown = set(data) - set(keys)
    _require(not unknown, where, f"unknown key(s) {_keys(unknown)}")
    for key in keys:
        value = data.get(key)
        _require(isinstance(value, str) and bool(value.strip()), where, f"'{key}' must be a non-empty string")
    return {key: str(data[key]) for key in keys}


def guess_task(question: str) -> str:
    """'math' when the question carries numbers or arithmetic, else 'general'."""
    has_digit = any(c.isdigit() for c in question)
    return "math" if has_digit else "general"
