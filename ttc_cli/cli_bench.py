"""`ttc bench FILE`: score strategies, budgets and models on the user's own questions (bench/ does the
work; this module is the command: its options, the progress bar, and what goes to stdout and files)."""

from __future__ import annotations

import json
import sys
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from ttc_cli import runlog
from ttc_cli.bench.metrics import Summary, summarise
from ttc_cli.bench.run import Config, Outcome, run_model
from ttc_cli.engines import load_engine
from ttc_cli.errors import UsageError
from ttc_cli.interrupts import Interrupts
from ttc_cli.options import EngineOptions, OutputOptions, PlanOptions, with_options


def _many(*names: str, help: str) -> Any:  # noqa: A002 - Typer's own keyword
    return typer.Option(*names, help=help, show_default=False)


@with_options(exclude=("budget",))
def bench(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSONL (.gz too) or CSV with question and answer (and id, check); or HumanEval's format "
            "(task_id, prompt, test, entry_point), scored by running its tests."
        ),
    ],
    strategies: Annotated[list[str] | None, _many("--strategy", "-s", help="Repeat for several.")] = None,
    budgets: Annotated[list[str] | None, _many("--budget", "-b", help="Repeat for several.")] = None,
    models: Annotated[list[str] | None, _many("--model", "-m", help="Repeat for several.")] = None,
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
    _check_plans(items[0].question, configs, options)
    if engine_opts.backend != "openai":  # every model file is found before the first one loads
        from ttc_cli.engine.model_file import resolve_model_path

        for m in dict.fromkeys(c.model for c in configs):
            resolve_model_path(m)
    log = runlog.enabled(out.no_log)
    if not log:
        sys.stderr.write("ttc: the run log is off, so this bench cannot be resumed if it is stopped\n")
    state = _Progress(configs, len(items), quiet=out.quiet or out.no_live)  # --no-live: no progress bar
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
                for outcome in run_model(items, own, options, engine, model_id, interrupts.stop, log):
                    state.add(outcome)
    results = state.summaries()
    data: dict[str, Any] = {
        "file": str(file),
        "questions": len(items),
        "configs": [r.to_json() for r in results],
    }
    if fit_name is not None:
        data["fit"] = _fit(fit_name, state.outcomes, fit_cap, seed, str(file))
    data["runs"] = [
        {"id": o.item.id, "config": o.config.label(True), "answer": o.result.get("answer"),
         "gold": o.item.answer, "right": o.right, "confidence": o.result.get("confidence"),
         "tokens": o.result["budget"]["spent"], "resumed": o.resumed}
        for o in state.outcomes
    ]  # fmt: skip
    _write_outputs(data, results, csv_file, plot_file, out)
    if interrupts.stop.is_set():
        sys.stderr.write("ttc: stopped; the same command resumes after the runs that finished\n")
        raise typer.Exit(interrupts.exit_code)


def _check_plans(question: str, configs: list[Config], options: PlanOptions) -> None:
    """Every configuration's options are valid before any model loads (a typo in -s fails at once)."""
    from dataclasses import replace

    from ttc_cli.plan import build

    for c in configs:
        build(question, c.strategy, replace(options, budget=c.budget))


@dataclass
class _Progress:
    """The progress bar on stderr (ETA, and each configuration's running accuracy), and the outcomes."""

    configs: list[Config]
    total: int
    quiet: bool
    outcomes: list[Outcome] = field(default_factory=list)
    _bar: Any = None
    _tasks: dict[Config, Any] = field(default_factory=dict)

    @property
    def several(self) -> bool:
        """Whether the bench compares models (labels then name them)."""
        return len({c.model for c in self.configs}) > 1

    def __enter__(self) -> _Progress:
        from ttc_cli.ui.terminal import stderr_console

        console = stderr_console(self.quiet)
        if console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=console, transient=False,
            )  # fmt: skip
            for c in self.configs:
                self._tasks[c] = self._bar.add_task(c.label(self.several), total=self.total)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if self._bar is not None:
            mine = [o for o in self.outcomes if o.config == outcome.config]
            right = sum(o.right for o in mine)
            label = f"{outcome.config.label(self.several)}  {right}/{len(mine)} right"
            self._bar.update(self._tasks[outcome.config], advance=1, description=label)

    def summaries(self) -> list[Summary]:
        out = []
        for c in self.configs:
            mine = [(o.result, o.right, o.item.answer) for o in self.outcomes if o.config == c]
            if mine:
                s = summarise((c.model or "default" if self.several else "", c.strategy, c.budget), mine)
                out.append(s)
        return out


def _fit(name: str, outcomes: list[Outcome], cap: int | None, seed: int, source: str) -> dict[str, Any]:
    from ttc_cli.bench.fit import calibrate_greedy, fit, recorded
    from ttc_cli.bench.profile_file import write_profile

    configs = list(dict.fromkeys(o.config for o in outcomes))
    sampled = [c for c in configs if c.strategy == "self-consistency"]
    greedy = [c for c in configs if c.strategy == "greedy"]
    if not sampled and not greedy:
        raise UsageError(
            "--fit replays self-consistency's samples (auto's routes) and calibrates greedy's confidence",
            "add -s self-consistency (with --no-early-stop), -s greedy, or both",
        )
    if (count := len({o.item.id for o in outcomes})) < 4:
        raise UsageError(f"--fit needs at least 4 questions, this bench has {count}", "raise --limit")
    result: dict[str, Any] = {}
    model = greedy[0].model if greedy else None
    if sampled:
        source_config = max(
            sampled, key=lambda c: sum(len(o.result["candidates"]) for o in outcomes if o.config == c)
        )
        mine = [o for o in outcomes if o.config == source_config]
        fixed: dict[str, dict[str, tuple[bool, int]]] = {}
        for o in outcomes:
            fixed.setdefault(o.config.label(True), {})[o.item.id] = (o.right, o.result["budget"]["spent"])
        result = fit(recorded([(o.item.id, o.item.answer, o.result) for o in mine]), cap, seed, fixed)
        result["source"] = source_config.label(True)
        model = source_config.model if any(c.model == source_config.model for c in greedy) else model
    if greedy:
        mine = [o for o in outcomes if o.config in greedy and o.config.model == model]
        chosen = [_greedy_run(o) for o in mine if o.result.get("chosen") is not None]
        calibrated = calibrate_greedy(chosen, seed)
        result["greedy_confidence"] = {"model": model or "default", **calibrated} if calibrated else None
    if "routes" not in result and not result.get("greedy_confidence"):
        raise UsageError("greedy stated under 2 answers in --fit's half of the questions", "raise --limit")
    result["profile"] = str(write_profile(name, result, source))
    return result


def _greedy_run(o: Outcome) -> tuple[str, bool, float, bool]:
    """(question id, right?, mean log-prob, stated an answer?) of a greedy run, for its calibration."""
    chosen = next(c for c in o.result["candidates"] if c["index"] == o.result["chosen"])
    return o.item.id, o.right, float(chosen["mean_logprob"]), chosen["answer"] is not None


def _write_outputs(
    data: dict[str, Any],
    results: list[Summary],
    csv_file: Path | None,
    plot_file: Path | None,
    out: OutputOptions,
) -> None:
    from ttc_cli.ui.bench_view import plot_file as draw_file
    from ttc_cli.ui.bench_view import plot_text, table_text, write_csv

    if csv_file is not None:
        write_csv(csv_file, results)
    if plot_file is not None:
        draw_file(plot_file, results)
    if out.as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(table_text(results, data.get("fit")) + "\n")
    if not out.quiet and sys.stderr.isatty() and results:
        sys.stderr.write(plot_text(results) + "\n")
