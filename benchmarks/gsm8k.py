"""The GSM8K sample the benchmarks share, and their resumable JSON-lines result files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k-train-sample-300.jsonl"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_questions(path: Path, count: int) -> list[dict[str, Any]]:
    """The first `count` questions ({id, question, answer}) in the file's order."""
    return read_jsonl(path)[:count]


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """One result per line, written at once, so an interrupted run keeps every finished result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
