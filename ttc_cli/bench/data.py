"""A bench's questions: JSONL or CSV with `question` and `answer`, and optionally `id` and `check` (a shell
command that decides correctness, run like `--check`: exit 0 is right). A malformed file is one error
naming the line."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ttc_cli.errors import UsageError


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    answer: str
    check: str | None = None


def load(path: Path, limit: int | None = None) -> tuple[list[Item], str]:
    """The file's questions (the first `limit`), and a hash of its content (what a bench run is of)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}", "pass a JSONL or CSV file") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text", "save it as UTF-8") from None
    rows = _csv(path, text) if path.suffix.lower() == ".csv" else _jsonl(path, text)
    items = [_item(path, line, row) for line, row in rows]
    if not items:
        raise UsageError(f"{path} holds no questions", 'one per line: {"question": ..., "answer": ...}')
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise UsageError(f"{path}: the id '{dup}' appears twice", "give every question its own id")
    return items[:limit] if limit else items, hashlib.sha256(raw).hexdigest()[:16]


def _jsonl(path: Path, text: str) -> list[tuple[int, dict]]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UsageError(f"{path}:{n}: not valid JSON ({e.msg})", "one JSON object per line") from None
        if not isinstance(row, dict):
            raise UsageError(f"{path}:{n}: not a JSON object", 'write {"question": ..., "answer": ...}')
        out.append((n, row))
    return out


def _csv(path: Path, text: str) -> list[tuple[int, dict]]:
    try:
        reader = csv.DictReader(text.splitlines())
        return [(n, row) for n, row in enumerate(reader, 2)]
    except csv.Error as e:
        raise UsageError(f"{path}: not valid CSV ({e})", "a header row with question,answer") from None


def _item(path: Path, line: int, row: dict) -> Item:
    question, answer, check = row.get("question"), row.get("answer"), row.get("check")
    if not isinstance(question, str) or not question.strip():
        raise UsageError(f"{path}:{line}: no question", 'every row needs a non-empty "question"')
    if answer is None or isinstance(answer, dict | list) or (check is None and str(answer).strip() == ""):
        raise UsageError(f"{path}:{line}: no answer", 'every row needs an "answer" (or a "check" command)')
    if check is not None and not isinstance(check, str):
        raise UsageError(f'{path}:{line}: "check" must be a shell command (a string)', "or leave it out")
    return Item(str(row.get("id") or f"line-{line}"), question, str(answer), check or None)
