"""What users install: the wheel holds every module and data file, and the installed `ttc` starts.

The rest of the suite runs the installed package too (conftest), but only the parts it happens to touch;
these tests check the whole of it against the checkout, so a module left out of the package list fails
here and not on a user's machine.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import OUTSIDE, ROOT, TTC

import ttc_cli


def source_modules() -> set[str]:
    """Every module of the checkout's package, as an import name."""
    found = set()
    for path in (ROOT / "ttc_cli").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def data_files() -> dict[str, str]:
    """Each shipped YAML file: its place in the checkout -> its place in the wheel."""
    return {
        f"{kind}/{path.name}": f"ttc_cli/{kind}/{path.name}"
        for kind in ("prompts", "profiles")
        for path in (ROOT / kind).glob("*.yaml")
    }


def test_the_wheel_holds_every_module_and_data_file(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("ttc_cli-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {m.replace(".", "/") + ".py" for m in source_modules()}
    packages = {m.replace(".", "/") + "/__init__.py" for m in source_modules()}
    missing = sorted(f for f in modules if f not in names and f.replace(".py", "/__init__.py") not in names)
    assert not missing, f"the wheel lacks {missing}"
    assert not sorted(set(data_files().values()) - names), "the wheel lacks prompt or profile files"
    assert len(modules | packages) > 90 and len(data_files()) >= 6  # the checkout was found at all
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "ttc = ttc_cli.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_package_imports_every_module_from_outside_the_checkout():
    code = (
        "import importlib, pkgutil, sys, ttc_cli\n"
        "names = [m.name for m in pkgutil.walk_packages(ttc_cli.__path__, 'ttc_cli.')]\n"
        "for name in names: name.endswith('__main__') or importlib.import_module(name)\n"
        "print(ttc_cli.__file__); print(*sorted(names))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=OUTSIDE, timeout=120
    )
    assert done.returncode == 0, done.stderr
    where, names = done.stdout.splitlines()
    installed = set(names.split()) | {"ttc_cli"}
    assert not sorted(source_modules() - installed), "modules of the checkout are not installed"
    assert Path(where).parent == Path(ttc_cli.__file__).parent  # the same package the in-process tests import


def test_the_console_script_starts_from_outside_the_checkout():
    done = subprocess.run([*TTC, "--version"], capture_output=True, text=True, cwd=OUTSIDE, timeout=60)
    assert done.returncode == 0 and done.stdout.strip().endswith(ttc_cli.__version__), done.stderr
    assert done.stderr == ""
