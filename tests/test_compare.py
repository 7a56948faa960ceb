"""`ttc compare` end to end on the real model: one load per model, the same schema as `ask --json`."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from conftest import ENDLESS, OUTSIDE, TTC, run_ttc, write_prompt

from ttc_cli.models.files import default_model_path
from ttc_cli.strategies import STRATEGIES

QUESTION = "What is 6 + 7?"


def test_compare_runs_every_strategy_on_one_model_load():
    done = run_ttc("compare", QUESTION, "-b", "150", "-n", "2", "--max-tokens", "60", "--seed", "3", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    runs = json.loads(done.stdout)
    assert [r["strategy"] for r in runs] == list(STRATEGIES)
    assert [r["strategy"] for r in runs[:3]] == ["greedy", "best-of-n", "self-consistency"]
    for r in runs:
        assert {"answer", "budget", "usage", "timing", "candidates", "votes", "stopped_because"} <= set(r)
        assert r["budget"]["limit"] == 150 and 0 < r["budget"]["spent"] <= 150
        assert r["seed"] == 3
    loads = [r["timing"]["load_s"] for r in runs]
    assert loads[0] > 0 and loads[1:] == [0.0] * (len(runs) - 1)  # the model is loaded once and shared
    # same seed, same sampler: best-of-n and self-consistency drew the very same candidates
    assert [c["text"] for c in runs[1]["candidates"]] == [c["text"] for c in runs[2]["candidates"]]


def test_compare_table_on_stdout_and_a_model_grid():
    model = str(default_model_path())
    done = run_ttc("compare", QUESTION, "-s", "greedy", "-m", model, "-m", model, "-b", "80", "--seed", "1")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    rows = [line for line in done.stdout.splitlines() if "greedy" in line]
    assert len(rows) == 2 and all("SmolLM2-135M-Instruct.Q4_1.gguf" in r for r in rows)
    assert "agrees" in done.stdout and "/80" in done.stdout


def test_compare_checks_every_input_before_running_anything():
    done = run_ttc("compare", QUESTION, "-s", "greedy", "-s", "nope")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("ttc: error: unknown strategy 'nope'") and done.stderr.count("\n") == 1
    done = run_ttc("compare", QUESTION, "-m", str(default_model_path()), "-m", "/no/such.gguf")
    assert done.returncode == 2 and done.stdout == ""
    assert "model file not found: /no/such.gguf" in done.stderr and "Traceback" not in done.stderr


def test_ctrl_c_in_compare_keeps_the_runs_so_far(user_path):
    endless = write_prompt(user_path, "endless", ENDLESS)  # the first run cannot end before the signal
    proc = subprocess.Popen(
        [*TTC, "compare", "Write a long story about a dragon.", "-s", "greedy",
         "-s", "self-consistency", "-n", "4", "--max-tokens", "3000", "-b", "12000", "--json", "--seed", "2",
         "--task", endless],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=OUTSIDE,
    )  # fmt: skip
    time.sleep(5)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err
    runs = json.loads(out)
    assert len(runs) == 1 and runs[0]["strategy"] == "greedy" and runs[0]["stopped_because"] == "interrupted"
    assert all(r["budget"]["spent"] <= 12000 for r in runs)
