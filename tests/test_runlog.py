"""The run log: runs stored and shown exactly, replayed to the same frame, migrated, written by several
processes at once, and never costing the answer when it cannot be written."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import ANSWER_42, OUTSIDE, run_ttc, write_prompt
from rich.console import Console

from ttc_cli import runlog
from ttc_cli.event_codec import decode, encode
from ttc_cli.events import (
    Candidate,
    EarlyStop,
    Execution,
    Final,
    TokensGenerated,
    TraceCancelled,
    TreeNode,
    Vote,
)


def test_events_round_trip_exactly():
    c = Candidate(3, "x = 42", 7, "stop", -0.5, "42", "42", 0.1, (("wait", 12),), 2.5, "program",
                  Execution("ok", "42\n", 0.2))  # fmt: skip
    final = Final(
        "42", "x = 42", "vote", "early-stop", (c,), (Vote("42", "42", 2, 2.0),), 3,
        EarlyStop("beta", "d", 2, 4, 10, 20), None, (TreeNode(0, None, "s", 0.5, None, "open", 3),),
        (("tree_tokens", 9),), 0.8,
    )  # fmt: skip
    for event in (final, TokensGenerated(5, ((0, 3), (1, 2)))):
        assert decode(json.loads(json.dumps(encode(event)))) == event


def test_a_log_from_before_the_renames_still_decodes_its_trace_confidences():
    """Schema 1 named a candidate's DeepConf score, and a cancelled trace's, `confidence`."""
    old = {"_": "Candidate", "index": 0, "text": "7", "tokens": 3, "finish_reason": "stop",
           "mean_logprob": -0.2, "confidence": 11.5}  # fmt: skip
    assert decode(old).trace_confidence == 11.5
    cancelled = decode({"_": "TraceCancelled", "index": 2, "tokens": 40, "confidence": 5.1, "threshold": 6.2})
    assert cancelled == TraceCancelled(2, 40, 5.1, 6.2)
    final = decode({"_": "Final", "answer": "7", "response": "7", "selection": "v", "stopped_because": "x",
                    "confidence": 0.8})  # fmt: skip
    assert final.confidence == 0.8  # the answer's: not renamed


def test_an_event_type_this_ttc_does_not_know_is_skipped():
    assert decode({"_": "FromTheFuture", "x": 1}) is None


def test_ask_is_logged_and_show_prints_its_json_exactly(user_path: Path):
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    done = run_ttc("ask", "What is 12 + 30?", "--task", task, "-n", "2", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(run_ttc("runs", "--json").stdout)
    assert len(listed) == 1 and listed[0]["command"] == "ask" and listed[0]["answer"] == "42"
    shown = run_ttc("show", str(listed[0]["id"]))
    assert shown.returncode == 0 and shown.stdout == done.stdout
    assert run_ttc("ask", "What is 12 + 30?", "--task", task, "-n", "2", "--no-log").returncode == 0
    assert run_ttc("ask", "What is 12 + 30?", "--task", task, "-n", "2", env={"TTC_LOG": "0"}).returncode == 0
    assert len(json.loads(run_ttc("runs", "--json").stdout)) == 1


def test_show_of_an_unknown_id_is_one_line():
    done = run_ttc("show", "999")
    assert (
        done.returncode == 2
        and done.stderr.startswith("ttc: error: no run 999")
        and "Traceback" not in done.stderr
    )


def test_a_log_that_cannot_be_written_costs_a_warning_not_the_answer(user_path: Path):
    (user_path / runlog.FILE).mkdir()  # a directory where the database should be: sqlite cannot open it
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    done = run_ttc("ask", "What is 12 + 30?", "--task", task, "-n", "2")
    assert done.returncode == 0 and done.stdout.strip() == "42"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ttc: warning: the run was not logged")


def test_replay_renders_the_final_frame_the_live_run_showed(engine, user_path: Path):
    """The same run drawn twice at a fixed width: live, from its events as they came, and replayed from
    the log. The clocks are the recorder's offsets in both, so the frames must match to the character."""
    from ttc_cli.cli_runs import replay_state
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build
    from ttc_cli.runner import execute, prepare
    from ttc_cli.ui.terminal import new_state
    from ttc_cli.ui.widgets import run_view

    plan = build("What is 12 + 30?", "self-consistency", PlanOptions(samples=3, seed=5, max_tokens=24))
    ctx = prepare(plan, engine)
    live = new_state(plan, engine)
    recorder = runlog.Recorder()
    live.clock = lambda: recorder.events[-1][0] if recorder.events else 0.0

    def hear(event):  # type: ignore[no-untyped-def]
        recorder(event)
        live.update(event)

    data = execute(plan, ctx, hear).to_json()
    run_id = runlog.write("ask", data, recorder, {})
    replayed = replay_state(json.loads(runlog.get(run_id).result))
    clock = [0.0]
    replayed.clock = lambda: clock[0]
    for offset, event in runlog.events_of(run_id):
        clock[0] = offset
        replayed.update(event)

    def frame(state) -> str:  # type: ignore[no-untyped-def]
        console = Console(file=io.StringIO(), width=100, color_system=None)
        console.print(run_view(state))
        return console.file.getvalue()  # type: ignore[attr-defined]

    assert frame(replayed) == frame(live)
    assert "tokens" in frame(live) and len(runlog.events_of(run_id)) == len(recorder.events)


def test_a_first_version_log_is_migrated_without_losing_a_run(tmp_path: Path):
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(runlog.MIGRATIONS[0] + "PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO runs (started, version, command, question, strategy, model, model_info, options,"
        " stopped_because, result, events) VALUES (1, '0.0.9', 'ask', 'q', 'greedy', 'm', '{}', '{}',"
        " 'completed', '{\"answer\": \"7\"}', ?)",
        (zlib.compress(b"[]"),),
    )
    conn.commit()
    conn.close()
    with runlog.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == runlog.VERSION
        assert conn.execute("SELECT result, bench_key FROM runs").fetchall() == [('{"answer": "7"}', None)]


def test_a_log_from_a_newer_ttc_is_refused_as_a_warning(tmp_path: Path, capsys):
    db = tmp_path / "new.sqlite"
    sqlite3.connect(db).execute(f"PRAGMA user_version = {runlog.VERSION + 1}").connection.close()
    assert runlog.write("ask", {"answer": "1"}, None, {}, db=db) is None
    assert "newer ttc" in capsys.readouterr().err


def test_four_processes_writing_at_once_lose_nothing(tmp_path: Path):
    db = tmp_path / "shared.sqlite"
    code = (
        "import sys; from pathlib import Path; from ttc_cli import runlog\n"
        "for i in range(25):\n"
        "    assert runlog.write('ask', {'answer': str(i), 'question': sys.argv[1]}, runlog.Recorder(), {},"
        " db=Path(sys.argv[2])) is not None\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"writer {w}", str(db)], cwd=OUTSIDE, stderr=subprocess.PIPE
        )
        for w in range(4)
    ]
    for p in procs:
        assert p.wait(120) == 0, p.stderr.read() if p.stderr else ""
    with runlog.connect(db) as conn:
        counts = dict(conn.execute("SELECT question, COUNT(*) FROM runs GROUP BY question").fetchall())
    assert counts == {f"writer {w}": 25 for w in range(4)}


@pytest.mark.parametrize("days, left", [(0, 0), (30, 2)])
def test_prune_removes_runs_older_than_asked(days: float, left: int, user_path: Path):
    for _ in range(2):
        runlog.write("ask", {"answer": "1"}, None, {})
    done = run_ttc("runs", "--prune", str(days), "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == left
