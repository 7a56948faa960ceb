"""`compare`'s result table: one row per run, from the finished runs' JSON (it is the result, so stdout)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import RenderableType
from rich.table import Table

from ttc_cli.answers.extract import answer_key
from ttc_cli.ui.widgets import clip


def _agreement(results: list[dict[str, Any]]) -> list[str]:
    """✓/✗ against the most common answer across runs; '–' for all when the top answers tie."""
    keys = [answer_key(r["answer"]) for r in results]
    ranked = Counter(k for k in keys if k).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return ["–"] * len(results)
    return ["✓" if k == ranked[0][0] else "✗" for k in keys]


def _top_score(result: dict[str, Any]) -> str:
    scores = [c["score"] for c in result["candidates"] if c.get("score") is not None]
    return f"{max(scores):.3f}" if scores else "-"


def compare_table(results: list[dict[str, Any]]) -> RenderableType:
    table = Table(header_style="bold")
    for name in ("strategy", "model", "answer", "agrees", "tokens", "time s", "stopped", "top score"):
        table.add_column(name, justify="right" if name in ("tokens", "time s", "top score") else "left")
    for r, agrees in zip(results, _agreement(results), strict=True):
        b, seconds = r["budget"], r["timing"]["total_s"]
        cells = (r["strategy"], r["model"], clip(r["answer"], 30), agrees, f"{b['spent']:,}/{b['limit']:,}")
        table.add_row(*cells, f"{seconds:.1f}", r["stopped_because"], _top_score(r))
    return table
