"""End-to-end tests of the `ttc` command line on the real default model (SmolLM2-135M via llama.cpp).

Every test runs `python -m ttc_cli` as a real process, so stdout, stderr and exit codes are the ones a shell
pipeline sees. stderr is never a terminal here, so a successful run must write nothing to it.
"""

from __future__ import annotations

import json
import random
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ANSWER_42, ENDLESS, OUTSIDE, TTC, run_ttc, write_prompt

from ttc_cli.strategies import STRATEGIES as REGISTRY

Q = "What is 2+3?"
STRATEGIES = ("greedy", "best-of-n", "self-consistency")


def assert_one_line_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2, nothing on stdout, exactly one `ttc: error:` line on stderr, no traceback anywhere."""
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and done.stderr.endswith("\n"), done.stderr
    assert lines[0].startswith("ttc: error:"), done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def ask_json(*args: str, stdin: str | None = None) -> dict:
    done = run_ttc("ask", *args, "--json", stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.count("\n") == 1  # one JSON object on one line
    data = json.loads(done.stdout)
    assert isinstance(data, dict)
    return data


def write_user_file(user_path: Path, kind: str, name: str, content: str | bytes) -> Path:
    folder = user_path / kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ---- pipelines -------------------------------------------------------------------------------------------
def test_stdout_is_one_answer_line_and_stderr_is_silent_off_a_terminal():
    done = run_ttc("ask", Q, "--seed", "1", "-b", "200")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.split("\n")
    assert len(lines) == 2 and lines[1] == "", done.stdout  # exactly one line, newline-terminated
    assert lines[0].strip() == lines[0] and lines[0]


def test_json_schema_and_token_accounting():
    data = ask_json(Q, "--seed", "1", "-b", "200", "-n", "3", "--max-tokens", "64", "--no-early-stop")
    for key in ("answer", "strategy", "model", "budget", "usage", "timing", "candidates", "votes"):
        assert key in data, key
    assert data["strategy"] == "self-consistency"
    assert data["model"].endswith(".gguf")
    assert isinstance(data["answer"], str) and data["answer"].strip()
    assert data["stopped_because"] in {"completed", "budget", "early-stop"}

    budget, usage, timing = data["budget"], data["usage"], data["timing"]
    assert budget["limit"] == 200
    assert 0 < budget["spent"] <= budget["limit"]
    assert set(usage) >= {"prompt_tokens", "prompt_eval_tokens", "generated_tokens"}
    assert usage["prompt_tokens"] > 0 and usage["prompt_eval_tokens"] >= usage["prompt_tokens"] - 1
    assert set(timing) >= {"load_s", "prefill_s", "decode_s", "total_s"}
    assert all(isinstance(v, int | float) and v >= 0 for v in timing.values())
    assert timing["total_s"] >= timing["load_s"]

    cands = data["candidates"]
    assert len(cands) == 3
    for c in cands:
        assert {"text", "answer", "tokens", "score"} <= set(c)
        assert isinstance(c["text"], str) and isinstance(c["tokens"], int) and 0 <= c["tokens"] <= 64
    assert sum(c["tokens"] for c in cands) == budget["spent"] == usage["generated_tokens"]
    assert isinstance(data["votes"], list)
    if data["votes"]:
        assert data["answer"] == max(data["votes"], key=lambda v: v["count"])["answer"]
        # The vote's confidence: (the winner's votes + 1) over (the samples that ended on their own + 2).
        ended = sum(c["finish_reason"] in ("stop", "length") for c in cands)
        assert data["confidence"] == pytest.approx((data["votes"][0]["count"] + 1) / (ended + 2), abs=1e-3)
    assert data["execution"] is None  # nothing ran: execution is off until asked for
    assert all(c["kind"] == "text" and c["execution"] is None for c in cands)


@pytest.mark.parametrize("args", [("-",), ()], ids=["ask-dash", "ask-no-argument"])
def test_the_question_can_come_from_stdin(args):
    data = ask_json(*args, "-s", "greedy", "-b", "30", stdin="What is 4 + 4?\n")
    assert data["question"] == "What is 4 + 4?"
    assert data["task"] == "math"  # the piped text, not an empty one, chose the prompt
    assert data["budget"]["spent"] > 0


def test_full_prints_the_response_the_json_reports_as_chosen():
    args = (Q, "--seed", "3", "-b", "150", "-n", "3", "--max-tokens", "64")
    data = ask_json(*args)
    full = run_ttc("ask", *args, "--full")
    assert full.returncode == 0 and full.stderr == ""
    assert data["response"].strip()
    assert full.stdout == data["response"].rstrip() + "\n"


def test_the_same_seed_gives_the_same_candidates():
    # --no-early-stop: whether two samples agree soon enough to stop depends on the words this host's
    # kernels make the model write; what is tested is that a seed fixes them.
    args = ("Name 3 colours of the rainbow.", "--seed", "11", "-b", "160", "-n", "3", "--max-tokens", "48")
    args += ("--no-early-stop",)
    first, second = ask_json(*args), ask_json(*args)
    texts = [c["text"] for c in first["candidates"]]
    assert texts == [c["text"] for c in second["candidates"]]
    assert len(texts) == 3 and any(texts)
    assert first["budget"]["spent"] == second["budget"]["spent"]


# ---- bad input: exit 2, one line on stderr -------------------------------------------------------------
LONG_QUESTION = "Please consider this sentence very carefully now. " * 57  # ~400 words


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        pytest.param(("-s", "nope"), None, "unknown strategy 'nope'", id="strategy-nope"),
        pytest.param(("-b", "0"), None, "invalid budget '0'", id="budget-0"),
        pytest.param(("-b", "-5"), None, "invalid budget '-5'", id="budget-negative"),
        pytest.param(("-b", "abc"), None, "invalid budget 'abc'", id="budget-abc"),
        pytest.param(("-b", "1.5"), None, "invalid budget '1.5'", id="budget-fraction"),
        pytest.param(("-n", "0"), None, "between 1 and 255", id="samples-0"),
        pytest.param(("-n", "1000"), None, "between 1 and 255", id="samples-1000"),
        pytest.param(
            ("-n", "64", "--max-tokens", "512", "--ctx", "1024"),
            None,
            "more than the 1024 available",
            id="samples-over-kv-cache",
        ),
        pytest.param(("--temperature", "-1"), None, "--temperature must be 0 or more", id="temperature-neg"),
        pytest.param(("--max-tokens", "0"), None, "--max-tokens must be positive", id="max-tokens-0"),
        pytest.param(("--vote", "nope"), None, "unknown vote 'nope'", id="vote-nope"),
        pytest.param(("--scorer", "nope"), None, "unknown scorer 'nope'", id="scorer-nope"),
        pytest.param(("--profile", "nosuch"), None, "unknown profile 'nosuch'", id="profile-nosuch"),
        pytest.param(("--task", "nosuch"), None, "unknown task 'nosuch'", id="task-nosuch"),
        pytest.param(("--frobnicate",), None, "No such option: --frobnicate", id="unknown-option"),
        pytest.param(
            ("--temperature", "nan", "-b", "20", "-n", "2"),
            None,
            "--temperature",
            id="temperature-nan",
        ),
        pytest.param(("--temperature", "inf"), None, "--temperature", id="temperature-inf"),
        pytest.param(("-b", ""), None, "invalid budget ''", id="budget-empty"),
        pytest.param(("--stop-rule", "nope"), None, "unknown stop rule 'nope'", id="stop-rule-nope"),
        pytest.param(("--confidence", "0.3"), None, "--confidence must be above 0.5", id="confidence-low"),
        pytest.param(("--confidence", "1.5"), None, "--confidence must be above 0.5", id="confidence-high"),
        pytest.param(("--confidence", "nan"), None, "--confidence must be above 0.5", id="confidence-nan"),
    ],
)
def test_bad_options(args, stdin, needle):
    assert_one_line_error(run_ttc("ask", Q, *args, stdin=stdin), needle)


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [
        pytest.param(("ask", ""), None, id="empty-argument"),
        pytest.param(("ask", " \t\n  "), None, id="whitespace-argument"),
        pytest.param(("ask", "-"), "", id="empty-stdin-dash"),
        pytest.param(("ask",), "", id="empty-stdin-no-argument"),
        pytest.param(("ask", "-"), "  \n\n ", id="whitespace-stdin"),
    ],
)
def test_empty_questions(argv, stdin):
    assert_one_line_error(run_ttc(*argv, stdin=stdin), "the question is empty")


def test_a_question_that_is_not_utf8():
    done = subprocess.run([*TTC, "ask"], input=b"\xff\xfe what?", capture_output=True, cwd=OUTSIDE)
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().startswith("ttc: error: ") and done.stderr.count(b"\n") == 1


def test_a_question_longer_than_ctx():
    assert len(LONG_QUESTION.split()) >= 380
    assert_one_line_error(run_ttc("ask", LONG_QUESTION, "--ctx", "128"), "more than the 128-token context")


def test_a_question_longer_than_the_models_training_context():
    assert_one_line_error(run_ttc("ask", "-", stdin="word " * 9000), "more than the 8192-token context")


def test_missing_model_file_by_option():
    assert_one_line_error(
        run_ttc("ask", Q, "-m", "/nonexistent.gguf"), "model file not found", "/nonexistent"
    )


def test_missing_model_file_by_env(tmp_path: Path):
    missing = tmp_path / "gone" / "model.gguf"
    done = run_ttc("ask", Q, env={"TTC_MODEL": str(missing)})
    assert_one_line_error(done, "model file not found", str(missing))


def test_a_model_path_that_is_a_directory(tmp_path: Path):
    assert_one_line_error(run_ttc("ask", Q, "-m", str(tmp_path)), "not a file")


def test_a_text_file_is_not_a_gguf(tmp_path: Path):
    notes = tmp_path / "notes.gguf"
    notes.write_text("these are my notes, not a model\n")
    assert_one_line_error(run_ttc("ask", Q, "-m", str(notes)), "is not a GGUF model file")


def _real_model_head(n: int) -> bytes:
    from ttc_cli.models.files import default_model_path

    with default_model_path().open("rb") as f:
        return f.read(n)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: b"GGUF" + random.Random(0).randbytes(64), id="magic-then-random-bytes"),
        pytest.param(lambda: b"GGUF" + struct.pack("<IQQ", 3, 2**62, 2**62) + bytes(64), id="absurd-counts"),
        pytest.param(lambda: b"GGUF", id="magic-only"),
        pytest.param(lambda: _real_model_head(1 << 20), id="truncated-real-model"),
    ],
)
def test_a_corrupt_gguf_is_rejected_by_llama_cpp_in_one_line(tmp_path: Path, make):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(make())
    assert_one_line_error(run_ttc("ask", Q, "-m", str(broken)), "llama.cpp could not load", str(broken))


# ---- bad user YAML ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param("budgets: [unclosed\n", "malformed YAML in", id="malformed-yaml"),
        pytest.param("budgetz: {}\n", "unknown key(s) budgetz", id="unknown-key"),
        pytest.param("budgets: {low: {tokenz: 5}}\n", "unknown key(s) tokenz", id="unknown-budget-key"),
        pytest.param("budgets: {low: {tokens: 0}}\n", "budgets.low.tokens", id="tokens-zero"),
        pytest.param("budgets: {low: {tokens: -3}}\n", "budgets.low.tokens", id="tokens-negative"),
        pytest.param("budgets: {low: {tokens: 1.5}}\n", "budgets.low.tokens", id="tokens-fraction"),
        pytest.param("budgets: {low: {tokens: lots}}\n", "budgets.low.tokens", id="tokens-string"),
        pytest.param("budgets: {low: {tokens: true}}\n", "budgets.low.tokens", id="tokens-bool"),
        pytest.param("- just\n- a list\n", "must hold a YAML mapping", id="top-level-list"),
        pytest.param("sampling: {temprature: 0.5}\n", "temprature", id="unknown-sampling-key"),
        pytest.param("sampling: {foo: 1, 2: 3}\n", "sampling key(s) 2, foo", id="mixed-sampling-keys"),
        pytest.param("default_budget: huge\n", "default_budget 'huge'", id="default-budget-unknown"),
        pytest.param("1: x\n", "unknown key", id="non-string-key"),
        pytest.param("budgets: {low: {5: 3}}\n", "unknown key", id="non-string-budget-key"),
        pytest.param(b"\xff\xfebudgets: x\n", "UTF-8", id="not-utf8"),
        pytest.param("calibration: {greedy: {slope: 3}}\n", "greedy.intercept", id="fit-half"),
        pytest.param("calibration: {greedy: {slope: x, intercept: 1}}\n", "greedy.slope", id="fit-word"),
        pytest.param("calibration: {beam: {}}\n", "unknown calibration key(s) beam", id="fit-beam"),
    ],
)
def test_a_bad_user_profile(user_path: Path, content, needle):
    path = write_user_file(user_path, "profiles", "default.yaml", content)
    assert_one_line_error(run_ttc("ask", Q), needle, str(path))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param("system: [oops\n", "malformed YAML in", id="malformed-yaml"),
        pytest.param("template: Answer this.\n", "'template' must contain {question}", id="no-placeholder"),
        pytest.param("templat: '{question}'\n", "unknown key(s) templat", id="unknown-key"),
        pytest.param("system: 5\n", "'system' must be a string", id="system-not-string"),
        pytest.param("1: x\n", "unknown key", id="non-string-key"),
        pytest.param(b"\xff\xfetemplate: x\n", "UTF-8", id="not-utf8"),
    ],
)
def test_a_bad_user_prompt(user_path: Path, content, needle):
    path = write_user_file(user_path, "prompts", "math.yaml", content)  # Q has digits: the math task
    assert_one_line_error(run_ttc("ask", Q), needle, str(path))


# ---- budgets in seconds, and -n beyond a preset --------------------------------------------------------
def test_a_one_second_deadline_ends_eight_samples_on_time_and_says_so():
    started = time.monotonic()
    data = ask_json("Tell me a long story about a dragon.", "-s", "self-consistency", "-n", "8", "-b", "1s",
                    "--seed", "1", "--no-early-stop")  # fmt: skip
    took = time.monotonic() - started
    assert data["stopped_because"] == "deadline"
    budget = data["budget"]
    assert budget["deadline_s"] == 1.0 and budget["preset"] == "medium" and budget["spent"] < budget["limit"]
    # It ends at the first step after the deadline (or after the prefill, on a host too busy to finish
    # even that in a second): the model's load and the process are the rest, not the 4,096 tokens.
    assert 1.0 <= budget["spent_s"] < 10 and took < 30, (budget, took)


def test_more_samples_than_the_preset_pays_for_are_warned_of_on_stderr():
    done = run_ttc("ask", Q, "-n", "16", "-b", "1s", "--seed", "1")  # the deadline keeps it short
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ttc: warning: the medium budget's 4,096 tokens cannot")
    assert lines[0].endswith("use --budget high --deadline 1s or --budget 8192 --deadline 1s"), lines


# ---- user overrides --------------------------------------------------------------------------------------
def test_a_user_profile_is_merged_over_the_built_in(user_path: Path):
    write_user_file(user_path, "profiles", "default.yaml", "budgets:\n  low: {tokens: 77}\n")
    done = run_ttc("ask", Q, "-b", "low", "--seed", "1", "--no-early-stop", "--json")  # all N run, all seen
    assert done.returncode == 0, done.stderr
    # 77 tokens cannot pay for the low preset's 4 samples of up to 256: one warning line says so.
    assert done.stderr.startswith("ttc: warning: the low budget's 77 tokens cannot pay for 4 samples")
    assert done.stderr.count("\n") == 1
    data = json.loads(done.stdout)
    assert data["budget"]["limit"] == 77 and data["budget"]["preset"] == "low"
    assert data["samples"] == 4 and len(data["candidates"]) == 4  # built-in low preset's samples survive
    assert 0 < data["budget"]["spent"] <= 77


def test_a_user_prompt_changes_the_prompt(user_path: Path):
    args = (Q, "-s", "greedy", "-b", "1")
    base = ask_json(*args)
    write_user_file(
        user_path, "prompts", "math.yaml", "template: 'Reply with only the number 7. {question}'\n"
    )
    mine = ask_json(*args)
    assert mine["task"] == base["task"] == "math"
    assert mine["usage"]["prompt_tokens"] != base["usage"]["prompt_tokens"]


def test_a_new_user_task_can_be_selected(user_path: Path):
    write_user_file(user_path, "prompts", "terse.yaml", "template: 'Be terse. {question}'\n")
    data = ask_json(Q, "-s", "greedy", "-b", "1", "--task", "terse")
    assert data["task"] == "terse"


# ---- version, strategies, help ---------------------------------------------------------------------------
def test_version():
    from ttc_cli import __version__

    done = run_ttc("--version")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == f"ttc {__version__}\n"


def test_strategies_lists_each_with_a_description():
    done = run_ttc("strategies")
    assert done.returncode == 0 and done.stderr == ""
    rows = {
        line.split(None, 1)[0]: line.split(None, 1)[1] for line in done.stdout.splitlines() if line.strip()
    }
    assert set(rows) == set(REGISTRY)
    for name in REGISTRY:
        assert len(rows[name].strip()) > 10, (name, rows[name])


@pytest.mark.parametrize("argv", [("--help",), ()], ids=["--help", "no-arguments"])
def test_help_exits_zero(argv):
    done = run_ttc(*argv)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout and "ask" in done.stdout and "strategies" in done.stdout


def test_help_imports_neither_llama_cpp_nor_numpy():
    code = (
        "import sys; from ttc_cli.cli import main\n"
        "try: main(['--help'])\n"
        "except SystemExit: pass\n"
        "print('llama_cpp' in sys.modules, 'numpy' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=OUTSIDE, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "False False"


# ---- Ctrl-C ----------------------------------------------------------------------------------------------
def test_ctrl_c_stops_within_seconds_with_the_answer_so_far(user_path: Path):
    question = "Write a long story about a dragon."
    endless = write_prompt(user_path, "endless", ENDLESS)  # no sample can end before the signal
    options = [
        "-s",
        "self-consistency",
        "-n",
        "8",
        "--max-tokens",
        "2000",
        "-b",
        "16000",
        "--json",
        "--seed",
        "2",
        "--task",
        endless,
    ]
    argv = [*TTC, "ask", question, *options]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=OUTSIDE
    )
    try:
        time.sleep(6)  # loaded and decoding, even on a busy machine (a stop before that is tested apart)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert elapsed < 5, elapsed
    assert "Traceback" not in err, err
    assert proc.returncode == 130, (proc.returncode, err)
    data = json.loads(out)
    assert data["stopped_because"] == "interrupted"
    assert 0 < data["budget"]["spent"] < 16000
    assert sum(c["tokens"] for c in data["candidates"]) == data["budget"]["spent"]
    assert data["answer"].strip()


# ---- the budget is never exceeded ------------------------------------------------------------------------
@pytest.mark.parametrize("budget", [1, 7, 60], ids=lambda b: f"budget-{b}")
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_budget_is_never_exceeded(strategy, budget):
    data = ask_json(Q, "-s", strategy, "-b", str(budget), "--seed", "5")
    spent = data["budget"]["spent"]
    assert data["budget"]["limit"] == budget
    assert spent <= budget
    assert data["stopped_because"] in {"budget", "completed", "early-stop"}
    assert sum(c["tokens"] for c in data["candidates"]) == spent == data["usage"]["generated_tokens"]
    if budget == 1:
        assert spent == 1
    if data["stopped_because"] == "completed":
        assert all(c["finish_reason"] != "budget" for c in data["candidates"])


# ---- early stopping from the command line -------------------------------------------------------------
def test_early_stop_flags_reach_the_run(user_path: Path):
    forced = write_prompt(user_path, "forced", ANSWER_42)
    args = ("What is 12 + 30?", "-t", "0", "-n", "8", "--max-tokens", "60", "--task", forced, "--width", "2")
    on = ask_json(*args)  # 8 alike, 2 at a time
    assert on["width"]["policy"] == "fixed" and [c["width"] for c in on["width"]["chosen"]] == [2]
    assert on["stopped_because"] == "early-stop" and on["early_stop"]["rule"] == "deepconf"
    assert on["early_stop"]["samples_finished"] == 2 and len(on["candidates"]) == 2  # P = 0.875
    cautious = ask_json(*args, "--stop-rule", "beta", "--confidence", "0.95")  # P = 0.969 after 4
    assert cautious["early_stop"]["rule"] == "beta" and cautious["early_stop"]["samples_finished"] == 4
    strict = ask_json(*args, "--confidence", "0.99")
    # P stays under 0.99 until the 6th vote, but after the 5th the 3 samples left cannot change the winner
    assert strict["early_stop"]["rule"] == "decided" and strict["early_stop"]["samples_finished"] == 5
    off = ask_json(*args, "--no-early-stop")
    assert off["early_stop"] is None and len(off["candidates"]) == 8
    assert off["answer"] == on["answer"]
    assert off["budget"]["spent"] == 8 * on["candidates"][0]["tokens"] == 4 * on["budget"]["spent"]
