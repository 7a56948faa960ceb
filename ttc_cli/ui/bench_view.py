"""`ttc bench`'s results: the table (stdout), CSV, and accuracy against tokens per question, drawn in the
terminal by plotext and to PNG/SVG by matplotlib (the optional `plot` extra; the figure is
bench_figure.py)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ttc_cli.bench.metrics import Summary, wilson
from ttc_cli.errors import UsageError
from ttc_cli.ui.bench_figure import strategy_lines


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def table_text(results: Sequence[Summary], fit: dict[str, Any] | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ttc bench", title_justify="left")
    for name in (
        "configuration",
        "n",
        "accuracy %",
        "95 % interval",
        "tokens/q",
        "s/q",
        "saved/q",
        "pass@N %",
    ):
        table.add_column(name, justify="left" if name == "configuration" else "right")
    table.add_column("AUROC logprob · trace conf · score", justify="right")
    table.add_column("ECE", justify="right")
    for r in results:
        low, high = wilson(r.right, r.questions)
        aurocs = " · ".join("–" if v is None else f"{v:.2f}" for v in r.aurocs.values())
        ece = "–" if r.calibration is None else f"{r.calibration:.3f}"
        table.add_row(
            r.config, str(r.questions), _pct(r.accuracy), f"{_pct(low)}–{_pct(high)}", f"{r.tokens:,.0f}",
            f"{r.seconds:.1f}", f"{r.saved:,.0f}", _pct(r.pass_at_n), aurocs, ece,
        )  # fmt: skip
    width = None if sys.stdout.isatty() else 160
    console = Console(file=sys.stdout, width=width, soft_wrap=False)
    with console.capture() as captured:
        console.print(table)
        if fit is not None:
            console.print(fit_text(fit))
    return captured.get().rstrip("\n")


def fit_text(fit: dict[str, Any]) -> str:
    lines = _routes_text(fit) if "routes" in fit else []
    calibrated = fit.get("greedy_confidence")
    if calibrated is not None:
        said, right = calibrated["test_mean_confidence"], calibrated["test_accuracy"]
        lines.append(
            f"greedy's confidence calibrated on {calibrated['fit_runs']} answers (its mean log-probability, "
            f"{calibrated['model']}); on the held-back questions it says {_pct(said)} % on average against "
            f"{_pct(right)} % right, calibration error {_num(calibrated['test_calibration_error'], '.3f')}, "
            f"AUROC {_num(calibrated['test_auroc'], '.2f')}"
        )
    elif "greedy_confidence" in fit:
        lines.append("greedy stated too few answers on the fit half to calibrate its confidence")
    lines.append(f"written to {fit['profile']}")
    return "\n".join(lines)


def _routes_text(fit: dict[str, Any]) -> list[str]:
    routes = ", ".join(f"{d} → {n}" for d, n in fit["routes"].items())
    auto = fit["fitted_auto"]
    lines = [
        f"fitted auto routes (samples by probe agreement, from {fit['source']}, {fit['fit_questions']} "
        f"questions): {routes}",
        f"held-back {fit['test_questions']} questions, replayed: fitted auto {_pct(auto['accuracy'])} % at "
        f"{auto['tokens']:,} tokens/q",
    ]
    best = fit.get("best_fixed_at_no_more_tokens")
    if best:
        verdict = "wins" if auto["accuracy"] > best["accuracy"] else "does not win"
        lines.append(
            f"best fixed choice at no more tokens: {best['name']} {_pct(best['accuracy'])} % at "
            f"{best['tokens']:,} tokens/q: fitted auto {verdict}"
        )
    else:
        lines.append("no fixed choice costs as few tokens as the fitted routes")
    return lines


def _num(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


CSV_COLUMNS = (
    "config", "model", "strategy", "budget", "questions", "right", "accuracy", "accuracy_low",
    "accuracy_high", "tokens_per_question", "seconds_per_question", "saved_per_question", "pass_at_n",
    "auroc_mean_logprob", "auroc_trace_confidence", "auroc_score", "calibration_error",
)  # fmt: skip


def write_csv(path: Path, results: Sequence[Summary]) -> None:
    rows = [r.to_json() for r in results]
    try:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(CSV_COLUMNS)
            for r in rows:
                writer.writerow([
                    r["config"], r["model"], r["strategy"], r["budget"], r["questions"], r["right"],
                    r["accuracy"], *r["accuracy_95"], r["tokens_per_question"], r["seconds_per_question"],
                    r["early_stop_saved_per_question"], r["pass_at_n"], r["auroc"]["mean_logprob"],
                    r["auroc"]["trace_confidence"], r["auroc"]["score"], r["calibration_error"],
                ])  # fmt: skip
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}", "choose another --csv path") from None


def plot_text(results: Sequence[Summary], width: int = 80, height: int = 18) -> str:
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    for name, points in strategy_lines(results).items():
        plt.plot([p.tokens for p in points], [100 * p.accuracy for p in points], label=name, marker="dot")
    plt.xlabel("tokens per question")
    plt.ylabel("accuracy %")
    plt.title("accuracy against tokens")
    return str(plt.build())


def plot_file(path: Path, results: Sequence[Summary], dataset: str = "", models: Sequence[str] = ()) -> None:
    """Accuracy against tokens to PNG or SVG (bench_figure.py draws it); `dataset` and `models` name what
    was measured in the title."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        # ttc is installed from a checkout, not from PyPI, so the extra is named by path, not by name
        raise UsageError(
            "--plot needs matplotlib", "pip install matplotlib (or, in ttc's checkout, pip install '.[plot]')"
        ) from None
    from ttc_cli.ui.bench_figure import accuracy_figure

    fig = accuracy_figure(results, dataset, models)
    try:
        fig.savefig(path)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}", "choose another --plot path") from None
    finally:
        plt.close(fig)
