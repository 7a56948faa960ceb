"""From a plan to a finished run: fit it to the model, drive the strategy, report the result.

`prepare()` renders the prompt with the model's template, checks that it fits, and sizes the engine's
context once from what the strategy says it needs, before any decoding. `execute()` drives a strategy's
event stream, hands each event to the caller's renderer, and returns a `RunResult` whose `to_json()` is
the `--json` schema. (`plan.build` made the plan, before any model loaded.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ttc_cli.answers.extract import question_choices
from ttc_cli.budget import TokenBudget
from ttc_cli.engine import throughput
from ttc_cli.engine.base import Engine, EngineStats
from ttc_cli.engine.sequence import MAX_SEQUENCES
from ttc_cli.errors import UsageError
from ttc_cli.events import Event, Final, Phase, RunStarted, WidthChosen
from ttc_cli.execution import Limits, isolation
from ttc_cli.plan import Plan
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.programs import LIMITS


def refusal_on(p: Plan, engine: Engine, verifier_engine: Engine | None = None) -> str | None:
    """Why `p` cannot run on these engines (a server's), or None."""
    engines = [e for e in (engine, verifier_engine) if e is not None]
    continues = all(e.continues_text for e in engines)
    return p.refusal(continues, all(e.gives_logprobs for e in engines))


def prepare(
    p: Plan, engine: Engine, verifier_engine: Engine | None = None, stop: threading.Event | None = None
) -> RunContext:
    """Render and tokenize the prompt, check it fits, size the engine's context for this run; `stop` is
    what Ctrl-C sets (a new one when None)."""
    why = refusal_on(p, engine, verifier_engine)
    if why is not None:
        continues = all(e is None or e.continues_text for e in (engine, verifier_engine))
        raise UsageError(
            f"--backend openai cannot run this: {why}",
            "use greedy, best-of-n, self-consistency, auto or refine (a 'cmd:' verifier works)"
            if continues
            else "pass --tokenizer with a GGUF of the server's model, or use greedy, best-of-n, "
            "self-consistency, auto or refine",
        )
    messages = p.prompt.messages(p.question)
    tokens = engine.chat_tokens(messages)
    if p.prompt.prefill:
        tokens += engine.tokenize(p.prompt.prefill, special=True)  # the prompt file's text, e.g. <think>
    cap = p.options.ctx or p.profile.max_context
    model_ctx = engine.n_ctx_train
    window = min(model_ctx, p.options.ctx or model_ctx)
    if len(tokens) + 1 > window:
        raise UsageError(
            f"the question is {len(tokens)} tokens with its prompt, more than the {window}-token context",
            "shorten the question"
            + (" or raise --ctx" if p.options.ctx and p.options.ctx < model_ctx else ""),
        )
    if p.sampling.grammar:
        engine.check_sampling(p.sampling)
    program_tokens = None
    if p.program_prompt is not None and p.program_prompt is not p.prompt:  # hybrid: a second prompt
        program_tokens = engine.chat_tokens(p.program_prompt.messages(p.question))
        if p.program_prompt.grammar:
            engine.check_sampling(replace(p.sampling, grammar=p.program_prompt.grammar))
        tokens_longest = max(len(tokens), len(program_tokens))
    else:
        tokens_longest = len(tokens)
    max_tokens = min(p.sampling.max_tokens, window - tokens_longest)
    ctx = RunContext(
        question=p.question,
        engine=engine,
        budget=p.new_budget(),
        prompt_tokens=tokens,
        samples=p.samples,
        sampling=replace(p.sampling, max_tokens=max_tokens),
        choices=question_choices(p.question),
        vote=p.options.vote,
        scorer=p.options.scorer,
        early=p.early,
        routes=p.profile.auto,
        greedy_confidence=p.profile.greedy_confidence,
        thinking=p.thinking,
        search=p.search,
        verifier_engine=verifier_engine,
        messages=tuple(messages),
        stop=stop or threading.Event(),
        program_tokens=program_tokens,
        program_grammar=p.program_prompt.grammar if p.program_prompt is not None else "",
        program_share=p.program_share,
        program_limits=_program_limits(p) if p.program_prompt is not None else None,
        check=p.check,
    )
    need = p.strategy.needs(ctx)
    if need.cells > cap:
        what = (
            f"{p.samples} samples of up to {max_tokens} tokens"
            if p.samples > 1
            else "this question and budget"
        )
        knobs = "--budget, --max-tokens, --width, --expansions or --rollouts" if p.strategy.search else ""
        raise UsageError(
            f"{what} need a KV cache of {need.cells} tokens, more than the {cap} available",
            f"lower {knobs or '-n, --max-tokens or --budget'}{', or raise --ctx' if p.options.ctx else ''}",
        )
    if need.sequences > MAX_SEQUENCES:
        raise UsageError(
            f"this run needs {need.sequences} sequences at once, more than llama.cpp's {MAX_SEQUENCES}",
            "lower -n, --width, --expansions or --rollouts",
        )
    for e in (engine, verifier_engine):
        if e is not None:
            e.reserve(need.cells, need.sequences, cap)
    return ctx


def _program_limits(p: Plan) -> Limits:
    conf = p.profile.execution
    seconds = float(conf["timeout_s"])
    return replace(LIMITS, wall_s=seconds, cpu_s=max(1, round(seconds)), memory_mb=int(conf["memory_mb"]))


def isolation_of(ctx: RunContext) -> str | None:
    """How the programs or checks this run executes are contained (None: it executes none)."""
    limits = ctx.check.limits if ctx.check is not None else ctx.program_limits
    return isolation(limits) if limits is not None else None


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
        if f.tree:
            out["tree"] = [n.to_json() for n in f.tree]
        return out

    def _json(self) -> dict[str, Any]:
        f = self.final
        return {
            "answer": f.answer,
            "strategy": self.strategy,
            "model": self.model,
            "question": self.question,
            "task": self.task,
            "selection": f.selection,
            "confidence": round(f.confidence, 3) if f.confidence is not None else None,
            "stopped_because": f.stopped_because,
            "budget": {"limit": self.budget.limit, "spent": self.budget.spent, "preset": self.budget.preset},
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "prompt_eval_tokens": self.stats.prompt_eval_tokens,
                "generated_tokens": self.stats.generated_tokens,
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
            "width": self.width_json(),
            "backend": self.backend,
        }


def execute(
    p: Plan,
    ctx: RunContext,
    on_event: Callable[[Event], None] | None = None,
    load_s: float = 0.0,
) -> RunResult:
    """Drive the strategy to its Final event, passing every event to `on_event`."""
    # A judge on --verifier-model spends the same budget, so usage counts both engines.
    engines = [ctx.engine] + ([ctx.verifier_engine] if ctx.verifier_engine is not None else [])
    start = time.perf_counter()
    final: Final | None = None
    if on_event is not None:
        on_event(
            RunStarted(
                p.strategy.name,
                ctx.samples,
                ctx.sampling.max_tokens,
                ctx.budget.limit,
                len(ctx.prompt_tokens),
            )
        )
    measured_s = _throughput(p, ctx, on_event)
    before = [e.stats.snapshot() for e in engines]  # the measurement is not the question's spending
    widths: list[WidthChosen] = []
    for event in p.strategy.run(ctx):
        if on_event is not None:
            on_event(event)
        if isinstance(event, WidthChosen):
            widths.append(event)
        if isinstance(event, Final):
            final = event
    if final is None:
        raise RuntimeError(f"strategy {p.strategy.name} ended without a Final event")
    return RunResult(
        question=p.question,
        strategy=p.strategy.name,
        model=ctx.engine.model_name,
        task=p.task,
        final=final,
        budget=ctx.budget,
        samples=ctx.samples,
        seed=ctx.sampling.seed,
        prompt_tokens=len(ctx.prompt_tokens),
        stats=EngineStats.total(e.stats.since(b) for e, b in zip(engines, before, strict=True)),
        load_s=load_s,
        total_s=load_s + time.perf_counter() - start,
        isolation=isolation_of(ctx),
        widths=widths,
        curve=ctx.throughput,
        measure_s=measured_s,
        backend=ctx.engine.backend_json(),
    )


def _throughput(p: Plan, ctx: RunContext, on_event: Callable[[Event], None] | None) -> float | None:
    """Give the run the engine's throughput curve when its width policy needs one, measuring it (once per
    host and model; seconds) if it is not cached; returns the seconds a measurement took."""
    early = ctx.early
    if not (p.strategy.samples and ctx.samples > 1 and early is not None and early.width is None):
        return None
    widest = min(max(16, ctx.samples), ctx.engine.n_seq_max - 1)
    key = ctx.engine.throughput_key()
    ctx.throughput = throughput.cached(key, ctx.samples) if key is not None else None
    if ctx.throughput is not None or key is None:
        return None
    if on_event is not None:
        on_event(
            Phase("measure", f"this host's decoding speed at 1 to {widest} samples at once (once per model)")
        )
    start = time.perf_counter()
    ctx.throughput = throughput.measure_and_store(ctx.engine, key, widest, ctx.sampling, ctx.stop)
    return time.perf_counter() - start
