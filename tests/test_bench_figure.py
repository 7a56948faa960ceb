"""`ttc bench --plot`'s figure, drawn with matplotlib's Agg backend: what the title, axes and labels say,
and that nothing on it hides anything else (labels, points at equal tokens, interval bars)."""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from ttc_cli.bench.metrics import Summary  # noqa: E402
from ttc_cli.ui.bench_figure import accuracy_figure, title_text  # noqa: E402

DATA = "../shared/data/gsm8k-train-sample-300.jsonl"
MODEL = "qwen2.5-coder-0.5b-instruct.gguf"


def point(strategy: str, budget: str, right: int, tokens: float, questions: int = 100) -> Summary:
    return Summary(
        f"{strategy} · {budget}", "", strategy, budget, questions, right, tokens, 10.0, 0.0, None, {}, None
    )


# The committed GSM8K run (README), where self-consistency and best-of-n spend the same tokens and
# self-consistency and auto at `low` sit at nearly the same point.
RUN = [
    point("greedy", "low", 26, 238.5), point("greedy", "medium", 31, 277.4),
    point("self-consistency", "low", 25, 927.9), point("self-consistency", "medium", 40, 1666.8),
    point("best-of-n", "low", 29, 927.9), point("best-of-n", "medium", 37, 1666.8),
    point("auto", "low", 25, 934.8), point("auto", "medium", 38, 1420.8),
]  # fmt: skip


@pytest.fixture
def figure():
    import matplotlib.pyplot as plt

    fig = accuracy_figure(RUN, DATA, [MODEL])
    fig.canvas.draw()
    yield fig
    plt.close(fig)


def test_the_title_names_data_set_model_and_questions(figure):
    title = figure.axes[0].get_title()
    assert "gsm8k-train-sample-300" in title and "qwen2.5-coder-0.5b-instruct" in title
    assert "100 questions per configuration" in title and ".gguf" not in title


def test_counts_that_differ_are_said_per_point():
    mixed = [*RUN, point("beam", "low", 7, 941, questions=30)]
    assert "30–100 questions per configuration" in title_text(mixed, DATA, [MODEL])
    import matplotlib.pyplot as plt

    fig = accuracy_figure(mixed, DATA, [MODEL])
    try:
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert "low (n=30)" in texts and texts.count("low") == 4  # only the point with fewer says its n
    finally:
        plt.close(fig)


def test_the_y_axis_is_the_whole_percentage_range(figure):
    ax = figure.axes[0]
    assert ax.get_ylim() == (0, 100) and ax.get_xlim()[0] == 0
    assert "95 %" in ax.get_ylabel() and "tokens per question" in ax.get_xlabel()


def test_interval_bars_are_capped_and_opaque(figure):
    from matplotlib.container import ErrorbarContainer

    bars = [c for c in figure.axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 4
    for bar in bars:
        _, caps, (vertical,) = bar.lines
        assert len(caps) == 2 and (vertical.get_alpha() or 1.0) == 1.0


def test_points_at_equal_tokens_are_drawn_apart(figure):
    ax = figure.axes[0]
    drawn = {bar.get_label(): ax.transData.transform(bar.lines[0].get_xydata()) for bar in ax.containers}
    sc, bon, auto = drawn["self-consistency"], drawn["best-of-n"], drawn["auto"]
    assert abs(sc[0][0] - bon[0][0]) >= 5 and abs(sc[1][0] - bon[1][0]) >= 5  # pixels apart
    assert abs(sc[0][0] - auto[0][0]) >= 5
    assert "side by side" in ax.get_xlabel()


def test_no_label_covers_another_or_the_legend(figure):
    ax = figure.axes[0]
    renderer = figure.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) == len(RUN)
    for a, b in combinations(boxes, 2):
        assert not a.overlaps(b), (a, b)
    legend = ax.get_legend().get_window_extent(renderer)
    assert not any(box.overlaps(legend) for box in boxes)


def test_plot_file_writes_the_figure(tmp_path: Path):
    from ttc_cli.ui.bench_view import plot_file

    plot_file(tmp_path / "p.png", RUN, DATA, [MODEL])
    plot_file(tmp_path / "p.svg", RUN)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG" and b"<svg" in (
        tmp_path / "p.svg"
    ).read_bytes()


def test_without_matplotlib_the_error_says_what_installs_it(monkeypatch, tmp_path: Path):
    from ttc_cli.errors import UsageError
    from ttc_cli.ui.bench_view import plot_file

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(UsageError) as caught:
        plot_file(tmp_path / "p.png", [])
    assert "pip install matplotlib" in caught.value.hint and "'.[plot]'" in caught.value.hint
    assert "ttc-cli[plot]" not in str(caught.value) + caught.value.hint
