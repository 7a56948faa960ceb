"""First contact and daily use: what `ttc ask --help` shows, choices refused with the valid ones listed,
shell completion, a question joined with piped text, the default model (`ttc models default`, TTC_MODEL)
and what `ttc models`, `ttc doctor` and `ttc runs` show about it. Only the stdin test runs the model."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest
from conftest import OUTSIDE, TTC, run_ttc
from typer.testing import CliRunner

from ttc_cli import runlog
from ttc_cli.cli import app
from ttc_cli.cli_models import complete_model
from ttc_cli.errors import UsageError
from ttc_cli.models.files import BUILTIN_NAME, default_model_path, resolve_model_path
from ttc_cli.models.user_default import chosen, config_file
from ttc_cli.options import CHOICES, GROUPS, PANELS, STRATEGY_NAMES, Command, one_of

GGUF = default_model_path()
WIDE = {"COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env={**WIDE, **(env or {})}, prog_name="ttc")


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("ttc: error: "), done.stderr
    return done.stderr


@pytest.fixture
def no_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Empty model stores (ollama, Hugging Face, LM Studio), for this process and a child's environment."""
    env = {
        "HOME": str(tmp_path / "home"),
        "OLLAMA_MODELS": str(tmp_path / "ollama"),
        "HF_HOME": str(tmp_path),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return env


# ---- help ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["ask", "compare", "bench"])
def test_help_groups_the_options_in_panels_with_defaults_and_choices(command):
    done = invoke(command, "--help")
    assert done.exit_code == 0, done.output
    titles = re.findall(r"╭─ (.+?) ─", done.stdout)
    assert [t for t in titles if t in PANELS] == list(PANELS)  # every panel, in the order PANELS gives
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", done.stdout).split())  # the words, unwrapped
    assert "<bool>" not in text
    assert "<majority|weighted|filtered>" in text and "<llama|openai>" in text
    assert "[default: majority]" in text and "[default: (profile)]" in text
    assert "self-consistency, auto, beam" in text  # -s lists the strategies
    if command == "ask":
        assert "[default: self-consistency]" in text
    if command != "bench":
        assert "GGUF model file." not in text
        assert "`ttc models default`" in text and "ollama" in text  # what -m accepts


def test_every_shared_option_has_a_panel():
    declared = {f.name for group in GROUPS for f in fields(group)}
    placed = [name for names in PANELS.values() for name in names]
    assert sorted(placed) == sorted(declared)  # each once, none left in the catch-all "Options" panel


def test_no_command_shows_a_flag_as_taking_a_bool():
    for argv in (["--help"], ["models", "--help"], ["runs", "--help"], ["doctor", "--help"]):
        done = invoke(*argv)
        assert done.exit_code == 0 and "<bool>" not in done.stdout, (argv, done.stdout)


def test_the_choice_lists_match_the_registries_they_mirror():
    from ttc_cli.answers.behaviour import SIGNALS
    from ttc_cli.answers.scoring import SCORERS
    from ttc_cli.answers.stopping import RULES
    from ttc_cli.plan import VOTES
    from ttc_cli.strategies import STRATEGIES
    from ttc_cli.strategies.search_params import PICKS
    from ttc_cli.verifiers.base import AGGREGATES

    assert tuple(STRATEGIES) == STRATEGY_NAMES
    mirrored = {"vote": VOTES, "scorer": tuple(SCORERS), "stop_rule": RULES, "aggregate": AGGREGATES,
                "pick": PICKS, "code_tests": SIGNALS}  # fmt: skip
    for name, registry in mirrored.items():
        assert tuple(CHOICES[name][1]()) == tuple(registry), name


# ---- choices refused, with the valid ones ---------------------------------------------------------------
def test_an_unknown_task_lists_exactly_the_tasks_accepted(user_path: Path):
    (user_path / "prompts").mkdir()
    (user_path / "prompts" / "terse.yaml").write_text("template: 'Be terse. {question}'\n")
    line = one_line_error(run_ttc("ask", "q", "--task", "nosuch"))
    assert line.startswith("ttc: error: unknown task 'nosuch'; choose one of: ")
    listed = line.split("choose one of: ", 1)[1].strip().split(", ")
    assert sorted(listed) == sorted(["code", "general", "math", "program", "terse", "hybrid", "auto"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("ask", "q", "-s", "nope"), "unknown strategy 'nope'; choose one of: greedy, best-of-n"),
        (("compare", "q", "-s", "greedy", "-s", "nope"), "unknown strategy 'nope'"),
        (("ask", "q", "--backend", "nope"), "unknown backend 'nope'; choose one of: llama, openai"),
        (("ask", "q", "--aggregate", "nope"), "choose one of: last, min, prod, mean"),
    ],
)
def test_a_bad_choice_is_one_line_naming_the_valid_ones(args, needle):
    assert needle in one_line_error(run_ttc(*args))


# ---- shell completion ---------------------------------------------------------------------------------
def test_completion_callbacks_offer_strategies_tasks_and_models(no_stores, user_path: Path):
    info = one_of(type("Info", (), {"help": "x"})(), "strategy", lambda: STRATEGY_NAMES)
    assert info.autocompletion("se") == ["self-consistency"]
    tasks = CHOICES["task"][1]
    (user_path / "prompts").mkdir()
    (user_path / "prompts" / "mine.yaml").write_text("template: '{question}'\n")
    assert "mine" in tasks() and "hybrid" in tasks() and "judge" not in tasks()
    assert complete_model("smol") == [BUILTIN_NAME]
    (user_path / "models.yaml").write_text("aliases: {tiny: /x/tiny.gguf}\n")
    assert complete_model("") == ["tiny", BUILTIN_NAME]
    (user_path / "models.yaml").write_text("aliases: [broken]\n")
    assert complete_model("") == []  # a broken aliases file completes nothing, and says nothing


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("ttc ask -s self", 3, ["self-consistency"]),
        ("ttc ask --task hy", 3, ["hybrid"]),
        ("ttc ask -m smollm2-", 3, [BUILTIN_NAME]),
        ("ttc models default smol", 3, [BUILTIN_NAME]),
        ("ttc comp", 1, ["compare"]),
    ],
)
def test_completion_through_the_shell_protocol(words, cword, expected, no_stores):
    env = {**os.environ, **no_stores, "_TTC_COMPLETE": "complete_bash", "COMP_WORDS": words}
    env["COMP_CWORD"] = str(cword)
    done = subprocess.run(TTC, env=env, capture_output=True, text=True, cwd=OUTSIDE, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == expected


def test_the_root_offers_to_install_completion():
    assert "--install-completion" in invoke("--help").stdout


# ---- a question and piped text --------------------------------------------------------------------------
def test_piped_text_and_a_question_are_joined_text_first(tmp_path: Path):
    """The installed `ttc`, run outside the source tree, with a report on stdin and the task as argument."""
    done = subprocess.run(
        [*TTC, "ask", "Summarise the risks.", "-s", "greedy", "--max-tokens", "4", "--json"],
        input="Risk one: the river floods.\nRisk two: the bridge is old.\n",
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    question = json.loads(done.stdout)["question"]
    assert question == "Risk one: the river floods.\nRisk two: the bridge is old.\n\nSummarise the risks."


def test_a_question_with_nothing_piped_stays_as_it_is():
    from ttc_cli.cli import _read_question

    class Quiet:  # stdin that is not a terminal and holds nothing (`< /dev/null`)
        def isatty(self) -> bool:
            return False

        def read(self) -> str:
            return ""

    import sys

    saved, sys.stdin = sys.stdin, Quiet()  # type: ignore[assignment]
    try:
        assert _read_question("What is 2+2?") == "What is 2+2?"
    finally:
        sys.stdin = saved


# ---- the default model ------------------------------------------------------------------------------------
def test_a_bad_ttc_model_names_ttc_model(no_stores):
    line = one_line_error(run_ttc("ask", "q", env={**no_stores, "TTC_MODEL": "smolm2"}))
    assert "TTC_MODEL" in line.split(";")[0] and "'smolm2'" in line


def test_models_default_sets_shows_and_unsets_it(no_stores, user_path: Path):
    assert invoke("models", "default").stdout == f"{BUILTIN_NAME}\n"
    set_it = invoke("models", "default", str(GGUF))
    assert set_it.exit_code == 0, set_it.output
    assert config_file() == user_path / "config.yaml"
    assert invoke("models", "default").stdout == f"{GGUF.resolve()}\n"
    assert chosen(None).origin == "ttc models default" and resolve_model_path(None) == GGUF.resolve()
    invoke("models", "default", "--unset")
    assert invoke("models", "default").stdout == f"{BUILTIN_NAME}\n" and not config_file().exists()


def test_models_default_refuses_a_name_that_does_not_resolve(no_stores, user_path: Path):
    line = one_line_error(run_ttc("models", "default", "nosuch:7b", env=no_stores))
    assert "nosuch:7b" in line
    assert not (user_path / "config.yaml").exists()


def test_the_default_comes_after_m_and_ttc_model_and_a_stale_one_says_where_it_was_set(
    no_stores, user_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    other = tmp_path / "other.gguf"
    other.symlink_to(GGUF)
    (user_path / "config.yaml").write_text(f"default_model: {other}\n")
    assert resolve_model_path(None) == other
    monkeypatch.setenv("TTC_MODEL", str(GGUF))
    assert resolve_model_path(None) == GGUF and chosen(None).origin == "TTC_MODEL"
    assert resolve_model_path(str(other)) == other  # -m first
    monkeypatch.delenv("TTC_MODEL")
    other.unlink()
    with pytest.raises(UsageError, match=r"your default model \(ttc models default, in .*config.yaml\)"):
        resolve_model_path(None)


# ---- ttc models, doctor, runs -----------------------------------------------------------------------------
def test_models_lists_the_built_in_model_as_the_default(no_stores):
    done = invoke("models", "--json")
    assert done.exit_code == 0, done.output
    (row,) = json.loads(done.stdout)
    assert row["name"] == BUILTIN_NAME and row["source"] == "built-in" and row["default"] is True
    assert row["architecture"] == "llama" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row["modified"])
    table = invoke("models").stdout
    assert re.search(rf"^\s*\*\s+{BUILTIN_NAME}\s+built-in\s+llama\s", table, re.M), table
    assert "default model (without -m), from built-in" in table and "no models found" not in table


def test_models_marks_the_users_default(no_stores, user_path: Path):
    (user_path / "models.yaml").write_text(f"aliases: {{tiny: {GGUF}}}\n")
    invoke("models", "default", "tiny")
    rows = {r["name"]: r["default"] for r in json.loads(invoke("models", "--json").stdout)}
    assert rows == {"tiny": True, BUILTIN_NAME: False}


def test_doctor_reports_versions_the_default_model_and_gpus(no_stores, monkeypatch: pytest.MonkeyPatch):
    import platform

    from ttc_cli import __version__
    from ttc_cli.doctor import report, text

    monkeypatch.setenv("TTC_MODEL", str(GGUF))
    data = report()
    assert data["ttc"] == __version__ and data["python"].startswith(platform.python_version())
    assert data["default_model"] == {"name": str(GGUF), "from": "TTC_MODEL", "path": str(GGUF)}
    assert isinstance(data["gpus"], list) and data["sandbox"]
    shown = text(data)
    assert (
        f"ttc               {__version__}" in shown and f"default model     {GGUF} (from TTC_MODEL)" in shown
    )
    cpu_only = text(data | {"gpu_offload": False, "gpus": []})
    assert 'CMAKE_ARGS="-DGGML_CUDA=on"' in cpu_only
    h200 = {
        "name": "CUDA0",
        "description": "NVIDIA H200",
        "total_bytes": 141 * 2**30,
        "free_bytes": 140 * 2**30,
    }
    with_gpu = data | {"gpu_offload": True, "gpus": [h200]}
    assert "NVIDIA H200 (CUDA0): 141.0 GiB, 140.0 GiB free" in text(with_gpu)


def test_runs_says_when_the_log_is_empty():
    done = run_ttc("runs")
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr.startswith("ttc: no runs logged yet") and done.stderr.count("\n") == 1


def test_runs_has_a_header_and_marks_a_cut_name(user_path: Path):
    long_model = "/models/Qwen2.5-Coder-14B-Instruct-abliterated-Q4_K_M.gguf"
    runlog.write("ask", {"question": "What is 2+2?", "strategy": "greedy", "model": long_model,
                         "stopped_because": "completed", "answer": "4"}, None, {})  # fmt: skip
    lines = run_ttc("runs").stdout.splitlines()
    assert lines[0].split() == [
        "id",
        "started",
        "command",
        "strategy",
        "model",
        "stopped",
        "answer",
        "question",
    ]
    assert "Qwen2.5-Coder-14B-Instruct-…" in lines[1] and lines[1].rstrip().endswith("What is 2+2?")
    assert len(lines) == 2


def test_command_class_is_used_by_every_command():
    import typer

    group = typer.main.get_command(app)
    assert all(isinstance(c, Command) or c.name == "models" for c in group.commands.values())  # type: ignore[attr-defined]
