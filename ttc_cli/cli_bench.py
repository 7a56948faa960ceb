"""`ttc bench FILE`: score strategies, budgets and models on the user's own questions (bench/ does the
work, ui/bench_progress.py shows it; this module is the command: its options, the order of the runs, and
what goes to stdout and files)."""

from __future__ import annotations

import json
import sys
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ttc_cli import runlog
from ttc_cli.bench.metrics import Summary
from ttc_cli.bench.run import Config, run_model
from ttc_cli.cli_models import complete_model
from ttc_cli.errors import UsageError
from ttc_cli.interrupts import Interrupts
from ttc_cli.loading import load_engine
from ttc_cli.options import STRATEGY_NAMES, EngineOptions, OutputOptions, PlanOptions, choice, with_options
from ttc_cli.ui.bench_progress import BenchProgress


def _many(*names: str, help: str, **kw: Any) -> Any:  # noqa: A002 - Typer's own keyword
    return typer.Option(*names, help=help, show_default=False, **kw)


PANEL = "Budget and strategy"  # --help shows -s and -b where `ask` shows them


@with_options(exclude=("budget",))
def bench(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSONL (.gz too) or CSV with question and answer (and id, check); or HumanEval's format "
            "(task_id, prompt, test, entry_point), scored by running its tests."
        ),
    ],
    strategies: Annotated[
        list[str] | None,
        choice(
            "--strategy", "-s", noun="strategy", names=STRATEGY_NAMES, panel=PANEL, help="Repeat for several."
        ),
    ] = None,
    budgets: Annotated[
        list[str] | None, _many("--budget", "-b", help="Repeat for several.", rich_help_panel=PANEL)
    ] = None,
    models: Annotated[
        list[str] | None,
        _many(
            "--model",
            "-m",
            help="Repeat for several.",
            rich_help_panel="Model and engine",
            autocompletion=complete_model,
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first K questions.")] = None,
    only: Annotated[
        str | None, typer.Option("--only", help="Only the questions at even or odd positions (0-based).")
    ] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write the table as CSV here.")] = None,
    plot_file: Annotated[
        Path | None, typer.Option("--plot", help="Draw accuracy/tokens as PNG or SVG.")
    ] = None,
    fit_name: Annotated[
        str | None, typer.Option("--fit", help="Fit auto's routes; write the profile NAME in the app dir.")
    ] = None,
    fit_cap: Annotated[
        int | None, typer.Option("--fit-cap", min=1, help="--fit: most tokens per question a route may cost.")
    ] = None,
    *,
    options: PlanOptions,
    engine_opts: EngineOptions,
    out: OutputOptions,
) -> None:
    """Score strategies and budgets (and models) on your own questions: accuracy, tokens, pass@N.

    Every option of `ttc ask` applies to every run (question i runs with --seed + i, 0 by default)."""
    from ttc_cli.bench.data import load

    if only not in (None, "even", "odd"):
        raise UsageError(f"--only {only}: not even or odd", "e.g. --only even")
    items, _ = load(file, limit, only)
    if plot_file is not None and plot_file.suffix.lower() not in (".png", ".svg"):
        raise UsageError(f"--plot {plot_file}: not a .png or .svg file", "e.g. --plot accuracy.png")
    configs = [
        Config(m, s, b)
        for m in (list(models) if models else [None])
        for s in (strategies or ["self-consistency"])
        for b in (budgets or ["medium"])
    ]
    seed = options.seed or 0
    options = replace(options, seed=seed)
    _check_plans(items[0].question, configs, options, out.quiet)
    if engine_opts.backend != "openai":  # every model file is found before the first one loads
        from ttc_cli.models.files import resolve_model_path

        for m in dict.fromkeys(c.model for c in configs):
            resolve_model_path(m)
    log = runlog.enabled(out.no_log)
    if not log:
        sys.stderr.write("ttc: the run log is off, so this bench cannot be resumed if it is stopped\n")
    state = BenchProgress(configs, len(items), quiet=out.quiet or out.no_live)  # --no-live: no progress bar
    loaded: list[str] = []
    with Interrupts() as interrupts, state:
        for model in dict.fromkeys(c.model for c in configs):
            if interrupts.stop.is_set():
                break
            engine, _ = load_engine(model, engine_opts, interrupts.stop)
            with closing(engine):
                own = [c for c in configs if c.model == model]
                # What the runs are of: the model's file, or the server and its name for the model.
                served = f"{engine.backend_json().get('url')} {engine.model_name}"
                model_id = str(getattr(engine, "path", "")) or served
                loaded.append(engine.model_name)  # what the plot's title names
                for outcome in run_model(items, own, options, engine, model_id, interrupts.stop, log):
                    state.add(outcome)
    results = state.summaries()
    data: dict[str, Any] = {
        "file": str(file),
        "questions": len(items),
        "configs": [r.to_json() for r in results],
    }
    if fit_name is not None:
        from ttc_cli.bench.fit import fit_outcomes

        data["fit"] = fit_outcomes(fit_name, state.outcomes, fit_cap, seed, str(file))
    data["runs"] = [
        {"id": o.item.id, "config": o.config.label(True), "answer": o.result.get("answer"),
         "gold": o.item.answer, "right": o.right, "confidence": o.result.get("confidence"),
         "tokens": o.result["budget"]["spent"], "resumed": o.resumed}
        for o in state.outcomes
    ]  # fmt: skip
    _write_outputs(data, results, csv_file, plot_file, out, loaded)
    if interrupts.stop.is_set():
        sys.stderr.write("ttc: stopped; the same command resumes after the runs that finished\n")
        raise typer.Exit(interrupts.exit_code)


def _check_plans(question: str, configs: list[Config], options: PlanOptions, quiet: bool = False) -> None:
    """Every configuration's options are valid before any model loads (a typo in -s fails at once), and a
    budget that cannot pay for every sample asked for is said once."""
    from dataclasses import replace

    from ttc_cli.plan import build
    from ttc_cli.ui.terminal import budget_warnings

    plans = [build(question, c.strategy, replace(options, budget=c.budget)) for c in configs]
    budget_warnings(plans, quiet)


def _write_outputs(
    data: dict[str, Any],
    results: list[Summary],
    csv_file: Path | None,
    plot_file: Path | None,
    out: OutputOptions,
    models: list[str],
) -> None:
    from ttc_cli.ui.bench_view import plot_file as draw_file
    from ttc_cli.ui.bench_view import plot_text, table_text, write_csv

    if csv_file is not None:
        write_csv(csv_file, results)
    if plot_file is not None:
        draw_file(plot_file, results, data["file"], models)
    if out.as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(table_text(results, data.get("fit")) + "\n")
    if not out.quiet and sys.stderr.isatty() and results:
        sys.stderr.write(plot_text(results) + "\n")
