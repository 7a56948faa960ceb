"""The `ttc` command line: thin commands that parse options, call the runner, and print.

stdout carries only the result (the answer, or one JSON object with --json); progress and summaries go to
stderr, and only when it is a terminal. Heavy imports (llama.cpp, numpy, the engine) happen inside the
commands, so `ttc --help` stays fast. User mistakes are `UsageError`s: one line on stderr, exit code 2.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager, nullcontext
from dataclasses import replace
from typing import Annotated, Any

import typer

from ttc_cli import __version__

app = typer.Typer(
    name="ttc",
    help="Test-time compute for small local models: sample, vote and verify within a token budget.",
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ttc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Test-time compute for small local models: sample, vote and verify within a token budget."""


def _err(message: str) -> None:
    sys.stderr.write(f"ttc: error: {message}\n")


def _read_question(question: str | None) -> str:
    from ttc_cli.errors import UsageError

    if question is not None and question != "-":
        return question
    if question is None and sys.stdin.isatty():
        raise UsageError("no question given", 'pass it as an argument (ttc ask "...") or pipe it on stdin')
    try:
        return sys.stdin.read()
    except UnicodeDecodeError:
        raise UsageError("stdin is not UTF-8 text", "pipe the question as UTF-8 text") from None


@contextmanager
def _first_ctrl_c_stops(stop: Any) -> Iterator[None]:
    """The first Ctrl-C asks the run to stop and answer with what it has; a second one aborts."""

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def load_engine(
    model: str | None, gpu_layers: int | None, threads: int | None, verbose: bool
) -> tuple[Any, float]:
    """Resolve and load the model once; returns the engine and the seconds it took."""
    from ttc_cli.engine.model_file import resolve_model_path

    path = resolve_model_path(model)
    start = time.perf_counter()
    from ttc_cli.engine.llama import LlamaEngine

    # A minimal context: `runner.prepare` sizes it for the request (and never past --ctx).
    engine = LlamaEngine(
        path, gpu_layers=gpu_layers, threads=threads, verbose=verbose, n_ctx=256, n_seq_max=2
    )
    return engine, time.perf_counter() - start


def _load_verifier(path: str | None, gpu_layers: int | None, threads: int | None, verbose: bool) -> Any:
    """--verifier-model's engine (its tokens are charged to the same budget), or None."""
    if path is None:
        return None
    from ttc_cli.engine.model_file import resolve_model_path

    return load_engine(str(resolve_model_path(path)), gpu_layers, threads, verbose)[0]


# Options shared by `ask` and `compare`.
QuestionArg = Annotated[str | None, typer.Argument(help="The question; '-' or omitted reads stdin.")]
BudgetOpt = Annotated[
    str | None,
    typer.Option("--budget", "-b", help="Preset (low, medium, high, max) or a number of generated tokens."),
]
SamplesOpt = Annotated[int | None, typer.Option("--samples", "-n", help="Number of samples N.")]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", help="Cap on one candidate's tokens.")]
TemperatureOpt = Annotated[float | None, typer.Option("--temperature", "-t", help="Sampling temperature.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed; candidate i uses seed+i.")]
TaskOpt = Annotated[str, typer.Option("--task", help="Prompt to use: math, general, auto, or your own.")]
VoteOpt = Annotated[
    str, typer.Option("--vote", help="self-consistency vote: majority, weighted or filtered.")
]
ScorerOpt = Annotated[str, typer.Option("--scorer", help="best-of-n score: mean-logprob or confidence.")]
ProfileOpt = Annotated[str, typer.Option("--profile", help="Profile YAML with budget presets.")]
EarlyStopOpt = Annotated[
    bool | None,
    typer.Option(
        "--early-stop/--no-early-stop",
        help="Stop sampling once the answer is settled (default: on, from the profile).",
        show_default=False,
    ),
]
StopRuleOpt = Annotated[
    str | None, typer.Option("--stop-rule", help="Early-stop rule: beta, decided or deepconf.")
]
ConfidenceOpt = Annotated[
    float | None,
    typer.Option("--confidence", help="Probability the leading answer must reach to stop early (0.7)."),
]
ThinkBudgetOpt = Annotated[
    int | None, typer.Option("--think-budget", help="Most tokens a thinking model may think.")
]
MinThinkOpt = Annotated[
    int | None, typer.Option("--min-think", help="Fewest thinking tokens; an earlier stop gets 'Wait'.")
]
GpuLayersOpt = Annotated[
    int | None, typer.Option("--gpu-layers", "-ngl", help="Layers to offload (default: all if GPU build).")
]
CtxOpt = Annotated[int | None, typer.Option("--ctx", help="KV cache size (default: sized from the budget).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="CPU threads (default: all cores).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON with the full result on stdout.")]
NoLiveOpt = Annotated[bool, typer.Option("--no-live", help="No live view; only the closing summary.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Nothing on stderr but errors.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show llama.cpp's log on stderr.")]
# Tree search (beam, lookahead, mcts, refine); unset options take the profile's value for the budget preset.
VerifierOpt = Annotated[
    str | None, typer.Option("--verifier", help="Step scorer: judge, logprob or cmd:COMMAND (best-of-n too).")
]
VerifierModelOpt = Annotated[
    str | None, typer.Option("--verifier-model", help="GGUF model for the judge (default: the same model).")
]
AggregateOpt = Annotated[str | None, typer.Option("--aggregate", help="Path score: last, min, prod or mean.")]
PickOpt = Annotated[str | None, typer.Option("--pick", help="Search answer: score (best path) or vote.")]
ExplorationOpt = Annotated[float | None, typer.Option("--exploration", help="MCTS UCT exploration constant.")]
WidthOpt = Annotated[int | None, typer.Option("--width", help="Beams kept per step (W).")]
ExpansionsOpt = Annotated[int | None, typer.Option("--expansions", help="Next steps sampled per beam (M).")]
StepTokensOpt = Annotated[
    int | None, typer.Option("--step-tokens", help="Cap on one reasoning step's tokens.")
]
LookaheadOpt = Annotated[int | None, typer.Option("--lookahead", help="lookahead: greedy steps rolled out.")]
RolloutsOpt = Annotated[int | None, typer.Option("--rollouts", help="MCTS rollouts per new node (0: none).")]
RefineRoundsOpt = Annotated[int | None, typer.Option("--refine-rounds", help="refine: most revise rounds.")]


def _stderr_console(quiet: bool) -> Any:
    """A Rich console on stderr when a person is watching it; None in pipelines and with --quiet."""
    if quiet or not sys.stderr.isatty():
        return None
    from ttc_cli.ui.live import make_console

    return make_console()


def _new_state(p: Any, engine: Any) -> Any:
    from ttc_cli.ui.state import RunState

    return RunState(
        strategy=p.strategy.name,
        model=engine.model_name,
        device=engine.device,
        budget_limit=p.budget_limit,
        budget_preset=p.budget_preset,
    )


@app.command()
def ask(
    question: QuestionArg = None,
    strategy: Annotated[
        str, typer.Option("--strategy", "-s", help="How to spend the budget (see `ttc strategies`).")
    ] = "self-consistency",
    budget: BudgetOpt = None,
    samples: SamplesOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
    seed: SeedOpt = None,
    task: TaskOpt = "auto",
    vote: VoteOpt = "majority",
    scorer: ScorerOpt = "mean-logprob",
    early_stop: EarlyStopOpt = None,
    stop_rule: StopRuleOpt = None,
    confidence: ConfidenceOpt = None,
    think_budget: ThinkBudgetOpt = None,
    min_think: MinThinkOpt = None,
    profile: ProfileOpt = "default",
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", envvar="TTC_MODEL", help="GGUF model file.", show_envvar=True),
    ] = None,
    gpu_layers: GpuLayersOpt = None,
    ctx: CtxOpt = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
    full: Annotated[
        bool, typer.Option("--full", help="Print the chosen response, not just its answer.")
    ] = False,
    no_live: NoLiveOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    verifier: VerifierOpt = None,
    verifier_model: VerifierModelOpt = None,
    aggregate: AggregateOpt = None,
    pick: PickOpt = None,
    exploration: ExplorationOpt = None,
    width: WidthOpt = None,
    expansions: ExpansionsOpt = None,
    step_tokens: StepTokensOpt = None,
    lookahead: LookaheadOpt = None,
    rollouts: RolloutsOpt = None,
    refine_rounds: RefineRoundsOpt = None,
) -> None:
    """Answer one question with the chosen strategy and budget."""
    from ttc_cli.runner import AskOptions, execute, plan, prepare
    from ttc_cli.strategies.search_params import SearchOptions

    search = SearchOptions(
        verifier,
        verifier_model,
        aggregate,
        pick,
        exploration,
        width,
        expansions,
        step_tokens,
        lookahead,
        rollouts,
        refine_rounds,
    )

    opts = AskOptions(
        strategy=strategy,
        budget=budget,
        samples=samples,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        task=task,
        profile=profile,
        vote=vote,
        scorer=scorer,
        ctx=ctx,
        early_stop=early_stop,
        stop_rule=stop_rule,
        confidence=confidence,
        think_budget=think_budget,
        min_think=min_think,
        search=search,
    )
    the_plan = plan(_read_question(question), opts)
    with ExitStack() as engines:
        judge_engine = _load_verifier(verifier_model, gpu_layers, threads, verbose)
        if judge_engine is not None:
            engines.callback(judge_engine.close)
        engine, load_s = load_engine(model, gpu_layers, threads, verbose)
        engines.callback(engine.close)
        run_ctx = prepare(the_plan, engine, judge_engine)

        console = _stderr_console(quiet)
        with _first_ctrl_c_stops(run_ctx.stop):
            if console is not None and not no_live:
                from ttc_cli.ui.live import LiveView

                with LiveView(console, _new_state(the_plan, engine)) as view:
                    result = execute(the_plan, run_ctx, view, load_s=load_s)
            else:
                result = execute(the_plan, run_ctx, load_s=load_s)

    data = result.to_json()
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write((result.final.response if full else result.final.answer).rstrip() + "\n")
    sys.stdout.flush()
    if console is not None:
        from ttc_cli.ui.widgets import summary

        console.print(summary(data))
    if result.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


@app.command()
def compare(
    question: QuestionArg = None,
    strategies: Annotated[
        list[str] | None,
        typer.Option("--strategy", "-s", help="A strategy to run; repeat for several (default: all)."),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="GGUF model; repeat for several (default: $TTC_MODEL, else built-in)."
        ),
    ] = None,
    budget: BudgetOpt = None,
    samples: SamplesOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
    seed: SeedOpt = None,
    task: TaskOpt = "auto",
    vote: VoteOpt = "majority",
    scorer: ScorerOpt = "mean-logprob",
    early_stop: EarlyStopOpt = None,
    stop_rule: StopRuleOpt = None,
    confidence: ConfidenceOpt = None,
    think_budget: ThinkBudgetOpt = None,
    min_think: MinThinkOpt = None,
    profile: ProfileOpt = "default",
    gpu_layers: GpuLayersOpt = None,
    ctx: CtxOpt = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
    no_live: NoLiveOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    verifier: VerifierOpt = None,
    verifier_model: VerifierModelOpt = None,
    aggregate: AggregateOpt = None,
    pick: PickOpt = None,
    exploration: ExplorationOpt = None,
    width: WidthOpt = None,
    expansions: ExpansionsOpt = None,
    step_tokens: StepTokensOpt = None,
    lookahead: LookaheadOpt = None,
    rollouts: RolloutsOpt = None,
    refine_rounds: RefineRoundsOpt = None,
) -> None:
    """Run several strategies (and/or models) on the same question and budget, side by side."""
    import secrets

    from ttc_cli.engine.model_file import resolve_model_path
    from ttc_cli.runner import AskOptions, execute, plan, prepare
    from ttc_cli.strategies import STRATEGIES
    from ttc_cli.strategies.search_params import SearchOptions

    search = SearchOptions(
        verifier,
        verifier_model,
        aggregate,
        pick,
        exploration,
        width,
        expansions,
        step_tokens,
        lookahead,
        rollouts,
        refine_rounds,
    )

    text = _read_question(question)
    seed = seed if seed is not None else secrets.randbelow(2**31)  # one seed, so runs differ only by strategy
    base = AskOptions(
        budget=budget,
        samples=samples,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
        task=task,
        profile=profile,
        vote=vote,
        scorer=scorer,
        ctx=ctx,
        early_stop=early_stop,
        stop_rule=stop_rule,
        confidence=confidence,
        think_budget=think_budget,
        min_think=min_think,
        search=search,
    )
    plans = [plan(text, replace(base, strategy=s)) for s in dict.fromkeys(strategies or STRATEGIES)]
    wanted: list[str | None] = list(models) if models else [None]
    paths = [resolve_model_path(m) for m in wanted]  # every path is checked before any model loads
    console = _stderr_console(quiet)
    results = []
    with ExitStack() as engines:
        judge_engine = _load_verifier(verifier_model, gpu_layers, threads, verbose)
        if judge_engine is not None:
            engines.callback(judge_engine.close)
        for path in paths:
            engine, load_s = load_engine(str(path), gpu_layers, threads, verbose)
            with closing(engine):  # one model in memory at a time
                contexts = [prepare(p, engine, judge_engine) for p in plans]
                view = None
                if console is not None and not no_live:
                    from ttc_cli.ui.live import CompareView

                    view = CompareView(console, [_new_state(p, engine) for p in plans])
                with view or nullcontext():
                    for i, (p, run_ctx) in enumerate(zip(plans, contexts, strict=True)):
                        if view is not None:
                            view.select(i)
                        with _first_ctrl_c_stops(run_ctx.stop):
                            results.append(execute(p, run_ctx, view, load_s=load_s if i == 0 else 0.0))
                        if results[-1].interrupted:
                            break
            if results[-1].interrupted:
                break

    data = [r.to_json() for r in results]
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        _print_compare_table(data)
    sys.stdout.flush()
    if any(r.interrupted for r in results):
        raise typer.Exit(EXIT_INTERRUPTED)


def _print_compare_table(data: list[dict[str, Any]]) -> None:
    """The comparison is the result, so it goes to stdout (plain text when stdout is not a terminal)."""
    from rich.console import Console

    from ttc_cli.ui.widgets import compare_table

    width = None if sys.stdout.isatty() else 160
    Console(file=sys.stdout, width=width, soft_wrap=False).print(compare_table(data))


@app.command("strategies")
def list_strategies() -> None:
    """List the strategies with a one-line description."""
    from ttc_cli.strategies import STRATEGIES

    width = max(len(name) for name in STRATEGIES)
    for s in STRATEGIES.values():
        typer.echo(f"{s.name:<{width}}  {s.description}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn every user-fixable failure into one line and exit code 2."""
    from ttc_cli.errors import UsageError

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = app(args=args or ["--help"], prog_name="ttc", standalone_mode=False)
    except UsageError as e:
        _err(str(e))
        code = EXIT_USAGE
    except typer.Abort:
        code = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        sys.stderr.write("ttc: interrupted\n")
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`ttc ask ... | head -c1`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    except Exception as e:
        code = _one_line_error(e)
    sys.exit(code if isinstance(code, int) else 0)


def _one_line_error(e: Exception) -> int:
    """Option-parsing errors (typer's click exceptions) and engine failures as one line; bugs re-raise."""
    from ttc_cli.engine.base import EngineError

    if isinstance(e, EngineError):
        _err(str(e))
        return 1
    format_message = getattr(e, "format_message", None)
    if format_message is None:
        raise e
    ctx = getattr(e, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    _err(f"{format_message()}{hint}")
    return int(getattr(e, "exit_code", EXIT_USAGE))
