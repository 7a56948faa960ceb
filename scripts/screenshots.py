"""Regenerate README's screenshots (docs/*.svg) from real runs on the default model.

Each run is driven exactly as `ttc ask` / `ttc compare` drive it; the SVG is the view's final frame and
the closing summary, recorded with Rich's `Console(record=True)`.

    python scripts/screenshots.py
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from ttc_cli.engine.llama import LlamaEngine
from ttc_cli.models.files import resolve_model_path
from ttc_cli.options import PlanOptions
from ttc_cli.plan import build
from ttc_cli.runner import execute, prepare
from ttc_cli.ui.compare_table import compare_table
from ttc_cli.ui.state import RunState
from ttc_cli.ui.widgets import compare_panels, run_view, summary

DOCS = Path(__file__).resolve().parent.parent / "docs"
QUESTION = "A baker makes 4 trays of 12 muffins and sells 30. How many muffins are left?"


def recorder(width: int) -> Console:
    return Console(
        record=True, file=io.StringIO(), width=width, force_terminal=True, color_system="truecolor"
    )


def run(engine: LlamaEngine, strategy: str) -> tuple[RunState, dict]:
    p = build(QUESTION, strategy, PlanOptions(budget="3000", samples=8, seed=5, max_tokens=300))
    state = RunState(p.strategy.name, engine.model_name, engine.device, p.budget_limit, p.budget_preset)
    result = execute(p, prepare(p, engine), state.update)
    return state, result.to_json()


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    engine = LlamaEngine(resolve_model_path(None))

    state, data = run(engine, "self-consistency")
    console = recorder(110)
    console.print(f"$ ttc ask {QUESTION!r} --budget 3000 -n 8")
    console.print(run_view(state))
    console.print(summary(data))
    console.save_svg(str(DOCS / "ask.svg"), title="ttc ask")

    runs = [run(engine, s) for s in ("greedy", "best-of-n", "self-consistency")]
    console = recorder(150)
    console.print(f"$ ttc compare {QUESTION!r} -s greedy -s best-of-n -s self-consistency --budget 3000 -n 8")
    console.print(compare_panels([s for s, _ in runs]))
    console.print(compare_table([d for _, d in runs]))
    console.save_svg(str(DOCS / "compare.svg"), title="ttc compare")
    print(f"wrote {DOCS / 'ask.svg'} and {DOCS / 'compare.svg'}")


if __name__ == "__main__":
    main()
