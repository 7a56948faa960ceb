"""The run log: every `ask`, `compare` and `bench` run, kept in SQLite in the app dir (`runs.sqlite`).

A row holds when and how the run was made (ttc version, question, options, model path, size and a hash of
its first MiB, or a server's URL and name), its final JSON exactly as `--json` printed it, why it stopped,
and every event with its time offset (zlib-compressed JSON, `event_codec`), so `ttc replay` can re-render
the live view. `ttc bench` finds the runs it already made here (their `bench_key`) and resumes after them.

WAL mode and a busy timeout let several ttc processes write at once; a log that cannot be written (a
read-only dir, a full disk, a lock held too long) costs one warning line on stderr, never the answer.
`--no-log` or `TTC_LOG=0` turns it off. The schema is versioned with `PRAGMA user_version`; `MIGRATIONS[i]`
takes a database from version i to i + 1.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ttc_cli import __version__
from ttc_cli.event_codec import decode, encode
from ttc_cli.events import Event

FILE = "runs.sqlite"
BUSY_MS = 30_000

MIGRATIONS = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started REAL NOT NULL,
        version TEXT NOT NULL,
        command TEXT NOT NULL,
        question TEXT NOT NULL,
        strategy TEXT NOT NULL,
        model TEXT NOT NULL,
        model_info TEXT NOT NULL,
        options TEXT NOT NULL,
        stopped_because TEXT NOT NULL,
        result TEXT NOT NULL,
        events BLOB NOT NULL
    );
    CREATE INDEX runs_started ON runs (started);
    """,
    """
    ALTER TABLE runs ADD COLUMN bench_key TEXT;
    CREATE INDEX runs_bench_key ON runs (bench_key);
    """,
)
VERSION = len(MIGRATIONS)


def enabled(no_log: bool = False) -> bool:
    return not no_log and os.environ.get("TTC_LOG", "1") != "0"


def path() -> Path:
    from ttc_cli.yaml_layers import user_path

    return user_path() / FILE


@contextmanager
def connect(db: Path | None = None) -> Iterator[sqlite3.Connection]:
    """A connection to the log, migrated to the current schema, committing on success."""
    db = db or path()
    db.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(db, timeout=BUSY_MS / 1000, isolation_level=None)) as conn:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        migrate(conn)
        yield conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > VERSION:
        raise sqlite3.DatabaseError(
            f"the run log is from a newer ttc (schema {version}, this one knows {VERSION})"
        )
    if version == VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it done
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for step in MIGRATIONS[version:]:
            for statement in filter(str.strip, step.split(";")):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@dataclass
class Recorder:
    """Hears a run's events (beside the live view) and keeps them with their time offsets."""

    start: float = field(default_factory=time.perf_counter)
    events: list[tuple[float, Any]] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append((round(time.perf_counter() - self.start, 4), encode(event)))

    def packed(self) -> bytes:
        return zlib.compress(json.dumps(self.events, separators=(",", ":")).encode())


def model_info(model: str, backend: dict[str, Any] | None = None) -> dict[str, Any]:
    """What identifies the model a run used: a file's path, size and a hash of its first MiB; a server's
    URL and model name."""
    if backend and backend.get("name") == "openai":
        return {"server": backend.get("url"), "model": model}
    p = Path(model)
    try:
        with p.open("rb") as f:
            head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
        return {"path": str(p), "bytes": p.stat().st_size, "head_sha256": head}
    except OSError:
        return {"path": model}


def write(
    command: str,
    result: dict[str, Any],
    recorder: Recorder | None,
    options: dict[str, Any],
    bench_key: str | None = None,
    db: Path | None = None,
) -> int | None:
    """Store one finished run; returns its id, or None (with a warning on stderr) when it could not."""
    row = (
        time.time(),
        __version__,
        command,
        result.get("question", ""),
        result.get("strategy", ""),
        result.get("model", ""),
        json.dumps(model_info(result.get("model", ""), result.get("backend"))),
        json.dumps(options, default=str),
        result.get("stopped_because", ""),
        json.dumps(result, ensure_ascii=False),
        recorder.packed() if recorder is not None else zlib.compress(b"[]"),
        bench_key,
    )
    try:
        with connect(db) as conn:
            cur = conn.execute(
                "INSERT INTO runs (started, version, command, question, strategy, model, model_info, options,"
                " stopped_because, result, events, bench_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                row,
            )
            return cur.lastrowid
    except (sqlite3.Error, OSError) as e:
        sys.stderr.write(
            f"ttc: warning: the run was not logged ({e}); --no-log or TTC_LOG=0 turns the log off\n"
        )
        return None


@dataclass(frozen=True)
class Run:
    id: int
    started: float
    command: str
    question: str
    strategy: str
    model: str
    stopped_because: str
    result: str  # the JSON text exactly as --json printed it
    bench_key: str | None

    @property
    def data(self) -> dict[str, Any]:
        return dict(json.loads(self.result))


COLUMNS = "id, started, command, question, strategy, model, stopped_because, result, bench_key"


def recent(
    limit: int = 20, strategy: str | None = None, model: str | None = None, text: str | None = None
) -> list[Run]:
    where, args = [], []
    for column, value in (("strategy", strategy), ("model", model), ("question", text)):
        if value:
            where.append(f"{column} LIKE ?")
            args.append(f"%{value}%")
    clause = "WHERE " + " AND ".join(where) if where else ""
    sql = f"SELECT {COLUMNS} FROM runs {clause} ORDER BY id DESC LIMIT ?"
    with connect() as conn:
        return [Run(*r) for r in conn.execute(sql, (*args, limit))]


def get(run_id: int) -> Run | None:
    with connect() as conn:
        row = conn.execute(f"SELECT {COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
    return Run(*row) if row else None


def events_of(run_id: int) -> list[tuple[float, Event]]:
    """A run's events with their time offsets (those this ttc does not know are left out)."""
    with connect() as conn:
        row = conn.execute("SELECT events FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        return []
    out = []
    for offset, raw in json.loads(zlib.decompress(row[0])):
        event = decode(raw)
        if isinstance(event, Event):
            out.append((float(offset), event))
    return out


def bench_done(keys: list[str], db: Path | None = None) -> dict[str, dict[str, Any]]:
    """The finished (not interrupted) runs a bench already made, by bench key: their final JSON."""
    found: dict[str, dict[str, Any]] = {}
    with connect(db) as conn:
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            sql = (
                "SELECT bench_key, result FROM runs WHERE stopped_because != 'interrupted'"
                f" AND bench_key IN ({','.join('?' * len(chunk))}) ORDER BY id"
            )
            for key, result in conn.execute(sql, chunk):
                found[key] = json.loads(result)
    return found


def prune(older_than_days: float) -> int:
    """Delete runs older than the given age; returns how many went."""
    with connect() as conn:
        cur = conn.execute("DELETE FROM runs WHERE started < ?", (time.time() - older_than_days * 86400,))
        conn.execute("VACUUM")
        return cur.rowcount
