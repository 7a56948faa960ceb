"""A bench's questions: JSONL (gzipped too) or CSV with `question` and `answer`, and optionally `id` and
`check` (a shell command that decides correctness, run like `--check`: exit 0 is right). A malformed file
is one error naming the line.

HumanEval's own format is read as it ships (`task_id`, `prompt`, `test`, `entry_point`): the prompt is the
question, and its hidden tests decide correctness (`bench.hidden`); they are never shown to a run."""

from __future__ import annotations

import csv
import gzip
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
    test: str | None = None  # HumanEval: hidden tests that define `check(candidate)`
    entry_point: str | None = None  # HumanEval: the function the tests call


ONLY = ("even", "odd")


def load(path: Path, limit: int | None = None, only: str | None = None) -> tuple[list[Item], str]:
    """The file's questions (`only` those at even or odd positions, then the first `limit`), and a hash
    of its content (what a bench run is of)."""
    try:
        raw = path.read_bytes()
        if path.suffix.lower() == ".gz":
            raw = gzip.decompress(raw)
            path = path.with_suffix("")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}", "pass a JSONL or CSV file") from None
    except (EOFError, gzip.BadGzipFile):
        raise UsageError(f"{path} is not a gzip file", "pass a JSONL or CSV file, or gzip one") from None
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
    if only is not None:
        items = items[ONLY.index(only) :: 2]
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
    if "prompt" in row and "test" in row and "question" not in row:
        return _humaneval(path, line, row)
    question, answer, check = row.get("question"), row.get("answer"), row.get("check")
    if not isinstance(question, str) or not question.strip():
        raise UsageError(f"{path}:{line}: no question", 'every row needs a non-empty "question"')
    if answer is None or isinstance(answer, dict | list) or (check is None and str(answer).strip() == ""):
        raise UsageError(f"{path}:{line}: no answer", 'every row needs an "answer" (or a "check" command)')
    if check is not None and not isinstance(check, str):
        raise UsageError(f'{path}:{line}: "check" must be a shell command (a string)', "or leave it out")
    return Item(str(row.get("id") or f"line-{line}"), question, str(answer), check or None)


def _humaneval(path: Path, line: int, row: dict) -> Item:
    prompt, test, entry = row.get("prompt"), row.get("test"), row.get("entry_point")
    for name, value in (("prompt", prompt), ("test", test), ("entry_point", entry)):
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f'{path}:{line}: "{name}" must be a non-empty string', "HumanEval's format")
    return Item(str(row.get("task_id") or f"line-{line}"), str(prompt), "", test=test, entry_point=entry)
