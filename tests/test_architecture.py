"""The house rules, checked from the source: layers that import one way, one module that knows llama.cpp,
modules small enough to read (or saying why not)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ttc_cli"
LIMIT = 300  # lines; a longer module says why in its docstring


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path, typing: bool = False) -> set[str]:
    """Every module this one imports, at any depth (a lazy import is still a dependency); what only type
    checkers see counts with `typing`."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if not typing and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def graph(typing: bool = False) -> dict[str, set[str]]:
    mods = modules()
    return {n: {m for m in imports(path, typing) if m in mods and m != n} for n, path in mods.items()}


def test_there_is_no_import_cycle():
    """Type annotations included: two modules that name each other's types are one module in two files
    (a decoder types its engine by the `Backend` protocol it drives, not by the engine's class)."""
    deps = graph(typing=True)
    # A package's __init__ importing its own submodules is how a package presents itself, not a cycle.
    deps = {m: {d for d in ds if not m.startswith(d + ".") or m == d} for m, ds in deps.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(deps[m]):
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(d) :] + [d]))
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(deps):
        if m not in state:
            visit(m)


def test_no_module_imports_another_modules_private_name():
    found = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ttc_cli"):
                found += [
                    f"{name}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert found == []


def test_the_decoders_reach_their_engines_through_public_names_only():
    """`engine._eval` from a decoder was the engine room's back door; its `Backend` protocol is the front."""
    for name in ("decoder", "remote_decoder"):
        source = (PACKAGE / "engine" / f"{name}.py").read_text()
        assert "engine._" not in source, name


def test_decoding_and_the_model_catalogue_are_rooms_apart():
    """Finding a model file (stores, aliases) and describing it (GGUF metadata) need no decoder, and a
    decoder needs only the path it is given."""
    deps = graph(typing=True)
    crossing = sorted(
        (m, d)
        for m, ds in deps.items()
        for d in ds
        if (m.startswith("ttc_cli.engine") and d.startswith("ttc_cli.models"))
        or (m.startswith("ttc_cli.models") and d.startswith("ttc_cli.engine"))
    )
    assert crossing == []


def test_a_plan_holds_resolved_settings_not_the_options_or_profile_they_came_from():
    """A run that read `plan.options` or `plan.profile` would resolve a setting a second time."""
    from dataclasses import fields

    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import Plan
    from ttc_cli.profile import Profile

    for f in fields(Plan):
        assert f.type not in ("PlanOptions", "Profile", PlanOptions, Profile), f.name


def test_only_the_llama_backend_imports_llama_cpp():
    users = sorted(
        m for m, path in modules().items() if any(i.startswith("llama_cpp") for i in imports(path))
    )
    # serve: the launcher of llama-cpp-python's server, which hooks its model loads (not an engine of ttc's)
    assert users == ["ttc_cli.engine.llama", "ttc_cli.engine.llama_vocab", "ttc_cli.serve"]


@pytest.mark.parametrize(
    "layer",
    ["ttc_cli.strategies", "ttc_cli.answers", "ttc_cli.verifiers", "ttc_cli.engine", "ttc_cli.models"],
)
def test_lower_layers_never_import_the_cli_or_the_ui(layer):
    for name, path in modules().items():
        if name.startswith(layer):
            above = {i for i in imports(path) if i.startswith(("ttc_cli.cli", "ttc_cli.ui", "rich", "typer"))}
            assert not above, (name, above)


def test_modules_stay_short_or_say_why():
    for name, path in modules().items():
        lines = path.read_text().count("\n")
        if lines > LIMIT:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "longer than" in doc, f"{name} has {lines} lines and no reason in its docstring"
