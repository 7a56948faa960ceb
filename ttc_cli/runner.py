"""From a plan to a finished run: fit it to the model, drive the strategy, report the result.

`prepare()` renders the prompt with the model's template, checks that it fits, and sizes the engine's
context once from what the strategy says it needs, before any decoding. `execute()` drives a strategy's
event stream, hands each event to the caller's renderer, and returns a `RunResult` (`result.py`: its
`to_json()` is the `--json` schema). (`plan.build` made the plan, before any model loaded.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from ttc_cli.answers.extract import question_choices
from ttc_cli.engine import throughput
from ttc_cli.engine.base import Engine, EngineStats
from ttc_cli.engine.sequence import MAX_SEQUENCES, KvNeeds
from ttc_cli.errors import UsageError
from ttc_cli.events import Event, Final, GeneratedTests, Phase, Probed, RunStarted, WidthChosen
from ttc_cli.execution import isolation
from ttc_cli.plan import Plan
from ttc_cli.result import RunResult
from ttc_cli.strategies import sampling_names
from ttc_cli.strategies.code import CodeTesting
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.sampling import probes_chains


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
            f"use {sampling_names('refine')} (a 'cmd:' verifier works)"
            if continues
            else f"pass --tokenizer with a GGUF of the server's model, or use {sampling_names('refine')}",
        )
    messages = p.prompt.messages(p.question)
    tokens = engine.chat_tokens(messages)
    code = p.code
    start = p.reply_start
    if not engine.continues_text and "{code}" in p.prompt.prefill:  # a server: the model writes it all
        start, code = "", replace(code, prefill="") if code is not None else None
    if start:
        tokens += engine.tokenize(start, special=True)  # the prompt file's text, e.g. <think>
    cap = p.ctx or p.max_context
    model_ctx = engine.n_ctx_train
    window = min(model_ctx, p.ctx or model_ctx)
    if len(tokens) + 1 > window:
        raise UsageError(
            f"the question is {len(tokens)} tokens with its prompt, more than the {window}-token context",
            "shorten the question" + (" or raise --ctx" if p.ctx and p.ctx < model_ctx else ""),
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
        vote=p.vote,
        scorer=p.scorer,
        early=p.early,
        routes=p.routes,
        greedy_confidence=p.greedy_confidence,
        thinking=p.thinking,
        search=p.search,
        verifier_engine=verifier_engine,
        messages=tuple(messages),
        stop=stop or threading.Event(),
        program_tokens=program_tokens,
        program_grammar=p.program_prompt.grammar if p.program_prompt is not None else "",
        program_share=p.program_share,
        program_limits=p.program_limits if p.program_prompt is not None else None,
        code=code,
        test_tokens=_test_prompt(engine, code) if code and code.writes_tests and p.samples > 1 else None,
        probing=p.probing,
        probe_cue=engine.tokenize(p.prompt.answer_cue) if p.probing and p.prompt.answer_cue else [],
    )
    need = p.strategy.needs(ctx)
    if need.cells > cap:
        what = (
            f"{p.samples} samples of up to {max_tokens} tokens"
            if p.samples > 1
            else "this question and budget"
        )
        knobs = "--budget, --max-tokens, --beams, --expansions or --rollouts" if p.strategy.is_search else ""
        raise UsageError(
            f"{what} need a KV cache of {need.cells} tokens, more than the {cap} available",
            f"lower {knobs or '-n, --max-tokens or --budget'}{', or raise --ctx' if p.ctx else ''}",
        )
    if need.sequences > MAX_SEQUENCES:
        raise UsageError(
            f"this run needs {need.sequences} sequences at once, more than llama.cpp's {MAX_SEQUENCES}",
            "lower -n, --width, --expansions or --rollouts",
        )
    widest = _measure_widest(p, ctx)
    if widest:  # the throughput measurement decodes in this context too: room for its widest batch
        need = KvNeeds(max(need.cells, throughput.cells(widest)), max(need.sequences, widest + 1))
    for e in (engine, verifier_engine):
        if e is not None:
            e.reserve(need.cells, need.sequences, cap)
    return ctx


def _wants_curve(p: Plan, ctx: RunContext) -> bool:
    """Whether the run's width policy reads the throughput curve: not a fixed width, code's waves, or a
    run without early stopping."""
    early, code = ctx.early, ctx.code
    measured = early is not None and early.width is None and (code is None or code.width is None)
    # With answer probes every sample decodes at once: no width to choose.
    return p.strategy.takes_samples and ctx.samples > 1 and measured and not probes_chains(ctx)


def _measure_widest(p: Plan, ctx: RunContext) -> int:
    """The widest batch the run's throughput measurement will decode, or 0 when it takes none."""
    key = ctx.engine.throughput_key() if _wants_curve(p, ctx) else None
    if key is None or throughput.cached(key, ctx.samples) is not None:
        return 0
    return min(ctx.samples, MAX_SEQUENCES - 1)


def _test_prompt(engine: Engine, code: CodeTesting) -> list[int]:
    """The test writers' prompt, and the start of their reply where the prompt gives one (and the engine
    can continue it)."""
    tokens = engine.chat_tokens(list(code.test_messages))
    if code.test_prefill and engine.continues_text:
        tokens += engine.tokenize(code.test_prefill, special=True)
    return tokens


def isolation_of(ctx: RunContext) -> str | None:
    """How the programs, code or checks this run executes are contained (None: it executes none)."""
    if ctx.code is not None:
        from ttc_cli.execution import harness

        code = ctx.code
        limits = harness.default_limits(code.per_case_s, max(1, len(code.examples)))
        return isolation(code.check.limits if code.check is not None else limits)
    return isolation(ctx.program_limits) if ctx.program_limits is not None else None


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
    written: list[GeneratedTests] = []
    probed: list[Probed] = []
    # The deadline counts from here: the model's load and the one-off speed measurement are not the
    # question's time (and a `compare` prepares every run before the first starts).
    ctx.budget.start()
    for event in p.strategy.run(ctx):
        if on_event is not None:
            on_event(event)
        if isinstance(event, WidthChosen):
            widths.append(event)
        if isinstance(event, GeneratedTests):
            written.append(event)
        if isinstance(event, Probed):
            probed.append(event)
        if isinstance(event, Final):
            final = event
    ctx.budget.end()
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
        code=ctx.code,
        tests_written=written,
        probes=probed,
        probing=ctx.probing if probes_chains(ctx) else None,
        probe_cue=len(ctx.probe_cue),
    )


def _throughput(p: Plan, ctx: RunContext, on_event: Callable[[Event], None] | None) -> float | None:
    """Give the run the engine's throughput curve when its width policy needs one, measuring it (once per
    host and model; seconds) if it is not cached; returns the seconds a measurement took."""
    if not _wants_curve(p, ctx):
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
