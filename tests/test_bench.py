"""`ttc bench` on the real default model, its file errors, its figures, and `--fit`.

The runs answer through grammars (conftest), so which questions are right does not depend on the host:
every reply says 42, and the gold answers say which questions that makes right.
"""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ANSWER_42, OUTSIDE, TTC, run_ttc, write_prompt

from ttc_cli.answers.calibration import platt, platt_fit
from ttc_cli.bench.fit import Recorded, calibrate_greedy, fit
from ttc_cli.bench.metrics import auroc, calibration_error, wilson

GOLDS = ["42", "42", "7", "42", "9"]  # a model that always says 42 gets 3 of 5


def questions(tmp_path: Path, golds: list[str] = GOLDS) -> Path:
    path = tmp_path / "q.jsonl"
    rows = [{"id": f"q{i}", "question": f"What is {i} + 1?", "answer": g} for i, g in enumerate(golds)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def bench(*args: str) -> subprocess.CompletedProcess:
    return run_ttc("bench", *args, timeout=600)


# ---- pure figures ---------------------------------------------------------------------------------
def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson(3, 5)
    assert abs(low - 0.2307) < 1e-3 and abs(high - 0.8824) < 1e-3
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0


def test_auroc_is_the_share_of_right_wrong_pairs_ordered_right():
    assert auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.3, 0.4], [True, True]) is None


def test_fit_gives_each_difficulty_the_cheapest_best_n_and_reports_on_the_other_half():
    # Easy questions (all agree) are right with 4 samples; hard ones need 8 (the right answer is a late
    # plurality). Tokens: 10 per sample.
    easy = ["5"] * 8
    hard = ["1", "2", "3", "4", "9", "9", "9", "9"]
    qs = [Recorded(f"e{i}", "5", tuple(easy), (10,) * 8) for i in range(6)]
    qs += [Recorded(f"h{i}", "9", tuple(hard), (10,) * 8) for i in range(6)]
    result = fit(qs, cap=None, seed=1)
    assert result["routes"]["easy"] == 4 and result["routes"]["hard"] == 8
    assert result["fit_questions"] + result["test_questions"] == 12
    held = result["fitted_auto"]
    assert held["accuracy"] == 1.0 and held["tokens"] < 80  # easy ones stop at 4
    assert result["all_fixed"]["self-consistency@8 (replayed)"]["accuracy"] == 1.0
    capped = fit(qs, cap=50, seed=1)
    assert capped["routes"]["hard"] == 4  # 8 samples cost 80 > 50 tokens


def test_platt_fit_recovers_the_curve_that_drew_the_labels():
    rng = np.random.default_rng(0)
    logprobs = rng.uniform(-0.4, 0.0, 4000)
    right = rng.random(4000) < 1 / (1 + np.exp(-(20 * logprobs + 3)))
    slope, intercept = platt_fit(logprobs.tolist(), right.tolist())
    assert abs(slope - 20) < 3 and abs(intercept - 3) < 0.6
    # Labels all alike: finite, and the fitted chance leans the labels' way.
    assert 0.5 < platt(*platt_fit([-0.1, -0.2, -0.3], [True, True, True]), -0.2) < 1.0


def test_greedy_calibration_fits_one_half_and_scores_the_other():
    # Right answers have the higher log-probabilities; question 7 stated no answer and must say 0.
    runs = [(f"q{i}", i % 2 == 0, -0.05 if i % 2 == 0 else -0.3, True) for i in range(20)]
    runs[7] = ("q7", False, -0.01, False)
    result = calibrate_greedy(runs, seed=3)
    assert result is not None and result["fit_runs"] + result["test_runs"] <= 20 and result["slope"] > 0
    assert result["test_auroc"] > 0.9 and result["test_calibration_error"] < 0.2
    assert calibrate_greedy([("a", True, -0.1, True), ("b", False, -0.2, False)], seed=0) is None


def test_plot_without_matplotlib_says_how_to_get_it(monkeypatch, tmp_path: Path):
    from ttc_cli.errors import UsageError
    from ttc_cli.ui.bench_view import plot_file

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without [plot] has
    with pytest.raises(UsageError, match=r"pip install matplotlib"):
        plot_file(tmp_path / "p.png", [])


# ---- the file -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, needle",
    [
        ('{"question": "a", "answer": "1"}\n{"question": "b", "answer": \n', "q.jsonl:2: not valid JSON"),
        ('{"question": "a", "answer": "1"}\n["a", 1]\n', "q.jsonl:2: not a JSON object"),
        ('{"answer": "1"}\n', "q.jsonl:1: no question"),
        ('{"question": "a"}\n', "q.jsonl:1: no answer"),
        ("", "holds no questions"),
    ],
)
def test_a_malformed_file_is_one_line_naming_the_line(tmp_path: Path, content: str, needle: str):
    (tmp_path / "q.jsonl").write_text(content)
    done = bench(str(tmp_path / "q.jsonl"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and needle in done.stderr


def test_csv_files_are_read_too(tmp_path: Path, user_path: Path):
    path = tmp_path / "q.csv"
    path.write_text('question,answer\n"What is 40 + 2?",42\n"What is 1 + 1?",2\n')
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    done = bench(str(path), "-s", "greedy", "--task", task, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["configs"][0]["right"] == 1


def test_calibration_error_weighs_each_bins_gap_by_its_answers():
    # Bin 0.8: four answers said 0.8 and three were right (gap 0.05); bin 0.3: one said 0.3 and was
    # wrong (gap 0.3). (4 * 0.05 + 1 * 0.3) / 5 = 0.1.
    conf, right = [0.8, 0.8, 0.8, 0.8, 0.3], [True, True, True, False, False]
    assert abs(calibration_error(conf, right) - 0.1) < 1e-9
    assert calibration_error([1.0, 1.0], [True, True]) == 0.0  # 1.0 falls in the top bin
    assert calibration_error([], []) is None


# ---- a real bench ---------------------------------------------------------------------------------
def test_two_configurations_give_the_table_json_csv_and_plot(tmp_path: Path, user_path: Path):
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    file = questions(tmp_path)
    args = [str(file), "-s", "greedy", "-s", "self-consistency", "-n", "3", "--task", task]
    done = bench(*args, "--csv", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "r.svg"))
    assert done.returncode == 0, done.stderr
    assert "greedy · medium" in done.stdout and "self-consistency · medium" in done.stdout
    assert "60.0" in done.stdout  # 3 of 5
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["strategy"] for r in rows] == ["greedy", "self-consistency"] and rows[1]["right"] == "3"
    assert (tmp_path / "r.svg").read_text().lstrip().startswith("<?xml")
    data = json.loads(bench(*args, "--json").stdout)  # everything resumed from the log: no model runs
    assert all(r["resumed"] for r in data["runs"]) and len(data["runs"]) == 10
    sc = data["configs"][1]
    assert (
        sc["accuracy"] == 0.6 and sc["pass_at_n"] == 0.6 and sc["accuracy_95"][0] < 0.6 < sc["accuracy_95"][1]
    )
    assert sc["tokens_per_question"] > 0 and sc["questions"] == 5
    # Calibration of the stated confidence: none for greedy, which states none.
    assert data["configs"][0]["calibration_error"] is None and rows[0]["calibration_error"] == ""
    voted = [r for r in data["runs"] if r["config"].startswith("self-consistency")]
    assert all(0 < r["confidence"] < 1 for r in voted)
    expected = calibration_error([r["confidence"] for r in voted], [r["right"] for r in voted])
    assert sc["calibration_error"] == round(expected, 4) > 0  # 3 of 5 right, each stated above 0.6
    assert "ECE" in done.stdout
    assert set(sc["auroc"]) == {"mean_logprob", "trace_confidence", "score"} and "auroc_score" in rows[1]
    assert "auroc_trace_confidence" in rows[1]


def test_ctrl_c_keeps_what_finished_and_the_same_command_resumes(tmp_path: Path, user_path: Path):
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    args = [str(questions(tmp_path)), "-s", "self-consistency", "-n", "2", "--task", task, "--json"]
    proc = subprocess.Popen([*TTC, "bench", *args], cwd=OUTSIDE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    db = user_path / "runs.sqlite"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] >= 2:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    first = json.loads(out)
    kept = len(first["runs"])
    assert 2 <= kept < 5 and "resumes" in err
    done = bench(*args)
    assert done.returncode == 0, done.stderr
    again = json.loads(done.stdout)
    assert sum(r["resumed"] for r in again["runs"]) == kept and len(again["runs"]) == 5
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 5


def test_fit_writes_a_profile_that_ask_then_uses(tmp_path: Path, user_path: Path):
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    file = questions(tmp_path, ["42", "7", "42", "8", "42", "9"])
    done = bench(str(file), "-s", "self-consistency", "-s", "greedy", "-n", "8", "--no-early-stop",
                 "--task", task, "--fit", "mine", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    fitted = json.loads(done.stdout)["fit"]
    profile = user_path / "profiles" / "mine.yaml"
    assert fitted["profile"] == str(profile) and profile.is_file()
    assert fitted["routes"]["easy"] == 4  # every sample says 42: four agree, more change nothing
    asked = run_ttc(
        "ask", "What is 12 + 30?", "-s", "auto", "--profile", "mine", "--task", task, "-n", "8", "--json"
    )
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["route"]["difficulty"] == "easy"
    # Greedy's confidence: fitted on the greedy runs' log-probabilities and stated by `ask` with the profile
    calibrated = fitted["greedy_confidence"]
    assert calibrated["fit_runs"] >= 2 and calibrated["test_runs"] >= 3
    greedy = run_ttc("ask", "What is 12 + 30?", "-s", "greedy", "--profile", "mine", "--task", task, "--json")
    assert greedy.returncode == 0, greedy.stderr
    said = json.loads(greedy.stdout)
    candidate = said["candidates"][0]
    assert said["confidence"] == pytest.approx(
        platt(calibrated["slope"], calibrated["intercept"], candidate["mean_logprob"]), abs=0.01
    )
    plain = run_ttc("ask", "What is 12 + 30?", "-s", "greedy", "--task", task, "--json")
    assert json.loads(plain.stdout)["confidence"] is None  # no calibration in the default profile


def test_auto_follows_a_profiles_routes(user_path: Path):
    """Digits drawn at random rarely agree, so the probe says medium or hard; each gets the profile's
    number of samples rather than the built-in N/2 and N."""
    (user_path / "profiles").mkdir()
    (user_path / "profiles" / "routed.yaml").write_text("auto:\n  routes: {medium: 6, hard: 5}\n")
    task = write_prompt(user_path, "digit", 'root ::= "The answer is " [0-9] "."')
    done = run_ttc("ask", "Pick a digit.", "-s", "auto", "--profile", "routed", "--task", task, "-n", "16",
                   "-t", "1.5", "--top-k", "0", "--no-early-stop", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    route = json.loads(done.stdout)["route"]
    expected = {"easy": 4, "medium": 6, "hard": 5}[route["difficulty"]]
    assert route["samples"] == expected and len(json.loads(done.stdout)["candidates"]) == expected
