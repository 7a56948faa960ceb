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
from contextlib import contextmanager
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
    if question is None or question == "-":
        if question is None and sys.stdin.isatty():
            from ttc_cli.errors import UsageError

            raise UsageError(
                "no question given", 'pass it as an argument (ttc ask "...") or pipe it on stdin'
            )
        return sys.stdin.read()
    return question


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

    engine = LlamaEngine(path, gpu_layers=gpu_layers, threads=threads, verbose=verbose)
    return engine, time.perf_counter() - start


StrategyOpt = Annotated[
    str, typer.Option("--strategy", "-s", help="How to spend the budget (see `ttc strategies`).")
]
BudgetOpt = Annotated[
    str | None,
    typer.Option("--budget", "-b", help="Preset (low, medium, high, max) or a number of generated tokens."),
]


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question; '-' or omitted reads stdin.")] = None,
    strategy: StrategyOpt = "self-consistency",
    budget: BudgetOpt = None,
    samples: Annotated[int | None, typer.Option("--samples", "-n", help="Number of samples N.")] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Cap on one candidate's tokens.")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", "-t", help="Sampling temperature.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed; candidate i uses seed+i.")] = None,
    task: Annotated[
        str, typer.Option("--task", help="Prompt to use: math, general, auto, or your own.")
    ] = "auto",
    vote: Annotated[
        str, typer.Option("--vote", help="self-consistency vote: majority or weighted.")
    ] = "majority",
    scorer: Annotated[
        str, typer.Option("--scorer", help="best-of-n score: mean-logprob or confidence.")
    ] = "mean-logprob",
    profile: Annotated[str, typer.Option("--profile", help="Profile YAML with budget presets.")] = "default",
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", envvar="TTC_MODEL", help="GGUF model file.", show_envvar=True),
    ] = None,
    gpu_layers: Annotated[
        int | None,
        typer.Option("--gpu-layers", "-ngl", help="Layers to offload (default: all if GPU build)."),
    ] = None,
    ctx: Annotated[
        int | None, typer.Option("--ctx", help="KV cache size (default: sized from the budget).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="CPU threads (default: all cores).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with the full result.")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Print the chosen response, not just its answer.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Nothing on stderr but errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show llama.cpp's log on stderr.")] = False,
) -> None:
    """Answer one question with the chosen strategy and budget."""
    from ttc_cli.runner import AskOptions, execute, plan, prepare

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
    )
    the_plan = plan(_read_question(question), opts)
    engine, load_s = load_engine(model, gpu_layers, threads, verbose)
    run_ctx = prepare(the_plan, engine)

    show = not quiet and sys.stderr.isatty()
    console = None
    if show:
        from rich.console import Console

        console = Console(stderr=True)
    with _first_ctrl_c_stops(run_ctx.stop):
        if console is not None:
            from ttc_cli.ui.status import StatusLine

            with StatusLine(console, the_plan.strategy.name, run_ctx.budget.limit) as status:
                result = execute(the_plan, run_ctx, status, load_s=load_s)
        else:
            result = execute(the_plan, run_ctx, load_s=load_s)

    data = result.to_json()
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write((result.final.response if full else result.final.answer).rstrip() + "\n")
    sys.stdout.flush()
    if console is not None:
        from ttc_cli.ui.status import summary_line

        console.print(summary_line(data))
    if result.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


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
