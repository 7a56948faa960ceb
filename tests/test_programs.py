"""Program-of-thought (--task program, --task hybrid): programs run in the sandbox, and only what they print
votes. The scripted engine fixes what each sample writes; the programs run for real."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

import pytest
from conftest import run_ttc, write_prompt
from fake_engine import FakeEngine, Script

from ttc_cli.answers.program import extract_program, output_answer
from ttc_cli.answers.stopping import EarlyStopping
from ttc_cli.budget import TokenBudget
from ttc_cli.engine.sequence import SamplingParams
from ttc_cli.errors import UsageError
from ttc_cli.events import CandidateExecuted, CandidateFinished, EarlyStop, Final
from ttc_cli.execution.check import Check
from ttc_cli.options import PlanOptions
from ttc_cli.plan import build
from ttc_cli.runner import prepare
from ttc_cli.strategies import STRATEGIES
from ttc_cli.strategies.code import CodeTesting
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.programs import LIMITS


def program(body: str) -> str:
    return f"Here it is.\n```python\n{body}\n```\n"


PRINTS_42 = program("print(6 * 7)")


def make_ctx(scripts: list[Script], samples: int, share: float = 1.0, **kw) -> RunContext:
    engine = FakeEngine(scripts)
    prompt = engine.tokenize("What is six times seven?")
    return RunContext(
        question="What is six times seven?",
        engine=engine,
        budget=TokenBudget(kw.pop("budget", 20_000)),
        prompt_tokens=prompt,
        samples=samples,
        sampling=SamplingParams(seed=0, max_tokens=400),
        program_tokens=engine.tokenize("Write a program.") if 0 < share < 1 else None,
        program_share=share,
        program_limits=kw.pop("limits", LIMITS),
        **kw,
    )


def run(strategy: str, ctx: RunContext) -> tuple[list, Final]:
    events = list(STRATEGIES[strategy].run(ctx))
    assert isinstance(events[-1], Final)
    return events, events[-1]


def test_extract_program_prefers_a_python_fence_and_keeps_a_fence_cut_open():
    assert extract_program("```text\nhi\n```\n```python\nprint(1)\n```") == "print(1)\n"
    assert extract_program("```python\nprint(2)\nprint(3)") == "print(2)\nprint(3)"  # the cap cut it
    assert extract_program("x = 3\nprint(x)") == "x = 3\nprint(x)"  # no fence, but code
    assert extract_program("The answer is 42.") is None
    assert output_answer("working...\n42.0\n\n").key == output_answer("42").key
    assert output_answer("") is None


def test_only_executed_programs_vote_and_each_run_is_reported():
    scripts = [
        Script(PRINTS_42),
        Script(program("print(1 / 0)")),  # crashes
        Script(program("print(40 + 2)")),
        Script("I think it is 41."),  # no program: no vote, even though it states a number
        Script(program("x = 5")),  # prints nothing
    ]
    events, final = run("self-consistency", make_ctx(scripts, samples=5))
    assert final.answer == "42"
    runs = {c.index: c.execution.status for c in final.candidates}
    assert runs == {0: "ok", 1: "error", 2: "ok", 3: "no program", 4: "no answer"}
    assert all(c.kind == "program" for c in final.candidates)
    assert sum(v.count for v in final.votes) == 2
    assert final.confidence == pytest.approx((2 + 1) / (5 + 2))  # the failures count against the winner
    executed = [e for e in events if isinstance(e, CandidateExecuted)]
    assert sorted(e.candidate.index for e in executed) == [0, 1, 2, 4]
    # A program's vote comes after its run, never at the moment its text ends.
    finished = {e.candidate.index: e.candidate for e in events if isinstance(e, CandidateFinished)}
    assert finished[0].execution.status == "running" and finished[0].answer is None


def test_a_runaway_program_costs_its_time_limit_and_no_vote():
    scripts = [Script(program("while True:\n    pass")), Script(PRINTS_42)]
    ctx = make_ctx(scripts, samples=2, limits=replace(LIMITS, wall_s=1.0, cpu_s=1))
    start = time.monotonic()
    _, final = run("self-consistency", ctx)
    assert time.monotonic() - start < 10
    assert final.answer == "42"
    assert {c.execution.status for c in final.candidates} == {"ok", "timeout"} or {
        c.execution.status for c in final.candidates
    } == {"ok", "killed"}


def test_early_stopping_decides_on_executed_votes_and_kills_what_still_runs():
    slow = program("import time\ntime.sleep(30)\nprint(7)")
    scripts = [Script(PRINTS_42), Script(PRINTS_42), Script(PRINTS_42), Script(slow)] + [
        Script(PRINTS_42)
    ] * 12
    early = EarlyStopping("beta", 0.7, 4, 4, 16, 0.3)
    ctx = make_ctx(scripts, samples=16, early=early)
    start = time.monotonic()
    events, final = run("self-consistency", ctx)
    assert time.monotonic() - start < 20  # the sleeping program was killed, not waited for
    stop = next(i for i, e in enumerate(events) if isinstance(e, EarlyStop))
    executed_before = [e for e in events[:stop] if isinstance(e, CandidateExecuted)]
    assert len(executed_before) >= 2  # the decision needed executed votes
    assert final.answer == "42" and final.stopped_because == "early-stop"
    statuses = {c.index: c.execution.status for c in final.candidates}
    assert statuses.get(3) in ("cancelled", "not run")


def test_hybrid_alternates_text_and_program_samples_and_votes_over_both():
    scripts = [
        Script("So the answer is 42."),  # 0: text
        Script(program("print(7)")),  # 1: program
        Script("The answer is 7."),  # 2: text
        Script(program("print(3 + 4)")),  # 3: program
    ]
    _, final = run("self-consistency", make_ctx(scripts, samples=4, share=0.5))
    kinds = {c.index: c.kind for c in final.candidates}
    assert kinds == {0: "text", 1: "program", 2: "text", 3: "program"}
    assert final.answer == "7"
    assert [v.count for v in final.votes] == [3, 1]


def test_best_of_n_scores_programs_by_executed_agreement():
    scripts = [Script(program("print(5)"), confidence=9.0), Script(PRINTS_42), Script(PRINTS_42)]
    _, final = run("best-of-n", make_ctx(scripts, samples=3))
    assert final.answer == "42"  # not the most likely sample, but the answer two runs agree on
    assert "execution" in final.selection
    assert final.confidence == pytest.approx((2 + 1) / (3 + 2))


def test_program_tasks_refuse_the_step_level_searches():
    r = run_ttc("ask", "What is 6*7?", "--task", "program", "-s", "beam")
    assert r.returncode == 2
    assert "runs programs" in r.stderr and "Traceback" not in r.stderr


# ---- the real model, its replies forced to be programs -------------------------------------------------
PROGRAM_42 = 'root ::= "```python\\nprint(6 * 7)\\n```"'
TEXT_42 = 'root ::= "6 times 7 is 42. The answer is 42."'


@pytest.mark.model
def test_ask_task_program_runs_the_real_models_programs(user_path):
    task = write_prompt(user_path, "prog", PROGRAM_42, answer="program")
    r = run_ttc("ask", "What is 6*7?", "--task", task, "-n", "3", "--json", "--no-early-stop")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["answer"] == "42" and data["task"] == "prog"
    assert [c["execution"]["status"] for c in data["candidates"]] == ["ok"] * 3
    assert data["execution"]["programs"] == 3 and data["execution"]["ran"] == 3
    assert data["confidence"] == 0.8  # 3 of 3 agree: (3 + 1) / (3 + 2)
    if data["execution"]["isolation"].startswith("bubblewrap"):
        assert "isolation" not in r.stderr  # fully contained: nothing to warn about


@pytest.mark.model
def test_limited_isolation_is_said_once_on_stderr_and_in_the_json(user_path):
    task = write_prompt(user_path, "prog", PROGRAM_42, answer="program")
    args = ("ask", "What is 6*7?", "--task", task, "-n", "2", "--json", "--no-early-stop")
    r = run_ttc(*args, env={"TTC_SANDBOX": "rlimits"})
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("ttc: running model-written programs; isolation: limited: no bubblewrap") == 1
    assert json.loads(r.stdout)["execution"]["isolation"].startswith("limited")
    quiet = run_ttc(*args, "--quiet", env={"TTC_SANDBOX": "rlimits"})
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.model
@pytest.mark.parametrize("asked", ["--task hybrid", "a profile's auto_task"])
def test_ask_task_hybrid_on_the_real_model(user_path, asked):
    write_prompt(user_path, "math", TEXT_42)
    write_prompt(user_path, "program", PROGRAM_42, answer="program")
    task = ["--task", "hybrid"] if asked == "--task hybrid" else []
    if not task:
        (user_path / "profiles").mkdir()
        (user_path / "profiles" / "default.yaml").write_text("execution: {auto_task: hybrid}\n")
    r = run_ttc("ask", "What is 6*7?", *task, "-n", "4", "--json", "--no-early-stop")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["answer"] == "42" and data["task"] == "hybrid"
    assert sorted(c["kind"] for c in data["candidates"]) == ["program", "program", "text", "text"]
    assert sum(v["count"] for v in data["votes"]) == 4


# ---- --check: code put to the user's command ------------------------------------------------------------
ADD_RIGHT = program("def add(a, b):\n    return a + b")
ADD_WRONG = program("def add(a, b):\n    return a - b")


def add_check(tmp_path) -> Check:
    test = tmp_path / "test_add.py"
    test.write_text("from solution import add\nassert add(2, 3) == 5\n")
    return Check(f"{sys.executable} test_add.py", (test,))


def checked(tmp_path) -> CodeTesting:
    return CodeTesting(check=add_check(tmp_path))


def test_check_keeps_the_candidate_that_passes_and_reports_every_run(tmp_path):
    ctx = make_ctx(
        [Script(ADD_WRONG, confidence=9.0), Script(ADD_RIGHT)], 2, share=0.0, code=checked(tmp_path)
    )
    _, final = run("best-of-n", ctx)
    assert final.chosen == 1  # the less likely one, because it passed
    assert final.answer.startswith("def add(a, b):\n    return a + b")  # the code, ready to save
    checks = {c.index: c.tests.check for c in final.candidates}
    assert checks == {0: "error", 1: "ok"}
    assert "AssertionError" in final.candidates[0].tests.check_output
    assert "it passed --check" in final.selection
    assert not final.votes and final.confidence == 1.0


def test_check_with_early_stopping_ends_at_the_first_pass(tmp_path):
    early = EarlyStopping("beta", 0.7, 2, 4, 16, 0.3)
    scripts = [Script(ADD_WRONG)] + [Script(ADD_RIGHT)] * 15
    ctx = make_ctx(scripts, 16, share=0.0, code=checked(tmp_path), early=early)
    events, final = run("self-consistency", ctx)
    stop = next(e for e in events if isinstance(e, EarlyStop))
    assert stop.rule == "tests" and "check passed" in stop.detail and final.stopped_because == "early-stop"
    assert len(final.candidates) < 16
    assert final.candidates[final.chosen].tests.check == "ok"


def test_check_when_nothing_passes_says_the_answer_is_unverified(tmp_path):
    ctx = make_ctx([Script(ADD_WRONG)], 2, share=0.0, code=checked(tmp_path))
    _, final = run("self-consistency", ctx)
    assert "--check: error (none passed)" in final.selection and final.confidence == 0.0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--check-file", "README.md"], "--check-file needs --check"),
        (["--check", "true", "-s", "beam"], "--verifier 'cmd:COMMAND'"),
        (["--check", "true", "--check-file", "no/such/file"], "no such file"),
        (["--check", "true", "--task", "program"], "use one of the two"),
        (["--check", "true", "--verifier", "logprob"], "use one of the two"),
    ],
)
def test_check_usage_errors_are_one_line_before_any_model_loads(args, says):
    r = run_ttc("ask", "Write add(a, b).", *args, timeout=60)
    assert r.returncode == 2 and says in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.model
def test_ask_check_on_the_real_model(user_path, tmp_path):
    code = "def add(a, b):\\n    return a + b\\n```"  # after the shipped prompt's "```python\\n"
    write_prompt(user_path, "code", f'root ::= "{code}"')
    test = tmp_path / "test_add.py"
    test.write_text("from solution import add\nassert add(2, 3) == 5\n")
    cmd = f"{sys.executable} test_add.py"
    r = run_ttc("ask", "Write add(a, b).", "--check", cmd, "--check-file", str(test), "-n", "4", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["task"] == "code" and data["answer"].startswith("def add(a, b):")
    assert data["early_stop"]["rule"] == "tests"  # the first pass ended the run
    assert all(c["kind"] == "code" for c in data["candidates"])
    assert any(c["tests"] and c["tests"]["check"]["status"] == "ok" for c in data["candidates"])


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ("execution: {timeout_s: 0}", "execution.timeout_s must be a number from 0.1 to 3600"),
        ("execution: {hybrid_share: 2}", "execution.hybrid_share must be a number from 0 to 1"),
        ("execution: {memory: 5}", "unknown execution key(s) memory"),
        ("execution: {auto_task: code}", "execution.auto_task must be one of math, program, hybrid"),
        ("execution: [1]", "'execution' must be a mapping"),
    ],
)
def test_a_bad_execution_section_is_refused_in_one_line(user_path, section, says):
    (user_path / "profiles").mkdir()
    (user_path / "profiles" / "default.yaml").write_text(section + "\n")
    with pytest.raises(UsageError) as e:
        build("What is 6*7?", "self-consistency", PlanOptions(task="hybrid"))
    assert says in str(e.value) and "\n" not in str(e.value)


def test_the_profile_sets_the_hybrid_share_and_the_limits(user_path):
    (user_path / "profiles").mkdir()
    (user_path / "profiles" / "default.yaml").write_text("execution: {hybrid_share: 0.25, timeout_s: 2}\n")
    p = build("What is 6*7?", "self-consistency", PlanOptions(task="hybrid"))
    assert p.program_share == 0.25 and p.task == "hybrid"
    ctx = prepare(p, FakeEngine([Script("x")]))
    limits = ctx.program_limits
    assert limits.cpu_s == 2 and limits.wall_s == 8.0 and limits.memory_mb == 512  # the default kept


@pytest.mark.parametrize(
    ("auto_task", "strategy", "question", "task"),
    [
        (None, "self-consistency", "What is 6*7?", "math"),  # shipped: no code runs unless asked
        ("hybrid", "self-consistency", "What is 6*7?", "hybrid"),
        ("program", "auto", "What is 6*7?", "program"),
        ("hybrid", "beam", "What is 6*7?", "math"),  # a search cannot run programs
        ("hybrid", "self-consistency", "Name a colour.", "general"),  # no numbers, nothing to compute
    ],
)
def test_task_auto_runs_programs_only_where_the_profile_turns_them_on(
    user_path, auto_task, strategy, question, task
):
    if auto_task:
        (user_path / "profiles").mkdir()
        (user_path / "profiles" / "default.yaml").write_text(f"execution: {{auto_task: {auto_task}}}\n")
    p = build(question, strategy, PlanOptions())
    assert p.task == task
    assert p.program_share == {"hybrid": 0.5, "program": 1.0}.get(task, 0.0)
    explicit = build(question, strategy, PlanOptions(task="general"))
    assert explicit.task == "general" and explicit.program_share == 0.0  # --task wins over the profile
