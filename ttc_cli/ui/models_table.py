"""`ttc models` as a table: a Rich table on a terminal, plain columns in a pipe."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from ttc_cli.models.gguf_info import human_count


def print_models(rows: list[dict[str, Any]]) -> None:
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200, soft_wrap=False)
    if not rows:
        sys.stderr.write(
            "ttc: no models found in ttc's aliases, ollama, the Hugging Face cache or LM Studio; "
            "`ttc models alias NAME PATH` names one\n"
        )
        return
    table = Table(box=None, header_style="bold")
    for column in ("name", "source", "size", "quant", "params", "context", "chat template"):
        table.add_column(column, justify="right" if column in ("size", "params", "context") else "left")
    for r in rows:
        if "error" in r:
            table.add_row(r["name"], r["source"], "", f"[red]{r['error']}[/red]", "", "", "")
            continue
        table.add_row(
            r["name"],
            r["source"],
            f"{r['bytes'] / 2**20:,.0f} MiB",
            r["quantisation"] or "?",
            human_count(r["parameters"]),
            f"{r['context_length']:,}" if r["context_length"] else "?",
            "yes" if r["chat_template"] else "no",
        )
    console.print(table)
