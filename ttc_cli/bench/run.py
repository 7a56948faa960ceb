"""Running a bench: every configuration (model × strategy × budget) on every question, one run at a time,
question by question.

Question i runs with seed `seed + i` under every configuration, so configurations differ only in how they
spend. Each finished run goes to the run log with a key made of the question's text, its gold answer,
the configuration and the options that shape a run; a bench started again with the same file and options
finds those runs there and goes on after them (Ctrl-C keeps what finished). One process, one model in
memory: two llama.cpp processes on the same cores slow each other down many times over.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any

from ttc_cli import runlog
from ttc_cli.answers.extract import answers_equal
from ttc_cli.bench.data import Item
from ttc_cli.options import PlanOptions


@dataclass(frozen=True)
class Config:
    model: str | None  # as -m named it (None: the default model, or the server's only one)
    strategy: str
    budget: str

    def label(self, several_models: bool) -> str:
        name = f"{self.strategy} · {self.budget}"
        return f"{name} · {self.model or 'default'}" if several_models else name


@dataclass
class Outcome:
    item: Item
    config: Config
    result: dict[str, Any]
    right: bool
    resumed: bool  # found in the run log, not run now


# The options every key has held since the run log began; an option added later joins a key only when it
# is set, so a new option does not orphan the runs logged before it.
_KEYED_ALWAYS = frozenset(
    [
        "samples",
        "max_tokens",
        "temperature",
        "top_k",
        "min_p",
        "seed",
        "task",
        "check",
        "check_files",
        "vote",
        "scorer",
        "profile",
        "early_stop",
        "stop_rule",
        "confidence",
        "think_budget",
        "min_think",
        "ctx",
        "verifier",
        "verifier_model",
        "aggregate",
        "pick",
        "exploration",
        "width",
        "expansions",
        "step_tokens",
        "lookahead",
        "rollouts",
        "refine_rounds",
    ]
)


def key(item: Item, config: Config, model_id: str, options: PlanOptions, index: int) -> str:
    """What makes two runs the same run: the question and answer (and hidden tests), the model, the
    configuration, the options and the question's seed."""
    shaping = {
        k: v for k, v in asdict(options).items() if k in _KEYED_ALWAYS or (k != "budget" and v is not None)
    }
    what = [item.question, item.answer, item.check, model_id, config.strategy, config.budget, shaping, index]
    if item.test is not None:
        what.append(item.test)
    raw = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def is_right(item: Item, result: dict[str, Any]) -> bool:
    """Correct by the item's hidden tests (scored once, after the run: `hidden`), its `check` command when
    it has one, else by the voting equivalence."""
    if item.test is not None:
        return bool((result.get("hidden") or {}).get("chosen"))
    if item.check is None:
        return answers_equal(str(result.get("answer", "")), item.answer)
    from ttc_cli.execution.check import Check
    from ttc_cli.execution.sandbox import run_isolated

    argv, kwargs = Check(item.check).job(str(result.get("response", "")))
    outcome = run_isolated(argv, **kwargs)
    return outcome.status == "ok" and outcome.returncode == 0


def seeded(options: PlanOptions, config: Config, index: int) -> PlanOptions:
    return replace(options, budget=config.budget, seed=(options.seed or 0) + index)


def run_model(
    items: list[Item],
    configs: list[Config],
    options: PlanOptions,
    engine: Any,
    model_id: str,
    stop: threading.Event,
    log: bool,
) -> Iterator[Outcome]:
    """Every configuration of one loaded model on every question, resumed from the log where it can be."""
    from ttc_cli.pipeline import LogEntry, run
    from ttc_cli.plan import build
    from ttc_cli.runner import prepare

    keys = {(c, i): key(item, c, model_id, options, i) for c in configs for i, item in enumerate(items)}
    done = runlog.bench_done(list(keys.values())) if log else {}
    # Question by question, every configuration on each: a bench stopped early (or run in parts) has
    # compared every configuration on the same questions.
    for i, item in enumerate(items):
        for config in configs:
            k = keys[config, i]
            if k in done:
                yield Outcome(item, config, done[k], is_right(item, done[k]), resumed=True)
                continue
            if stop.is_set():
                return
            plan = build(item.question, config.strategy, seeded(options, config, i))
            ctx = prepare(plan, engine, None, stop)
            asked = {
                "plan": asdict(seeded(options, config, i)),
                "bench": {"id": item.id, "gold": item.answer},
            }
            entry = LogEntry("bench", asked, bench_key=k) if log else None
            result, data = run(plan, ctx, entry, score=partial(_hidden, item), keep_cut_short=False)
            if result.interrupted:
                return  # a cut-short run is not a result; the same command redoes it
            yield Outcome(item, config, data, is_right(item, data), resumed=False)


def _hidden(item: Item, data: dict[str, Any]) -> dict[str, Any]:
    """A HumanEval-style item's hidden tests, scored once, before the run is logged, so a resumed bench
    reads the verdict from the log instead of running them again."""
    if item.test is None:
        return {}
    from ttc_cli.bench.hidden import score

    return {"hidden": score(item, data)}
