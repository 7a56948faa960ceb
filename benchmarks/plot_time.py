"""Accuracy against seconds per question: every configuration run live on GSM8K with Qwen2.5-Coder-0.5B
(and the 1.5B's greedy beside them), from the committed results, drawn to one figure.

    python benchmarks/plot_time.py [--out docs/gsm8k-accuracy-vs-seconds.png]

Seconds are wall-clock per question as each run measured them, on 2-core CPU hosts that differ by
section (AVX2 or AVX-512, see docs/benchmarks.md), so points of different sources compare roughly, and
points of one source compare well. Each source is one colour; the number of questions behind a point is
in the legend, and its 95 % Wilson interval is the bar (a 6-question point spans half the axis, which is
what 6 questions can say). Rows whose seconds are modelled from a throughput curve (the replays in
"Execution on GSM8K" and "Width") are left out: they were never timed.

Where a result file holds per-question seconds, the figure reads it; two figures come from the tables of
docs/benchmarks.md or README because the files do not hold them in a form this script can score (cited
beside each number in FROM_TABLES).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
OUT = Path(__file__).resolve().parent.parent / "docs" / "gsm8k-accuracy-vs-seconds.png"


@dataclass(frozen=True)
class Point:
    source: str  # one colour on the figure
    label: str
    questions: int
    right: int
    seconds: float  # per question

    @property
    def accuracy(self) -> float:
        return self.right / self.questions


# Figures the result files do not hold ready to score, with where each is written.
FROM_TABLES = [
    # README, "A real run: GSM8K with Qwen2.5-Coder-0.5B": beam · low, 23.3 % of 30, 42.6 s/q. The run log
    # holds these runs but not the gold answers, which bench judged against the data file.
    Point("ttc bench (README), questions 1–100", "beam · low", 30, 7, 42.6),
]


def bench_table() -> list[Point]:
    """`ttc bench`'s 8 configurations on questions 1–100 (README's table, as bench wrote it to CSV)."""
    with (RESULTS / "bench-qwen0.5b" / "table.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [
        Point(
            "ttc bench (README), questions 1–100",
            r["config"],
            int(r["questions"]),
            round(float(r["accuracy"]) * int(r["questions"])),
            float(r["seconds_per_question"]),
        )  # fmt: skip
        for r in rows
    ]


def per_question(name: str, source: str, key: tuple[str, ...], labels: dict[tuple, str]) -> list[Point]:
    """A JSONL file of one line per question and run: each run's share right and mean seconds."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for line in (RESULTS / name).read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        groups[tuple(row.get(k) for k in key)].append(row)
    return [
        Point(
            source,
            labels.get(k, " · ".join(str(v) for v in k)),
            len(rows),
            sum(bool(r["correct"]) for r in rows),
            sum(r["seconds"] for r in rows) / len(rows),
        )  # fmt: skip
        for k, rows in groups.items()
    ]


def recording(name: str, source: str, label: str, right_share: float) -> Point:
    """A recording's decode seconds per question (timed live as it recorded); its accuracy is the
    replayed vote's, from docs/benchmarks.md (`right_share`), since scoring it needs the replay."""
    with gzip.open(RESULTS / name, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return Point(
        source, label, len(rows), round(right_share * len(rows)), sum(r["decode_s"] for r in rows) / len(rows)
    )


def points() -> list[Point]:
    out = bench_table() + FROM_TABLES
    out += per_question(
        "greedy-qwen0.5b.jsonl",
        "greedy, prompts.py, questions 1–100",
        ("prompt",),
        {("cot-shipped",): "greedy"},
    )
    out += per_question(
        "greedy-qwen1.5b.jsonl", "1.5B greedy, questions 1–59", ("prompt",), {("cot-shipped",): "1.5B greedy"}
    )
    out += per_question(
        "gsm8k-qwen0.5b-live.jsonl", "early stop, live (2026-11-27)", ("run",),
        {("auto",): "auto", ("sc16-deepconf",): "SC@16, early stop"},
    )  # fmt: skip
    # "Early stopping on GSM8K": SC@16 0.420, and "Execution on GSM8K": SC@8 program 0.39, both on 1–100.
    out.append(recording("gsm8k-qwen0.5b-sc16.jsonl.gz", "recordings, decoding only", "SC@16", 0.42))
    out.append(recording("gsm8k-qwen0.5b-pot8.jsonl.gz", "recordings, decoding only", "SC@8 program", 0.39))
    names = {"greedy": "greedy", "sc": "SC@{n}", "bon-judge": "best-of-{n}", "beam": "beam",
             "lookahead": "lookahead", "mcts": "mcts"}  # fmt: skip
    search = {
        (run, budget, "self"): name.format(n=4 if budget == "low" else 8)
        for run, name in names.items()
        for budget in ("low", "medium")
    }
    search["beam", "low", "qwen2.5-coder-1.5b-instruct-q4km"] = "beam, 1.5B judge"
    for p in per_question("gsm8k-qwen0.5b-search.jsonl", "", ("run", "budget", "judge"), search):
        budget = "low" if p.questions == 16 else "medium"
        out.append(Point(f"step-level search, {budget}", p.label, p.questions, p.right, p.seconds))
    out += per_question(
        "gsm8k-qwen0.5b-width.jsonl", "width, live (2026-12-01)", ("run",),
        {("sc16-off",): "SC@16", ("sc16-beta",): "SC@16, early stop", ("auto",): "auto"},
    )  # fmt: skip
    out += per_question(
        "gsm8k-qwen0.5b-hybrid-heldout.jsonl", "hybrid 16 + 8, held out, questions 101–149", ("run",),
        {("hybrid16+8-off",): "hybrid 16+8"},
    )  # fmt: skip
    return out


def wilson(right: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def draw(data: list[Point], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ttc_cli.ui.bench_figure import MARKERS, place_labels

    fig, ax = plt.subplots(figsize=(11, 7), dpi=120)
    ax.set_xscale("log")
    ax.set_xlim(5, 300)
    ax.set_ylim(0, 100)
    ax.set_xlabel("seconds per question, wall clock (log scale; 2-core CPU hosts, see docs/benchmarks.md)")
    ax.set_ylabel("accuracy % (bars: 95 % Wilson interval)")
    ax.set_title(
        "GSM8K (gsm8k-train-sample-300) · Qwen2.5-Coder-0.5B-Instruct, every configuration run live,"
        " and the 1.5B's greedy\naccuracy against seconds per question",
        fontsize=10,
    )
    ax.grid(alpha=0.3, which="both")
    ax.set_xticks([5, 10, 20, 50, 100, 200], ["5", "10", "20", "50", "100", "200"])
    fig.tight_layout()
    labels: list[tuple[float, float, str, Any]] = []
    spans: list[tuple[float, float, float]] = []
    sources = list(dict.fromkeys(p.source for p in data))
    for i, source in enumerate(sources):
        mine = [p for p in data if p.source == source]
        counts = sorted({p.questions for p in mine})
        n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        xs, ys = [p.seconds for p in mine], [100 * p.accuracy for p in mine]
        bounds = [wilson(p.right, p.questions) for p in mine]
        big, few = source.startswith("1.5B"), counts[-1] < 10  # few: 6 questions, one is 17 points
        below = [y - 100 * lo for y, (lo, _) in zip(ys, bounds, strict=True)]
        above = [100 * hi - y for y, (_, hi) in zip(ys, bounds, strict=True)]
        bars = ax.errorbar(
            xs, ys, yerr=[below, above], fmt=MARKERS[i % len(MARKERS)], markersize=9 if big else 6,
            elinewidth=0.8 if few else 1.1, capsize=3, capthick=0.8 if few else 1.1,
            color="black" if big else None, alpha=0.55 if few else 1.0, mfc="none" if few else None,
            label=f"{source} ({n} q{', faint' if few else ''})",
        )  # fmt: skip
        color = bars.lines[0].get_color()
        for p, x, y, (lo, hi) in zip(mine, xs, ys, bounds, strict=True):
            labels.append((x, y, p.label, color))
            spans.append((x, 100 * lo, 100 * hi))
    legend = ax.legend(loc="upper left", fontsize=7.5)
    place_labels(ax, labels, avoid=[legend], bars=spans)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    data = points()
    for p in data:
        print(
            f"{p.source:45} {p.label:22} {p.questions:4} q  {100 * p.accuracy:5.1f} %  {p.seconds:6.1f} s/q"
        )
    draw(data, args.out)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
