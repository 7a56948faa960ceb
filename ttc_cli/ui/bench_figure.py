"""`ttc bench --plot`'s figure: accuracy against tokens per question, one line per strategy, drawn with
matplotlib (imported by the caller, so that ttc runs without it).

Made to be read, not only drawn: the title names the model and the data set and how many questions each
point stands on; the y axis runs from 0 to 100 %, so that points whose intervals overlap do not look far
apart; every interval bar is capped and drawn in its line's full colour; points that share a token count
(self-consistency and best-of-n spend the same samples) are drawn a few points apart instead of on top
of each other; labels are placed where they cover no other label, marker or the legend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ttc_cli.bench.metrics import Summary, wilson

MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")
DODGE_PT = 8.0  # how far apart points at the same x are drawn, in typographic points
LABEL_PT = 7.5  # label font size


def short_name(name: str) -> str:
    """A model or data file as a title shows it: its file name without .gguf, .jsonl, .gz, .csv."""
    stem = Path(name).name if ("/" in name or "\\" in name or name.endswith(".gguf")) else name
    for suffix in (".gz", ".jsonl", ".json", ".csv", ".gguf"):
        stem = stem.removesuffix(suffix)
    return stem


def title_text(results: Sequence[Summary], dataset: str = "", models: Sequence[str] = ()) -> str:
    """What was measured on what: data set and model(s), then the questions behind each point."""
    names = [short_name(m) for m in dict.fromkeys(models) if m] or sorted(
        {short_name(r.model) for r in results if r.model}
    )
    what = " · ".join(x for x in (short_name(dataset) if dataset else "", ", ".join(names)) if x)
    counts = sorted({r.questions for r in results})
    if not counts:
        per = "no questions"
    elif len(counts) == 1:
        per = f"{counts[0]} questions per configuration"
    else:
        per = f"{counts[0]}–{counts[-1]} questions per configuration (n beside the points with fewer)"
    return f"{what or 'ttc bench'}\naccuracy against tokens, {per}"


def accuracy_figure(results: Sequence[Summary], dataset: str = "", models: Sequence[str] = ()) -> Any:
    """The figure (matplotlib must be importable; the caller chooses the backend)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.2), dpi=120)
    lines = strategy_lines(results)
    most = max((r.questions for r in results), default=0)
    ax.set_title(title_text(results, dataset, models), fontsize=10)
    ax.set_ylim(0, 100)
    right = max((r.tokens for r in results), default=1.0)
    ax.set_xlim(0, right * 1.12 or 1.0)
    ax.set_ylabel("accuracy % (bars: 95 % Wilson interval)")
    ax.grid(alpha=0.3)
    ax.set_xlabel("generated tokens per question")
    fig.tight_layout()
    xs = dodged_x(ax, [[r.tokens for r in points] for points in lines.values()])
    labels: list[tuple[float, float, str, Any]] = []
    spans: list[tuple[float, float, float]] = []
    for i, ((name, points), x) in enumerate(zip(lines.items(), xs, strict=True)):
        ys = [100 * r.accuracy for r in points]
        bounds = [wilson(r.right, r.questions) for r in points]
        below = [y - 100 * lo for y, (lo, _) in zip(ys, bounds, strict=True)]
        above = [100 * hi - y for y, (_, hi) in zip(ys, bounds, strict=True)]
        bars = ax.errorbar(
            x, ys, yerr=[below, above], marker=MARKERS[i % len(MARKERS)], markersize=6, linewidth=1.5,
            elinewidth=1.3, capsize=4, capthick=1.3, label=name,
        )  # fmt: skip
        color = bars.lines[0].get_color()
        for px, py, r, (lo, hi) in zip(x, ys, points, bounds, strict=True):
            text = r.budget + (f" (n={r.questions})" if r.questions != most else "")
            labels.append((px, py, text, color))
            spans.append((px, 100 * lo, 100 * hi))
    if any(a != b for line, points in zip(xs, lines.values(), strict=True) for a, b in zip(
        line, (r.tokens for r in points), strict=True
    )):  # fmt: skip
        ax.set_xlabel("generated tokens per question (points at equal tokens drawn side by side)")
    legend = ax.legend(loc="upper left", fontsize=8)
    place_labels(ax, labels, avoid=[legend], bars=spans)
    return fig


def dodged_x(ax: Any, columns: list[list[float]]) -> list[list[float]]:
    """Each line's x values, moved DODGE_PT apart where points of different lines would overlap; the
    axes' x limits and size must be final."""
    width_pt = ax.get_window_extent().width * 72 / ax.figure.dpi
    lo, hi = ax.get_xlim()
    per_pt = (hi - lo) / width_pt if width_pt else 0.0
    flat = sorted((x, line, k) for line, xs in enumerate(columns) for k, x in enumerate(xs))
    clusters: list[list[tuple[float, int, int]]] = []
    for point in flat:
        if clusters and point[0] - clusters[-1][-1][0] < DODGE_PT * per_pt:
            clusters[-1].append(point)
        else:
            clusters.append([point])
    out = [list(xs) for xs in columns]
    for cluster in clusters:
        if len({line for _, line, _ in cluster}) < 2:
            continue
        centre = sum(x for x, _, _ in cluster) / len(cluster)
        for j, (_, line, k) in enumerate(sorted(cluster, key=lambda p: p[1])):
            out[line][k] = centre + (j - (len(cluster) - 1) / 2) * DODGE_PT * per_pt
    return out


def place_labels(
    ax: Any,
    labels: list[tuple[float, float, str, Any]],
    avoid: Sequence[Any] = (),
    bars: Sequence[tuple[float, float, float]] = (),
) -> list[Any]:
    """Annotate each (x, y, text, colour) beside its point where the text covers no label placed before
    it, no marker, no interval bar (x, low, high) and nothing in `avoid` (e.g. the legend), trying offsets
    around the point in turn; where every offset collides, the one that covers least. Returns the
    annotations."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72  # pixels per point
    frame = ax.get_window_extent(renderer)
    markers = [ax.transData.transform((x, y)) for x, y, _, _ in labels]
    taken = [Bbox.from_extents(mx - 5 * px, my - 5 * px, mx + 5 * px, my + 5 * px) for mx, my in markers]
    taken += [a.get_window_extent(renderer) for a in avoid]
    for x, low, high in bars:
        (bx, by0), (_, by1) = ax.transData.transform([(x, low), (x, high)])
        taken.append(Bbox.from_extents(bx - 4 * px, by0, bx + 4 * px, by1))
    for line in ax.lines:  # the lines between points, as a chain of small boxes every few pixels
        if line.get_linestyle() in ("None", "none", ""):  # an errorbar's caps: markers only
            continue
        drawn = ax.transData.transform(line.get_xydata())
        for (x0, y0), (x1, y1) in zip(drawn, drawn[1:], strict=False):
            steps = max(1, int(max(abs(x1 - x0), abs(y1 - y0)) / (4 * px)))
            for k in range(1, steps):
                cx, cy = x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps
                taken.append(Bbox.from_extents(cx - px, cy - px, cx + px, cy + px))
    placed = []
    for x, y, text, color in sorted(labels, key=lambda lab: (lab[0], lab[1])):
        note = ax.annotate(
            text, (x, y), xytext=(6, 3), textcoords="offset points", fontsize=LABEL_PT, color=color
        )
        box = note.get_window_extent(renderer)
        w = box.width / px
        best, best_cost = (6.0, 3.0), float("inf")
        for dx, dy in _offsets(w):
            note.xyann = (dx, dy)
            box = note.get_window_extent(renderer)
            outside = not (frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1))
            cost = sum(_overlap(box, other) for other in taken) + (1e9 if outside else 0.0)
            if cost < best_cost:
                best, best_cost = (dx, dy), cost
            if cost == 0:
                break
        note.xyann = best
        taken.append(note.get_window_extent(renderer).expanded(1.1, 1.2))  # a little air between labels
        placed.append(note)
    return placed


def _offsets(width: float) -> list[tuple[float, float]]:
    """Offsets (points) from a marker to a label's lower left corner: right, left, then further out."""
    out = []
    for dy in (3.0, -11.0, 11.0, -19.0, 19.0, -27.0, 27.0):
        out += [(6.0, dy), (-6.0 - width, dy)]
    out += [(-width / 2, 9.0), (-width / 2, -17.0)]
    return out


def _overlap(a: Any, b: Any) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def strategy_lines(results: Sequence[Summary]) -> dict[str, list[Summary]]:
    """One line per strategy (and model), its points ordered by tokens."""
    lines: dict[str, list[Summary]] = {}
    for r in results:
        lines.setdefault(r.strategy + (f" · {short_name(r.model)}" if r.model else ""), []).append(r)
    return {k: sorted(v, key=lambda r: r.tokens) for k, v in lines.items()}
