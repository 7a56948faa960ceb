"""`ttc bench`'s results: the table (stdout), CSV, and accuracy against tokens per question, drawn in the
terminal by plotext and to PNG/SVG by matplotlib (the optional `plot` extra)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ttc_cli.bench.metrics import Summary, wilson
from ttc_cli.errors import UsageError


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
    table.add_column("AUROC logprob · confidence · score", justify="right")
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
    "auroc_mean_logprob", "auroc_confidence", "auroc_score", "calibration_error",
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
                    r["auroc"]["confidence"], r["auroc"]["score"], r["calibration_error"],
                ])  # fmt: skip
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}", "choose another --csv path") from None


def _lines(results: Sequence[Summary]) -> dict[str, list[Summary]]:
    """One line per strategy (and model), its points ordered by tokens."""
    lines: dict[str, list[Summary]] = {}
    for r in results:
        lines.setdefault(r.strategy + (f" · {r.model}" if r.model else ""), []).append(r)
    return {k: sorted(v, key=lambda r: r.tokens) for k, v in lines.items()}


def plot_text(results: Sequence[Summary], width: int = 80, height: int = 18) -> str:
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    for name, points in _lines(results).items():
        plt.plot([p.tokens for p in points], [100 * p.accuracy for p in points], label=name, marker="dot")
    plt.xlabel("tokens per question")
    plt.ylabel("accuracy %")
    plt.title("accuracy against tokens")
    return str(plt.build())


def plot_file(path: Path, results: Sequence[Summary]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "--plot needs matplotlib", "pip install 'ttc-cli[plot]' (or pip install matplotlib)"
        ) from None
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, points in _lines(results).items():
        xs, ys = [p.tokens for p in points], [100 * p.accuracy for p in points]
        (line,) = ax.plot(xs, ys, marker="o", label=name)
        for p in points:
            low, high = wilson(p.right, p.questions)
            ax.vlines(p.tokens, 100 * low, 100 * high, color=line.get_color(), alpha=0.3)
            ax.annotate(
                p.budget, (p.tokens, 100 * p.accuracy), textcoords="offset points", xytext=(4, 4), fontsize=8
            )
    ax.set_xlabel("generated tokens per question")
    ax.set_ylabel("accuracy % (bars: 95 % interval)")
    ax.set_title(f"ttc bench: {results[0].questions if results else 0} questions")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}", "choose another --plot path") from None
    finally:
        plt.close(fig)
