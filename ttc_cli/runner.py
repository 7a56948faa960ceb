"""From a question and options to a finished run: validate, size the context, drive the strategy.

`plan()` checks everything that needs no model (strategy, budget, N, YAML) so mistakes fail fast, before
a model loads. `prepare()` renders the prompt with the model's template and checks that the request fits
the context before any decoding. `execute()` drives a strategy's event stream, hands each event to the
caller's renderer, and returns a `RunResult` whose `to_json()` is the `--json` schema.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ttc_cli.budget import TokenBudget
from ttc_cli.config import Profile, PromptTemplate, guess_task, load_profile, load_prompt
from ttc_cli.engine.base import MAX_SEQUENCES, Engine, EngineStats, SamplingParams
from ttc_cli.engine.forcing import Thinking
from ttc_cli.errors import UsageError
from ttc_cli.events import Event, Final, RunStarted
from ttc_cli.strategies import Strategy, get_strategy
from ttc_cli.strategies.context import EarlyStopping, RunContext
from ttc_cli.strategies.search_params import SearchOptions, SearchParams, resolve
from ttc_cli.verifiers.answers import question_choices
from ttc_cli.verifiers.early_stop import RULES
from ttc_cli.verifiers.scoring import SCORERS

MAX_SAMPLES = MAX_SEQUENCES - 1  # one sequence holds the prompt
VOTES = ("majority", "weighted", "filtered")


@dataclass(frozen=True)
class AskOptions:
    strategy: str = "self-consistency"
    budget: str | None = None
    samples: int | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    task: str = "auto"
    profile: str = "default"
    vote: str = "majority"
    scorer: str = "mean-logprob"
    ctx: int | None = None
    early_stop: bool | None = None  # None: the profile's early_stop.enabled
    stop_rule: str | None = None
    confidence: float | None = None
    think_budget: int | None = None
    min_think: int | None = None
    search: SearchOptions = field(default_factory=SearchOptions)


@dataclass(frozen=True)
class Plan:
    """A validated request, still independent of any model."""

    question: str
    strategy: Strategy
    budget_limit: int
    budget_preset: str | None
    samples: int
    sampling: SamplingParams
    prompt: PromptTemplate
    profile: Profile
    options: AskOptions
    early: EarlyStopping | None
    thinking: Thinking | None
    search: SearchParams = field(default_factory=SearchParams)

    def new_budget(self) -> TokenBudget:
        return TokenBudget(self.budget_limit, preset=self.budget_preset)


def plan(question: str, opts: AskOptions) -> Plan:
    question = question.strip()
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes from argv or stdin arrive as lone surrogates
        raise UsageError("the question is not valid UTF-8 text", "pass it as UTF-8") from None
    if not question:
        raise UsageError("the question is empty", 'pass it as an argument (ttc ask "...") or on stdin')
    strategy = get_strategy(opts.strategy)
    profile = load_profile(opts.profile)
    budget, preset = profile.budget(opts.budget)
    if opts.samples is not None and not 1 <= opts.samples <= MAX_SAMPLES:
        raise UsageError(
            f"-n/--samples must be between 1 and {MAX_SAMPLES}, got {opts.samples}",
            f"llama.cpp runs at most {MAX_SAMPLES + 1} sequences, one of them the prompt",
        )
    samples = (opts.samples or min(preset.samples, MAX_SAMPLES)) if strategy.samples else 1
    max_tokens = opts.max_tokens if opts.max_tokens is not None else preset.max_tokens
    if max_tokens < 1:
        raise UsageError(f"--max-tokens must be positive, got {max_tokens}", "e.g. --max-tokens 512")
    if opts.temperature is not None and not 0 <= opts.temperature < math.inf:  # also rejects nan
        raise UsageError(
            f"--temperature must be 0 or more (and finite), got {opts.temperature}", "0 means greedy"
        )
    if opts.vote not in VOTES:
        raise UsageError(f"unknown vote '{opts.vote}'", f"choose one of: {', '.join(VOTES)}")
    if opts.scorer not in SCORERS:
        raise UsageError(f"unknown scorer '{opts.scorer}'", f"choose one of: {', '.join(SCORERS)}")
    if opts.ctx is not None and opts.ctx < 64:
        raise UsageError(
            f"--ctx {opts.ctx} is too small", "use at least 64, or leave it out to size it from the budget"
        )
    task = guess_task(question) if opts.task == "auto" else opts.task
    prompt = load_prompt(task)
    s = profile.sampling
    sampling = SamplingParams(
        temperature=float(opts.temperature if opts.temperature is not None else s.get("temperature", 0.7)),
        top_k=int(s.get("top_k", 40)),
        top_p=float(s.get("top_p", 0.95)),
        min_p=float(s.get("min_p", 0.05)),
        top_logprobs=int(s.get("top_logprobs", 5)),
        seed=opts.seed if opts.seed is not None else secrets.randbelow(2**31),
        max_tokens=max_tokens,
        grammar=prompt.grammar,
    )
    early = early_stopping(profile, opts)
    thinking = budget_forcing(profile, opts)
    search = resolve(profile.search, preset.name, opts.search, prompt.step_delimiter)
    if not strategy.search and opts.search.verifier is not None:  # best-of-n by the verifier
        search = replace(search, verify_samples=True)
    return Plan(
        question,
        strategy,
        budget.limit,
        budget.preset,
        samples,
        sampling,
        prompt,
        profile,
        opts,
        early,
        thinking,
        search,
    )


def budget_forcing(profile: Profile, opts: AskOptions) -> Thinking | None:
    """The thinking tags from the profile and the limits from the options; None when neither is set."""
    if opts.think_budget is None and opts.min_think is None:
        return None
    if opts.think_budget is not None and opts.think_budget < 1:
        raise UsageError(
            f"--think-budget must be positive, got {opts.think_budget}", "e.g. --think-budget 512"
        )
    if opts.min_think is not None and opts.min_think < 0:
        raise UsageError(f"--min-think must be 0 or more, got {opts.min_think}", "e.g. 128")
    minimum = opts.min_think or 0
    if opts.think_budget is not None and minimum > opts.think_budget:
        raise UsageError(
            f"--min-think {minimum} is more than --think-budget {opts.think_budget}",
            "the model must be allowed to think at least as long as it is made to",
        )
    return Thinking(**profile.thinking, budget=opts.think_budget, minimum=minimum)


def early_stopping(profile: Profile, opts: AskOptions) -> EarlyStopping | None:
    """The early-stopping settings: the profile's, overridden by the options; None when it is off."""
    conf = profile.early_stop
    defaults = EarlyStopping()
    rule = opts.stop_rule if opts.stop_rule is not None else str(conf.get("rule", defaults.rule))
    if rule not in RULES:
        raise UsageError(f"unknown stop rule '{rule}'", f"choose one of: {', '.join(RULES)}")
    confidence = opts.confidence
    if confidence is None:
        confidence = float(conf.get("confidence", defaults.confidence))
    if not 0.5 < confidence <= 1:  # also rejects nan
        raise UsageError(
            f"--confidence must be above 0.5 and at most 1, got {confidence}",
            "it is the probability the leading answer must reach, e.g. --confidence 0.9",
        )
    if opts.vote == "filtered":
        # The filtered vote is DeepConf offline: it ranks all N traces, so a stop decided on the full
        # tally before they exist could disagree with it. It runs every sample (or refuses to stop early).
        if opts.early_stop:
            raise UsageError(
                "--vote filtered cannot be combined with --early-stop",
                "it ranks all N samples; drop --early-stop, or use --stop-rule deepconf (the online filter)",
            )
        return None
    enabled = opts.early_stop if opts.early_stop is not None else bool(conf.get("enabled", True))
    if not enabled:
        return None
    return EarlyStopping(
        rule=rule,
        confidence=confidence,
        width=int(conf.get("width", defaults.width)),
        warmup=int(conf.get("warmup", defaults.warmup)),
        window=int(conf.get("window", defaults.window)),
        keep=float(conf.get("keep", defaults.keep)),
    )


def prepare(p: Plan, engine: Engine, verifier_engine: Engine | None = None) -> RunContext:
    """Render and tokenize the prompt, check it fits, size the engine's context for this run."""
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
    max_tokens = min(p.sampling.max_tokens, window - len(tokens))
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
        thinking=p.thinking,
        search=p.search,
        verifier_engine=verifier_engine,
        messages=tuple(messages),
    )
    need = p.strategy.needs(ctx)
    if need.cells > cap:
        what = (
            f"{p.samples} samples of up to {max_tokens} tokens"
            if p.samples > 1
            else "this question and budget"
        )
        raise UsageError(
            f"{what} need a KV cache of {need.cells} tokens, more than the {cap} available",
            "lower -n, --max-tokens or --budget" + (", or raise --ctx" if p.options.ctx else ""),
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
    before = [e.stats.snapshot() for e in engines]
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
    for event in p.strategy.run(ctx):
        if on_event is not None:
            on_event(event)
        if isinstance(event, Final):
            final = event
    if final is None:
        raise RuntimeError(f"strategy {p.strategy.name} ended without a Final event")
    return RunResult(
        question=p.question,
        strategy=p.strategy.name,
        model=ctx.engine.model_name,
        task=p.prompt.name,
        final=final,
        budget=ctx.budget,
        samples=ctx.samples,
        seed=ctx.sampling.seed,
        prompt_tokens=len(ctx.prompt_tokens),
        stats=EngineStats.total(e.stats.since(b) for e, b in zip(engines, before, strict=True)),
        load_s=load_s,
        total_s=load_s + time.perf_counter() - start,
    )
