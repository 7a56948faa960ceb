"""`ttc models`: the GGUF models found in ttc's aliases, ollama, the Hugging Face cache and LM Studio, and
`ttc models alias NAME PATH` to name one (see models/stores.py for where each store keeps them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

models_app = typer.Typer(
    help="List the models -m can name (aliases, ollama, Hugging Face cache, LM Studio).",
    invoke_without_command=True,
    no_args_is_help=False,
)


@models_app.callback()
def models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout.")] = False,
) -> None:
    """List the models -m can name, with what their GGUF metadata says."""
    if ctx.invoked_subcommand is not None:
        return
    from ttc_cli.models.gguf_info import describe
    from ttc_cli.models.stores import all_models

    rows: list[dict[str, Any]] = []
    for found in all_models():
        size = found.path.stat().st_size if found.path.is_file() else None
        rows.append({"name": found.name, "source": found.source, "path": str(found.path), "bytes": size})
        rows[-1].update(describe(found.path) if size else {"error": "file not found"})
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        from ttc_cli.ui.models_table import print_models

        print_models(rows)


@models_app.command("alias")
def alias(
    name: Annotated[str, typer.Argument(help="The name -m will accept.")],
    path: Annotated[Path, typer.Argument(help="The .gguf file it names.")],
) -> None:
    """Name a GGUF file, so `-m NAME` loads it."""
    from ttc_cli.models.files import check_gguf
    from ttc_cli.models.stores import aliases_file, set_alias

    check_gguf(path.expanduser())
    set_alias(name, path.expanduser())
    sys.stderr.write(f"ttc: {name} -> {path.expanduser().resolve()} (in {aliases_file()})\n")
