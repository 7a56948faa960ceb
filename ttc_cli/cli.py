"""The `ttc` command line: thin commands that parse options, call the runner, and print.

stdout carries only the result (the answer, or one JSON object with --json); progress and summaries go to
stderr, and only when it is a terminal. Heavy imports (llama.cpp, numpy, the engine) happen inside the
commands, so `ttc --help` stays fast. User mistakes are `UsageError`s: one line on stderr, exit code 2.

This module is longer than most here because it is the one boundary between the shell and
ttc: every command's parameters, what each prints where, and the one place failures become exit codes.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack, closing, nullcontext
from dataclasses import asdict, replace
from functools import partial
from typing import Annotated, Any

import typer

from ttc_cli import __version__, runlog
from ttc_cli.cli_bench import bench
from ttc_cli.cli_models import complete_model, models_app
from ttc_cli.cli_runs import replay, runs, show
from ttc_cli.interrupts import Interrupts
from ttc_cli.loading import load_engine
from ttc_cli.options import (
    STRATEGY_NAMES,
    Command,
    EngineOptions,
    Group,
    OutputOptions,
    PlanOptions,
    choice,
    with_options,
)

app = typer.Typer(
    name="ttc",
    help="Test-time compute for small local models: sample, vote and verify within a token budget.",
    pretty_exceptions_enable=False,  # a bug's traceback stays plain; user mistakes are one line (main)
    cls=Group,
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


def _emit(result: str) -> None:
    """The result, one line on stdout. A reader that went away (`ttc ask ... | head -c1`) took what it
    wanted: that is the pipeline working, so ttc ends quietly (exit 0) instead of reporting EPIPE."""
    try:
        sys.stdout.write(result + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor at exit's final flush


def _read_question(question: str | None) -> str:
    """The question: the argument, or stdin ('-' or none). Both at once (`cat report.txt | ttc ask
    "summarise the risks"`) are joined as llm joins them: the piped text, a blank line, then the argument,
    so the instruction comes after the material it is about. A terminal on stdin is never read."""
    from ttc_cli.errors import UsageError

    if question is None and sys.stdin.isatty():
        raise UsageError("no question given", 'pass it as an argument (ttc ask "...") or pipe it on stdin')
    if question == "-" or question is None:
        return _read_stdin()
    text = _read_stdin() if _piped() else ""
    return f"{text.rstrip()}\n\n{question}" if text.strip() else question


def _piped() -> bool:
    """Whether stdin is a pipe or a file: then text is there to join to the argument. Anything else (a
    terminal, /dev/null, a socket or an inherited descriptor nobody writes to) is left unread, so a
    question given as an argument never waits on stdin."""
    import os
    import stat

    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):  # closed, or not a real descriptor (an embedding host)
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


def _read_stdin() -> str:
    from ttc_cli.errors import UsageError

    try:
        return sys.stdin.read()
    except UnicodeDecodeError:
        raise UsageError("stdin is not UTF-8 text", "pipe the question as UTF-8 text") from None


def _logged_options(opts: PlanOptions, engine_opts: EngineOptions) -> dict[str, Any]:
    """The options a run log entry keeps (the API key's variable name, never its value)."""
    return {"plan": asdict(opts), "engine": asdict(engine_opts)}


def _load_verifier(path: str | None, opts: EngineOptions, stop: Any = None) -> Any:
    """--verifier-model's engine (its tokens are charged to the same budget), or None."""
    if path is not None and opts.backend == "openai" and opts.tokenizer:
        from ttc_cli.errors import UsageError

        raise UsageError(
            "--tokenizer is the policy model's, so a second model on the server cannot judge with it",
            "leave out --verifier-model (the policy model judges)",
        )
    return load_engine(path, opts, stop)[0] if path is not None else None


def _loaded(stack: ExitStack, engine: Any) -> Any:
    """`engine`, closed when `stack` unwinds however the run ends (an error, Ctrl-C)."""
    if engine is not None:
        stack.callback(engine.close)
    return engine


QuestionArg = Annotated[
    str | None,
    typer.Argument(
        help="The question; '-' or omitted reads stdin. With text piped in too, the question is that text, "
        "a blank line, then this argument.",
        show_default=False,
    ),
]
MODEL_HELP = (
    "A .gguf path, or a name from `ttc models`: an alias, ollama's qwen2.5:7b, Hugging Face's "
    "ORG/REPO:QUANT, LM Studio's. Default: $TTC_MODEL, else `ttc models default`, else the built-in "
    "SmolLM2-135M."
)
ENGINE, OUTPUT, STRATEGY = "Model and engine", "Output", "Budget and strategy"  # options.PANELS' names


@app.command(cls=Command)
@with_options
def ask(
    question: QuestionArg = None,
    strategy: Annotated[
        str,
        choice(
            "--strategy",
            "-s",
            noun="strategy",
            names=STRATEGY_NAMES,
            panel=STRATEGY,
            help="How to spend the budget (see `ttc strategies`).",
        ),
    ] = "self-consistency",
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help=MODEL_HELP, rich_help_panel=ENGINE, autocompletion=complete_model),
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="Print the chosen response, not just its answer.", rich_help_panel=OUTPUT
        ),
    ] = False,
    *,
    opts: PlanOptions,
    engine_opts: EngineOptions,
    out: OutputOptions,
) -> None:
    """Answer one question with the chosen strategy and budget.

    A default shown as (profile) is the --profile's value (built in: profiles/default.yaml)."""
    from ttc_cli.pipeline import LogEntry, run
    from ttc_cli.plan import build
    from ttc_cli.runner import isolation_of, prepare
    from ttc_cli.ui.terminal import budget_warnings, isolation_note, listener, new_state, stderr_console

    the_plan = build(_read_question(question), strategy, opts)
    if model is None and engine_opts.backend == "openai":  # the server's name for its model, as -m gives it
        model = os.environ.get("TTC_MODEL") or None
    with Interrupts() as interrupts, ExitStack() as stack:
        judge = _loaded(stack, _load_verifier(opts.verifier_model, engine_opts, interrupts.stop))
        engine, load_s = load_engine(model, engine_opts, interrupts.stop)
        _loaded(stack, engine)
        run_ctx = prepare(the_plan, engine, judge, interrupts.stop)
        interrupts.check()
        budget_warnings([the_plan], out.quiet)  # a run that cannot start is not warned of
        isolation_note(isolation_of(run_ctx), out.quiet, engine_opts.verbose)
        console = stderr_console(out.quiet)
        view = None
        if console is not None and not out.no_live:
            from ttc_cli.ui.live import LiveView

            view = LiveView(console, new_state(the_plan, engine))
        log = LogEntry("ask", _logged_options(opts, engine_opts)) if runlog.enabled(out.no_log) else None
        with view or nullcontext():
            hear = partial(listener, view, engine_opts.verbose)
            result, data = run(the_plan, run_ctx, log, hear, load_s=load_s)

    answer = result.final.response if full else result.final.answer
    _emit(json.dumps(data, ensure_ascii=False) if out.as_json else answer.rstrip())
    if console is not None:
        from ttc_cli.ui.summary import summary

        console.print(summary(data))
    if result.interrupted:
        raise typer.Exit(interrupts.exit_code)


@app.command(cls=Command)
@with_options
def compare(
    question: QuestionArg = None,
    strategies: Annotated[
        list[str] | None,
        choice(
            "--strategy",
            "-s",
            noun="strategy",
            names=STRATEGY_NAMES,
            panel=STRATEGY,
            help="A strategy to run; repeat for several (default: all).",
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help=MODEL_HELP + " Repeat for several.",
            rich_help_panel=ENGINE,
            autocompletion=complete_model,
        ),
    ] = None,
    *,
    opts: PlanOptions,
    engine_opts: EngineOptions,
    out: OutputOptions,
) -> None:
    """Run several strategies (and/or models) on the same question and budget, side by side."""
    import secrets

    from ttc_cli.models.files import resolve_model_path
    from ttc_cli.pipeline import LogEntry, run
    from ttc_cli.plan import build_each
    from ttc_cli.runner import isolation_of, prepare
    from ttc_cli.ui.terminal import budget_warnings, isolation_note, listener, new_state, stderr_console

    text = _read_question(question)
    if opts.seed is None:  # one seed for every run, so sampling strategies differ only in how they choose
        opts = replace(opts, seed=secrets.randbelow(2**31))
    all_plans, left_out = build_each(text, strategies, opts)
    said: set[str] = set()
    sys.stderr.writelines(f"ttc: {note}\n" for note in left_out)
    wanted: list[str | None] = list(models) if models else [None]
    remote = engine_opts.backend == "openai"
    # Every path is checked before any model loads (a server's names are checked as each one loads).
    paths = [m if remote else resolve_model_path(m) for m in wanted]

    console = stderr_console(out.quiet)
    log = LogEntry("compare", _logged_options(opts, engine_opts)) if runlog.enabled(out.no_log) else None
    data: list[dict[str, Any]] = []
    with Interrupts() as interrupts, ExitStack() as stack:
        judge = _loaded(stack, _load_verifier(opts.verifier_model, engine_opts, interrupts.stop))
        for path in paths:
            if interrupts.stop.is_set():  # between runs: the runs so far are the result
                break
            engine, load_s = load_engine(None if path is None else str(path), engine_opts, interrupts.stop)
            with closing(engine):  # one model in memory at a time
                plans = all_plans if strategies else _runnable(all_plans, engine, judge, said)
                contexts = [prepare(p, engine, judge, interrupts.stop) for p in plans]
                budget_warnings(plans, out.quiet, said)
                how = next(filter(None, map(isolation_of, contexts)), None)
                isolation_note(how, out.quiet, engine_opts.verbose)
                view = None
                if console is not None and not out.no_live:
                    from ttc_cli.ui.live import CompareView

                    view = CompareView(console, [new_state(p, engine) for p in plans])
                with view or nullcontext():
                    for i, (p, run_ctx) in enumerate(zip(plans, contexts, strict=True)):
                        if interrupts.stop.is_set():
                            break
                        if view is not None:
                            view.select(i)
                        hear = partial(listener, view, engine_opts.verbose)
                        data.append(run(p, run_ctx, log, hear, load_s=load_s if i == 0 else 0.0)[1])
        if not data:
            interrupts.check()  # stopped before the first run: there is nothing to show

    if out.as_json:
        _emit(json.dumps(data, ensure_ascii=False))
    else:
        from ttc_cli.ui.terminal import compare_text

        _emit(compare_text(data))
    if interrupts.stop.is_set():
        raise typer.Exit(interrupts.exit_code)


def _runnable(plans: list[Any], engine: Any, judge: Any, said: set[str]) -> list[Any]:
    """Of every strategy (compare without -s), those this engine can run; what it cannot, said once."""
    from ttc_cli.runner import refusal_on

    out = []
    for p in plans:
        why = refusal_on(p, engine, judge)
        if why is None:
            out.append(p)
        elif (note := f"ttc: leaving out {p.strategy.name}: {why}\n") not in said:
            said.add(note)
            sys.stderr.write(note)
    return out


@app.command(cls=Command)
def doctor(
    measure: Annotated[
        bool, typer.Option("--measure", help="Measure the model's decoding speed per width now.")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="The model to measure (default: the default model).",
            autocompletion=complete_model,
        ),
    ] = None,
    widest: Annotated[int, typer.Option("--widest", help="Measure up to this many samples at once.")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """What ttc runs on: versions, CPU, GPUs, llama.cpp build, the default model, the sandbox, and each
    model's measured tokens/s per width."""
    from ttc_cli.doctor import measure_now, report, text

    measured = {}
    if measure:
        with Interrupts() as interrupts:
            stop = interrupts.stop
            measured = measure_now(lambda: load_engine(model, EngineOptions(), stop)[0], widest, stop)
            if interrupts.stop.is_set():
                raise typer.Exit(interrupts.exit_code)
    data = report(measured)
    _emit(json.dumps(data, indent=2) if as_json else text(data))


@app.command(
    "serve",
    cls=Command,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
)
def serve(ctx: typer.Context) -> None:
    """Serve a model over an OpenAI-compatible API (llama-cpp-python's server, with ttc's AMX guard).

    `ttc serve --model qwen2.5:7b --port 8080`: --model takes what -m takes; `ttc serve --help` lists the
    server's own options."""
    from ttc_cli import serve as launcher

    launcher.main(ctx.args, prog="ttc serve")


app.add_typer(models_app, name="models")
app.command("bench", cls=Command)(bench)
app.command("runs", cls=Command)(runs)
app.command("show", cls=Command)(show)
app.command("replay", cls=Command)(replay)


@app.command("strategies", cls=Command)
def list_strategies() -> None:
    """List the strategies with a one-line description."""
    from ttc_cli.strategies import STRATEGIES

    width = max(len(name) for name in STRATEGIES)
    for s in STRATEGIES.values():
        typer.echo(f"{s.name:<{width}}  {s.description}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn every user-fixable failure into one line and exit code 2."""
    from ttc_cli.errors import Aborted, Interrupted, UsageError

    args = sys.argv[1:] if argv is None else list(argv)
    try:
        code = app(args=args or ["--help"], prog_name="ttc", standalone_mode=False)
    except UsageError as e:
        _err(str(e))
        code = EXIT_USAGE
    except Interrupted as e:  # before a run started: nothing to print
        sys.stderr.write("ttc: interrupted\n")
        code = e.exit_code
    except Aborted as e:  # a second Ctrl-C
        sys.stderr.write("ttc: interrupted\n")
        code = e.exit_code
    except (KeyboardInterrupt, typer.Abort):  # Ctrl-C before the handler was installed, or at a prompt
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
    from ttc_cli.errors import EngineError

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
