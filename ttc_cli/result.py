"""A finished run as `--json` reports it: `RunResult.to_json()` is the schema (docs/reference.md,
"JSON output")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ttc_cli.answers.probing import Probing
from ttc_cli.budget import TokenBudget
from ttc_cli.engine import throughput
from ttc_cli.engine.base import EngineStats
from ttc_cli.events import Final, GeneratedTests, Probed, WidthChosen
from ttc_cli.strategies.code import CodeTesting

# 2: a candidate's `confidence` became `trace_confidence` (DeepConf's), so `confidence` is only ever the
# answer's; the budget reports its deadline and seconds. Logs of schema 1 carry no `schema` key.
SCHEMA = 2


@dataclass
class RunResult:
    question: str
    strategy: str
    model: str
    task: str
    final: Final
    budget: TokenBudget
    samples: int
    seed: int
    prompt_tokens: int
    stats: EngineStats
    load_s: float
    total_s: float
    isolation: str | None = None  # how programs ran (execution.isolation), when the run ran any
    widths: list[WidthChosen] = field(default_factory=list)  # the sampler's widths, in order
    curve: throughput.Curve | None = None  # the throughput curve they were chosen from
    measure_s: float | None = None  # seconds this run spent measuring the curve (first run on a host)
    backend: dict[str, Any] = field(default_factory=dict)  # where it ran (Engine.backend_json)
    code: CodeTesting | None = None  # a code question's tests
    tests_written: list[GeneratedTests] = field(default_factory=list)  # the model's test sets, in order
    probes: list[Probed] = field(default_factory=list)  # rounds of answer probes, in order
    probing: Probing | None = None  # the probe settings, when the run probed its samples
    probe_cue: int = 0  # tokens of the answer cue each probe evaluated

    def probes_json(self) -> dict[str, Any] | None:
        """--json's `probes`: the settings, what the probes cost, and every reading in order."""
        if self.probing is None:
            return None
        readings = [r for p in self.probes for r in p.readings]
        return {
            "every": self.probing.every,
            "rounds": len(self.probes),
            "tokens": sum(p.tokens for p in self.probes),
            "cue_tokens": self.probe_cue * len(readings),
            "readings": [
                {"index": r.index, "position": r.position, "answer": r.answer, "settled": r.settled}
                for r in readings
            ],
        }

    def width_json(self) -> dict[str, Any] | None:
        """--json's `width`: how many samples decoded at once, each choice and why."""
        if not self.widths:
            return None
        out: dict[str, Any] = {
            "policy": self.widths[0].policy,
            "chosen": [{"width": w.width, "after": w.votes, "detail": w.detail} for w in self.widths],
        }
        if self.curve is not None:
            out["curve_tokens_per_s"] = self.curve.to_json()
        if self.measure_s is not None:
            out["measured_s"] = round(self.measure_s, 2)
        return out

    def execution_json(self) -> dict[str, Any] | None:
        """--json's `execution`: how contained the programs were, and how many ran."""
        if self.isolation is None:
            return None
        runs = [c.execution for c in self.final.candidates if c.execution is not None]
        ran = sum(e.status == "ok" for e in runs)
        return {"isolation": self.isolation, "programs": len(runs), "ran": ran}

    @property
    def interrupted(self) -> bool:
        return self.final.stopped_because == "interrupted"

    def to_json(self) -> dict[str, Any]:
        f = self.final
        out = self._json()
        out["usage"].update(dict(f.usage))  # a search's tree and judge counters
        if self.probing is not None:  # within generated_tokens, and charged to the budget like them
            out["usage"]["probe_tokens"] = sum(p.tokens for p in self.probes)
        if f.tree:
            out["tree"] = [n.to_json() for n in f.tree]
        return out

    def _json(self) -> dict[str, Any]:
        f = self.final
        return {
            "schema": SCHEMA,
            "answer": f.answer,
            "strategy": self.strategy,
            "model": self.model,
            "question": self.question,
            "task": self.task,
            "selection": f.selection,
            "confidence": round(f.confidence, 3) if f.confidence is not None else None,
            "stopped_because": f.stopped_because,
            "budget": {
                "limit": self.budget.limit,
                "spent": self.budget.spent,
                "preset": self.budget.preset,
                "deadline_s": self.budget.deadline_s,
                "spent_s": round(self.budget.elapsed_s, 3),
            },
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "prompt_eval_tokens": self.stats.prompt_eval_tokens,
                "generated_tokens": self.stats.generated_tokens,
                "test_tokens": sum(w.tokens for w in self.tests_written),
            },
            "timing": {
                "load_s": round(self.load_s, 3),
                "prefill_s": round(self.stats.prefill_s, 3),
                "decode_s": round(self.stats.decode_s, 3),
                "total_s": round(self.total_s, 3),
            },
            "early_stop": f.early_stop.summary() if f.early_stop is not None else None,
            "route": f.route.summary() if f.route is not None else None,
            "samples": self.samples,
            "seed": self.seed,
            "chosen": f.chosen,
            "response": f.response,
            "candidates": [c.to_json() for c in sorted(f.candidates, key=lambda c: c.index)],
            "votes": [v.to_json() for v in f.votes],
            "execution": self.execution_json(),
            "code": self.code.to_json(self.tests_written) if self.code is not None else None,
            "width": self.width_json(),
            "probes": self.probes_json(),
            "backend": self.backend,
        }
