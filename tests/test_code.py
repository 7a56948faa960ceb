"""Code questions (--task code): candidates are tested against the question's examples and the model's own
tests, in the sandbox, and those results choose. The scripted engine fixes what each sample writes; the
code runs for real. One real-model test checks the mechanism end to end, asserting no model text."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from conftest import run_ttc, write_prompt
from fake_engine import FakeEngine, Script

from ttc_cli.answers.examples import Case, extract_examples, question_code
from ttc_cli.answers.stopping import EarlyStopping
from ttc_cli.budget import TokenBudget
from ttc_cli.engine.sequence import SamplingParams
from ttc_cli.errors import UsageError
from ttc_cli.events import EarlyStop, Final, GeneratedTests, WidthChosen
from ttc_cli.execution import harness as harness_module
from ttc_cli.execution import run_isolated
from ttc_cli.options import PlanOptions
from ttc_cli.plan import build
from ttc_cli.strategies import STRATEGIES
from ttc_cli.strategies.code import CodeTesting
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.sampling import WRITER_SEED
from ttc_cli.task_prompts import guess_task

QUESTION = '''def double(x):
    """Return twice x.
    >>> double(2)
    4
    >>> double(-1)
    -2
    """
'''
PROSE = "Write a Python function `double(x)` that returns twice x."


def code(body: str) -> str:
    return f"Here you go.\n```python\n{body}\n```\n"


RIGHT = code("def double(x):\n    return 2 * x")
RIGHT_TOO = code("def double(x):\n    return x + x")  # other code, the same behaviour
PLUS_TWO = code("def double(x):\n    return x + 2")  # right on double(2) only
TESTS = "```python\nassert double(2) == 4\nassert double(5) == 10\nassert double(0) == 0\n```"


def code_testing(question: str = QUESTION, **kw) -> CodeTesting:
    examples = tuple(extract_examples(question, "double"))
    return CodeTesting(examples=examples, context=question_code(question), entry="double", **kw)


def make_ctx(scripts: list[Script], samples: int, t: CodeTesting, **kw) -> RunContext:
    engine = FakeEngine(scripts)
    writes = t.writes_tests
    return RunContext(
        question=QUESTION,
        engine=engine,
        budget=TokenBudget(kw.pop("budget", 20_000)),
        prompt_tokens=engine.tokenize("Write double."),
        samples=samples,
        sampling=SamplingParams(seed=0, max_tokens=400),
        code=t,
        test_tokens=engine.tokenize("Write tests for double.") if writes else None,
        **kw,
    )


def with_writer(candidates: list[Script], writer: str, length: int = 7) -> list[Script]:
    """Scripts for candidates 0.. and, at the index the test writer's seed picks, the writer's reply."""
    scripts = candidates + [Script("unused")] * (length - len(candidates))
    assert WRITER_SEED % length >= len(candidates)
    scripts[WRITER_SEED % length] = Script(writer)
    return scripts


def run(strategy: str, ctx: RunContext) -> tuple[list, Final]:
    events = list(STRATEGIES[strategy].run(ctx))
    assert isinstance(events[-1], Final)
    return events, events[-1]


# ---- choosing by the question's examples -------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["best-of-n", "self-consistency"])
def test_the_examples_choose_the_code_that_passes_them(strategy):
    # Three likelier candidates agree on the wrong behaviour: only the examples can tell.
    scripts = [Script(PLUS_TWO, 9.0), Script(PLUS_TWO, 9.0), Script(PLUS_TWO, 9.0), Script(RIGHT)]
    _, final = run(strategy, make_ctx(scripts, 4, code_testing(test_samples=0)))
    assert final.chosen == 3 and final.answer.startswith("def double(x):\n    return 2 * x")
    assert "2/2 of the question's examples" in final.selection
    by_index = {c.index: c for c in final.candidates}
    assert [s for s, _ in by_index[0].tests.examples] == ["pass", "fail"]
    assert [s for s, _ in by_index[3].tests.examples] == ["pass", "pass"]
    assert by_index[0].to_json()["tests"]["examples"][1] == {"status": "fail", "output": "1"}
    assert 0 < final.confidence < 1


def test_the_plain_vote_over_outputs_follows_the_largest_group():
    scripts = [Script(PLUS_TWO, 9.0), Script(PLUS_TWO, 9.0), Script(PLUS_TWO, 9.0), Script(RIGHT)]
    ctx = make_ctx(scripts, 4, code_testing(signals="generated", test_samples=0))
    _, final = run("self-consistency", ctx)
    assert final.chosen in (0, 1, 2)  # the examples' inputs run, their expected values are not used
    assert "3 of 4 tested candidates behave the same" in final.selection
    assert final.votes[0].count == 3


# ---- tests the model writes: dual execution agreement ----------------------------------------------------
def test_generated_tests_choose_by_dual_agreement():
    scripts = with_writer([Script(PLUS_TWO, 9.0), Script(RIGHT), Script(RIGHT_TOO)], TESTS)
    ctx = make_ctx(scripts, 3, code_testing(PROSE, signals="generated", test_samples=1))
    events, final = run("best-of-n", ctx)
    written = [e for e in events if isinstance(e, GeneratedTests)]
    assert len(written) == 1 and written[0].cases == (
        "assert double(2) == 4",
        "assert double(5) == 10",
        "assert double(0) == 0",
    )
    assert final.chosen in (1, 2)
    assert "3/3 generated tests, dual agreement 6" in final.selection  # 2 candidates x 3 tests
    plus_two = next(c for c in final.candidates if c.index == 0)
    assert [s for s, _ in plus_two.tests.generated] == ["pass", "fail", "fail"]
    assert plus_two.tests.summary() == "1/3 generated"


def test_candidates_tested_before_the_tests_arrive_run_them_too():
    """Short candidates end before the test writer does; they are run again when its tests come."""
    writer = "Sure, here are some careful tests for the function.\n" * 4 + TESTS
    scripts = with_writer([Script(RIGHT), Script(PLUS_TWO)], writer)
    _, final = run(
        "best-of-n", make_ctx(scripts, 2, code_testing(PROSE, test_samples=1, test_max_tokens=400))
    )
    assert all(len(c.tests.generated) == 3 for c in final.candidates)
    assert final.chosen == 0


def test_a_test_cut_by_the_length_cap_is_dropped():
    scripts = with_writer([Script(RIGHT), Script(RIGHT_TOO)], TESTS)
    events, _ = run(
        "best-of-n", make_ctx(scripts, 2, code_testing(PROSE, test_samples=1, test_max_tokens=50))
    )
    (written,) = [e for e in events if isinstance(e, GeneratedTests)]
    assert written.cases == ("assert double(2) == 4",)  # not "assert double(5)", a predicate by accident


def test_the_budget_counts_the_test_writer_and_is_never_exceeded():
    scripts = with_writer([Script(RIGHT)] * 3, TESTS)
    for budget in (40, 90, 160, 400):
        ctx = make_ctx(scripts, 3, code_testing(test_samples=1), budget=budget)
        events, final = run("self-consistency", ctx)
        written = sum(e.tokens for e in events if isinstance(e, GeneratedTests))
        assert ctx.budget.spent <= budget
        assert ctx.budget.spent == sum(c.tokens for c in final.candidates) + written


# ---- early stopping: a candidate that passes everything ends the run ------------------------------------
def test_a_candidate_that_passes_every_test_ends_the_run():
    early = EarlyStopping("beta", 0.95, None, 4, 16, 0.3)
    scripts = [Script(PLUS_TWO)] + [Script(RIGHT)] * 15
    ctx = make_ctx(scripts, 16, code_testing(test_samples=0, width=2), early=early)
    events, final = run("best-of-n", ctx)
    stop = next(e for e in events if isinstance(e, EarlyStop))
    assert stop.rule == "tests" and "2/2 examples" in stop.detail
    assert len(final.candidates) < 16 and final.stopped_because == "early-stop"
    assert (
        final.candidates[[c.index for c in final.candidates].index(final.chosen)].tests.examples_passed == 2
    )


def test_waves_grow_while_no_candidate_passes():
    """1, then 2, 4, 8 at once: an easy question costs one sample, a hard one still gets many."""
    early = EarlyStopping("beta", 0.95, None, 4, 16, 0.3)
    ctx = make_ctx([Script(PLUS_TWO)], 16, code_testing(test_samples=0), early=early)
    events, final = run("best-of-n", ctx)
    assert [e.width for e in events if isinstance(e, WidthChosen)] == [1, 2, 4, 8]
    assert {e.policy for e in events if isinstance(e, WidthChosen)} == {"grow"}
    assert len(final.candidates) == 16 and final.stopped_because == "completed"


def test_only_trusted_tests_end_a_run():
    """The examples (and --check) decide a stop; the model's own tests only where there is neither."""
    from ttc_cli.answers.behaviour import passes_everything
    from ttc_cli.events import CodeReport

    wrong_test = CodeReport(examples=(("pass", "4"),), generated=(("pass", "1"), ("fail", "0")))
    assert passes_everything(wrong_test, "both") and passes_everything(wrong_test, "examples")
    assert not passes_everything(wrong_test, "generated")
    assert not passes_everything(replace(wrong_test, examples=(("fail", "3"),)), "both")
    assert passes_everything(CodeReport(generated=(("pass", "1"),)), "both")
    assert not passes_everything(CodeReport(), "both")  # nothing to pass: nothing proves it
    assert not passes_everything(replace(wrong_test, check="error"), "both")


# ---- what cannot be tested ----------------------------------------------------------------------------
def test_a_reply_without_code_is_never_chosen_over_tested_code():
    scripts = [Script("I would double it.", 9.0), Script(RIGHT)]
    _, final = run("best-of-n", make_ctx(scripts, 2, code_testing(test_samples=0)))
    assert final.chosen == 1
    assert next(c for c in final.candidates if c.index == 0).execution.status == "no program"


def test_hostile_candidates_cost_their_limit_and_the_run_goes_on():
    loops = code("def double(x):\n    while True:\n        pass")
    floods = code("def double(x):\n    print('x' * 50_000_000)\n    return 2 * x")
    scripts = [Script(loops, 9.0), Script(floods, 9.0), Script(RIGHT)]
    _, final = run("best-of-n", make_ctx(scripts, 3, code_testing(test_samples=0, per_case_s=0.5)))
    by_index = {c.index: c for c in final.candidates}
    assert [s for s, _ in by_index[0].tests.examples] == ["timeout", "timeout"]
    assert [s for s, _ in by_index[1].tests.examples] == ["pass", "pass"]  # printing is not returning
    assert final.chosen in (1, 2)


@pytest.mark.parametrize("mode", ["bwrap", "rlimits"])
def test_a_candidate_cannot_read_the_hidden_tests_or_find_them_on_disk(tmp_path, monkeypatch, mode):
    """The bench's data file (hidden tests) lies outside every Python prefix: a candidate that opens it,
    or walks the disk for it, finds nothing."""
    from ttc_cli.execution import sandbox

    if mode == "bwrap" and sandbox._bwrap()[1] is not None:
        pytest.skip(f"bubblewrap unusable here: {sandbox._bwrap()[1]}")
    monkeypatch.setenv("TTC_SANDBOX", mode)
    hidden = tmp_path / "HIDDEN_TESTS.jsonl"
    hidden.write_text('{"test": "assert double(2) == 4"}\n')
    reads = f"def peek():\n    try:\n        return open({str(hidden)!r}).read()\n    except OSError as e:\n"
    reads += "        return type(e).__name__\n"
    walks = (
        "import os\ndef walk():\n    for top in ('/tmp', '/root', '/home', os.path.expanduser('~')):\n"
        "        for root, dirs, files in os.walk(top):\n"
        "            if 'HIDDEN_TESTS.jsonl' in files:\n                return root\n    return 'nothing'\n"
    )
    cases = [Case("peek()", "'x'"), Case("walk()", "'x'")]
    job = harness_module.job(reads + walks, cases, per_case_s=5.0)
    outcome = run_isolated(job.argv, **job.kwargs)
    if "as nobody" in outcome.stderr and outcome.returncode is None:  # root without bubblewrap, here
        pytest.skip(f"this mode cannot run ttc's Python here: {outcome.stderr.strip()[:120]}")
    got = [r.output for r in job.results(outcome)]
    assert got[0] in ("'FileNotFoundError'", "'PermissionError'"), got
    assert got[1] == "'nothing'", got


# ---- plan: recognising a code question, refusing what cannot run ----------------------------------------
@pytest.mark.parametrize(
    ("question", "task"),
    [
        (QUESTION, "code"),
        (PROSE, "code"),
        ("Implement a function that merges two sorted lists.", "code"),
        ("The function f(x) = 2x + 3. What is f(4)?", "math"),
        ("Why is the sky blue?", "general"),
    ],
)
def test_auto_recognises_a_code_question(question, task):
    assert guess_task(question) == task


def test_a_code_question_is_tested_with_its_examples(user_path):
    plan = build(QUESTION, "best-of-n", PlanOptions())
    assert plan.task == "code" and plan.code is not None
    assert [c.call for c in plan.code.examples] == ["double(2)", "double(-1)"]
    assert plan.code.entry == "double" and plan.code.test_messages[-1]["content"].count("double") >= 2


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--code-tests", "all"], "unknown --code-tests 'all'"),
        (["--task", "code", "-s", "beam"], "--task code tests whole solutions"),
    ],
)
def test_code_usage_errors_are_one_line(args, says):
    r = run_ttc("ask", QUESTION, *args, timeout=60)
    assert r.returncode == 2 and says in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_search_on_a_code_question_reasons_in_text_under_auto(user_path):
    assert build(QUESTION, "beam", PlanOptions()).code is None


def test_a_bad_code_section_is_refused_in_one_line(user_path):
    (user_path / "profiles").mkdir()
    (user_path / "profiles" / "default.yaml").write_text("code: {tests: maybe}\n")
    with pytest.raises(UsageError) as e:
        build(QUESTION, "best-of-n", PlanOptions())
    assert "code.tests must be one of both, examples, generated, none" in str(e.value)


# ---- the real model --------------------------------------------------------------------------------------
@pytest.mark.model
def test_a_code_question_on_the_real_model_reports_each_candidates_tests(user_path):
    """The mechanism, whatever the model writes: a grammar fixes the body that follows the stub (the
    shipped prompt starts the reply with it), the tests run for real."""
    fixed = "    return 2 * x\\n```"
    write_prompt(user_path, "code", f'root ::= "{fixed}"', answer="code")
    (user_path / "profiles").mkdir()
    (user_path / "profiles" / "default.yaml").write_text("code: {write_tests: always}\n")  # despite examples
    r = run_ttc("ask", QUESTION, "-s", "best-of-n", "-n", "3", "--no-early-stop", "--json", "--seed", "1")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["task"] == "code" and data["answer"].startswith("def double(x):")
    assert [e["call"] for e in data["code"]["examples"]] == ["double(2)", "double(-1)"]
    for c in data["candidates"]:
        assert c["kind"] == "code" and [e["status"] for e in c["tests"]["examples"]] == ["pass", "pass"]
    assert len(data["code"]["test_sets"]) == 1  # the model wrote tests (parsed or not: its words vary)
    assert (
        data["budget"]["spent"] == sum(c["tokens"] for c in data["candidates"]) + data["usage"]["test_tokens"]
    )
    assert data["execution"]["isolation"] and data["confidence"] is not None
