"""`ttc ask` as a real process: pipelines, exit codes, one-line errors for every bad input, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_ttc

Q = "What is 2 + 3?"


def one_line_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("ttc: error: ") and done.stderr.count("\n") == 1, done.stderr
    for needle in needles:
        assert needle in done.stderr


# ---- pipelines -----------------------------------------------------------------------------------------
def test_stdout_holds_only_the_answer_and_stderr_stays_quiet_off_a_terminal():
    done = run_ttc("ask", Q, "-b", "200", "-n", "3", "--seed", "1")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.count("\n") == 1 and done.stdout.strip()


def test_json_and_full_agree_on_the_chosen_response():
    args = ("ask", Q, "-b", "200", "-n", "3", "--seed", "4")
    data = json.loads(run_ttc(*args, "--json").stdout)
    full = run_ttc(*args, "--full").stdout
    assert full.strip() == data["response"].strip()
    assert sum(c["tokens"] for c in data["candidates"]) == data["budget"]["spent"] <= 200
    assert len(data["candidates"]) == 3


@pytest.mark.parametrize("args", [("ask", "-"), ("ask",)], ids=["dash", "no-argument"])
def test_the_question_can_come_from_stdin(args):
    done = run_ttc(*args, "-s", "greedy", "-b", "60", "--json", stdin="What is 4 + 4?\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["question"] == "What is 4 + 4?"


def test_version_and_strategies():
    from ttc_cli import __version__

    assert run_ttc("--version").stdout.strip() == f"ttc {__version__}"
    listing = run_ttc("strategies").stdout
    for name in ("greedy", "best-of-n", "self-consistency"):
        line = next(line for line in listing.splitlines() if line.startswith(name))
        assert len(line.split(None, 1)[1]) > 10


def test_help_loads_neither_llama_cpp_nor_numpy():
    code = (
        "import sys\nfrom ttc_cli.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('llama_cpp' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.stderr.strip().splitlines()[-1] == "False False"
    assert "ask" in done.stdout and "compare" in done.stdout


# ---- bad input: one line, exit 2 -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("-s", "nope"), "unknown strategy 'nope'"),
        (("-b", "0"), "invalid budget '0'"),
        (("-b", "-5"), "invalid budget '-5'"),
        (("-b", "abc"), "invalid budget 'abc'"),
        (("-b", "1.5"), "invalid budget '1.5'"),
        (("-n", "0"), "-n/--samples must be between 1 and 255"),
        (("-n", "1000"), "-n/--samples must be between 1 and 255"),
        (("--max-tokens", "0"), "--max-tokens must be positive"),
        (("--temperature", "-1"), "--temperature must be 0 or more"),
        (("--vote", "nope"), "unknown vote 'nope'"),
        (("--scorer", "nope"), "unknown scorer 'nope'"),
        (("--task", "nosuch"), "unknown prompt 'nosuch'"),
        (("--profile", "nosuch"), "unknown profile 'nosuch'"),
        (("--frobnicate",), "No such option: --frobnicate"),
        (("-n", "x"), "'-n'"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_bad_options(args, needle):
    one_line_error(run_ttc("ask", Q, *args), needle)


def test_missing_model_file_by_option_and_by_env():
    one_line_error(run_ttc("ask", Q, "-m", "/nonexistent.gguf"), "model file not found: /nonexistent.gguf")
    one_line_error(run_ttc("ask", Q, env={"TTC_MODEL": "/nope/m.gguf"}), "model file not found: /nope/m.gguf")


def test_a_file_that_is_not_a_gguf(tmp_path: Path):
    notes = tmp_path / "notes.txt"
    notes.write_text("just some text\n")
    one_line_error(run_ttc("ask", Q, "-m", str(notes)), "is not a GGUF model file")


def test_a_corrupt_gguf(tmp_path: Path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(64))
    one_line_error(run_ttc("ask", Q, "-m", str(broken)), "could not load", "--verbose")


@pytest.mark.parametrize(
    ("question", "stdin", "args"),
    [("", None, ()), ("   \n ", None, ()), (None, "", ("-",)), (None, "  \n", ())],
    ids=["empty", "blank", "empty-stdin", "blank-stdin"],
)
def test_empty_questions(question, stdin, args):
    argv = ("ask", question) if question is not None else ("ask", *args)
    one_line_error(run_ttc(*argv, stdin=stdin), "the question is empty")


def test_a_question_that_is_not_utf8():
    done = subprocess.run(
        [sys.executable, "-m", "ttc_cli", "ask"], input=b"\xff\xfe what?", capture_output=True, cwd=ROOT
    )
    assert done.returncode == 2 and done.stdout == b""
    assert done.stderr.decode().startswith("ttc: error: ") and done.stderr.count(b"\n") == 1


def test_samples_beyond_what_the_context_holds():
    one_line_error(
        run_ttc("ask", Q, "-n", "64", "--max-tokens", "512", "--ctx", "1024"),
        "need a KV cache of",
        "more than the 1024 available",
    )


def test_question_longer_than_the_context():
    long_q = "Please consider this sentence carefully. " * 100
    one_line_error(run_ttc("ask", long_q, "--ctx", "128"), "more than the 128-token context")
    one_line_error(run_ttc("ask", "-", stdin="word " * 9000), "more than the 8192-token context")


@pytest.mark.parametrize(
    ("kind", "content", "needle"),
    [
        ("profiles", "budgets: [unclosed\n", "malformed YAML in"),
        ("profiles", "budgetz: {}\n", "unknown key(s) budgetz"),
        ("profiles", "budgets: {low: {tokens: -3}}\n", "budgets.low.tokens must be a positive integer"),
        ("profiles", "- a list\n", "must hold a YAML mapping"),
        ("prompts", "system: [oops\n", "malformed YAML in"),
        ("prompts", "template: Answer this.\n", "'template' must contain {question}"),
    ],
    ids=[
        "profile-syntax",
        "profile-key",
        "profile-value",
        "profile-list",
        "prompt-syntax",
        "prompt-template",
    ],
)
def test_malformed_user_yaml(user_path: Path, kind, content, needle):
    name = "default.yaml" if kind == "profiles" else "math.yaml"
    (user_path / kind).mkdir()
    (user_path / kind / name).write_text(content)
    done = run_ttc("ask", Q, env={"TTC_USER_PATH": str(user_path)})
    one_line_error(done, needle, str(user_path / kind / name))


# ---- user overrides --------------------------------------------------------------------------------------
def test_a_user_profile_is_merged_over_the_built_in_one(user_path: Path):
    (user_path / "profiles").mkdir()
    (user_path / "profiles" / "default.yaml").write_text("budgets:\n  low: {tokens: 77}\n")
    done = run_ttc("ask", Q, "-b", "low", "--json", "--seed", "1", env={"TTC_USER_PATH": str(user_path)})
    data = json.loads(done.stdout)
    assert data["budget"]["limit"] == 77 and data["samples"] == 4  # samples still from the built-in preset
    assert data["budget"]["spent"] <= 77


def test_a_user_prompt_replaces_the_built_in_one(user_path: Path):
    base = json.loads(run_ttc("ask", Q, "-s", "greedy", "-b", "20", "--json").stdout)
    (user_path / "prompts").mkdir()
    (user_path / "prompts" / "math.yaml").write_text("template: 'Reply with only the number. {question}'\n")
    mine = json.loads(
        run_ttc("ask", Q, "-s", "greedy", "-b", "20", "--json", env={"TTC_USER_PATH": str(user_path)}).stdout
    )
    assert mine["task"] == base["task"] == "math"
    assert mine["usage"]["prompt_tokens"] != base["usage"]["prompt_tokens"]


# ---- Ctrl-C ----------------------------------------------------------------------------------------------
def test_ctrl_c_stops_promptly_with_the_best_answer_so_far():
    proc = subprocess.Popen(
        [sys.executable, "-m", "ttc_cli", "ask", "Write a long story about a dragon.", "-n", "8",
         "--max-tokens", "2000", "-b", "16000", "--json", "--seed", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    time.sleep(4)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    data = json.loads(out)
    assert data["stopped_because"] == "interrupted"
    assert 0 < data["budget"]["spent"] < 16000 and data["answer"].strip()
    assert any(c["finish_reason"] == "interrupted" for c in data["candidates"])
