"""`ttc models`: the GGUF models `-m` can name (ttc's aliases, ollama, the Hugging Face cache, LM Studio and
the built-in one), `ttc models alias NAME PATH` to name one, and `ttc models default [NAME]` to choose
the model loaded when `-m` is not given (see models/stores.py for where each store keeps them, and
models/user_default.py for the order a default is chosen in)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from ttc_cli.options import Command, Group

models_app = typer.Typer(
    help="List the models -m can name (aliases, ollama, Hugging Face cache, LM Studio, built-in).",
    invoke_without_command=True,
    no_args_is_help=False,
    cls=Group,
)


def complete_model(incomplete: str) -> list[str]:
    """Shell completion of `-m`: the names `ttc models` lists, from the stores' folders only (no model is
    read or loaded, so a Tab stays instant); a broken aliases file completes nothing rather than failing."""
    from ttc_cli.errors import UsageError
    from ttc_cli.models.files import listed_models

    try:
        names = dict.fromkeys(m.name for m in listed_models())
    except UsageError:
        return []
    return [n for n in names if n.startswith(incomplete)]


@models_app.callback()
def models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list on stdout.")] = False,
) -> None:
    """List the models -m can name, with what their GGUF metadata says; * marks the default model."""
    if ctx.invoked_subcommand is not None:
        return
    from ttc_cli.models.files import listed_models
    from ttc_cli.models.gguf_info import describe
    from ttc_cli.models.user_default import chosen

    rows: list[dict[str, Any]] = []
    for found in listed_models():
        try:
            stat = found.path.stat()
        except OSError:
            stat = None
        size = stat.st_size if stat is not None and found.path.is_file() else None
        rows.append({"name": found.name, "source": found.source, "path": str(found.path), "bytes": size})
        if stat is not None:
            rows[-1]["modified"] = datetime.fromtimestamp(stat.st_mtime).isoformat(timespec="seconds")
        rows[-1].update(describe(found.path) if size else {"error": "file not found"})
    choice = chosen(None)
    _mark_default(rows, choice.value)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        from ttc_cli.ui.models_table import print_models

        print_models(rows, f"* the default model (without -m), from {choice.source()}")


def _mark_default(rows: list[dict[str, Any]], value: str | None) -> None:
    """Set each row's "default": the row of that name, else the first row of that file, else (a path that
    no store holds) a row of its own."""
    from ttc_cli.errors import UsageError
    from ttc_cli.models.files import BUILTIN_NAME, resolve_model_path

    for r in rows:
        r["default"] = False
    wanted = value or BUILTIN_NAME
    named = [r for r in rows if r["name"] == wanted]
    if named:
        named[0]["default"] = True
        return
    try:
        path = resolve_model_path(wanted)
    except UsageError:  # a default that no longer resolves: `ttc doctor` and `ttc ask` say why
        return
    same = [r for r in rows if Path(r["path"]).resolve() == path.resolve()]
    if same:
        same[0]["default"] = True
        return
    from ttc_cli.models.gguf_info import describe

    stat = path.stat()
    rows.append({"name": wanted, "source": "path", "path": str(path), "bytes": stat.st_size,
                 "modified": datetime.fromtimestamp(stat.st_mtime).isoformat(timespec="seconds"),
                 **describe(path), "default": True})  # fmt: skip


@models_app.command("alias", cls=Command)
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


@models_app.command("default", cls=Command)
def default(
    name: Annotated[
        str | None,
        typer.Argument(
            help="A model -m accepts (a path or a name from `ttc models`).", autocompletion=complete_model
        ),
    ] = None,
    unset: Annotated[bool, typer.Option("--unset", help="Forget the default: back to the built-in.")] = False,
) -> None:
    """Show or set the model loaded when -m is not given (TTC_MODEL, when set, still comes first)."""
    from ttc_cli.errors import UsageError
    from ttc_cli.models.files import BUILTIN_NAME, resolve_model_path
    from ttc_cli.models.user_default import ENV, chosen, config_file, set_user_default

    if unset and name is not None:
        raise UsageError("--unset takes no NAME", "`ttc models default --unset` alone")
    if unset:
        set_user_default(None)
        sys.stderr.write(f"ttc: no default model set (in {config_file()}); the built-in one is used\n")
        return
    if name is None:
        choice = chosen(None)
        sys.stdout.write(f"{choice.value or BUILTIN_NAME}\n")
        if sys.stderr.isatty():
            sys.stderr.write(f"ttc: from {choice.source()}\n")
        return
    path = resolve_model_path(name)  # a typo is refused now, not at the next `ttc ask`
    # A path is kept absolute (the next run may start elsewhere); a name, so that it follows its store.
    set_user_default(str(Path(name).expanduser().resolve()) if Path(name).expanduser().exists() else name)
    sys.stderr.write(f"ttc: default model {name} -> {path} (in {config_file()})\n")
    if chosen(None).origin == ENV:
        sys.stderr.write("ttc: note: TTC_MODEL is set, and comes before this default until it is unset\n")
