"""The package list, found rather than written out, so that no new module or package is left out of the
wheel. Only this needs code: pyproject.toml's `packages.find` cannot also name the two data packages that
live at the top level of the repository (`prompts/`, `profiles/`), which `package-dir` maps into ttc_cli;
everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["ttc_cli", "ttc_cli.*"], exclude=["*.__pycache__"]),
        "ttc_cli.prompts",
        "ttc_cli.profiles",
    ]
)
