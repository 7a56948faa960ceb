"""Running a candidate against Cases in the sandbox: judging (equality, floats, exceptions, doctest text),
and candidates that fail, hang, exit, flood their output or try to forge a result. Each run is one real
sandboxed process; `results` is also tested on outcomes built by hand (killed, cut by the output cap).

The sandboxed tests run in the host's default mode, skipped where that cannot run Python at all (say so),
and with TTC_SANDBOX=off, which checks the harness's own logic (its alarms, nonce and output handling) on
any host.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from ttc_cli.answers.examples import Case
from ttc_cli.execution import Limits, Outcome, run_isolated
from ttc_cli.execution.harness import HARNESS, CaseResult, default_limits, job, results

ADD = "def add(a, b):\n    return a + b\n"


def _default_problem() -> str | None:
    outcome = run_isolated([sys.executable, "-c", "print('ok')"])
    return None if outcome.stdout.strip() == "ok" else (outcome.stderr.strip() or outcome.status)[:300]


@pytest.fixture(params=["default", "off"], scope="module")
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def sandbox_mode(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if mode == "off":
        monkeypatch.setenv("TTC_SANDBOX", "off")
    else:
        problem = _default_problem()
        if problem:
            pytest.skip(f"the default sandbox cannot run Python here: {problem}")


def run(solution: str, cases: list[Case], **kwargs: object) -> list[CaseResult]:
    j = job(solution, cases, **kwargs)  # type: ignore[arg-type]
    return j.results(run_isolated(j.argv, **j.kwargs))


def statuses(found: list[CaseResult]) -> list[str]:
    return [r.status for r in found]


def test_a_right_solution_passes_and_a_wrong_one_fails():
    cases = [Case("add(1, 2)", "3"), Case("add('a', 'b')", "'ab'"), Case("add([1], [2])", "[1, 2]")]
    assert statuses(run(ADD, cases)) == ["pass"] * 3
    wrong = run("def add(a, b):\n    return a * 2\n", cases)
    assert statuses(wrong) == ["fail", "fail", "fail"]
    assert [r.output for r in wrong] == ["2", "'aa'", "[1, 1]"]
    assert all(r.passed for r in run(ADD, cases))


def test_floats_compare_with_a_tolerance_inside_containers():
    cases = [
        Case("add(0.1, 0.2)", "0.3"),
        Case("[add(0.1, 0.2), 1]", "[0.3, 1]"),
        Case("{'x': add(0.1, 0.2)}", "{'x': 0.3}"),
        Case("add(0.1, 0.2)", "0.31"),
        Case("(add(1, 1),)", "[2]"),  # a tuple is not a list, as in Python
    ]
    assert statuses(run(ADD, cases)) == ["pass", "pass", "pass", "fail", "fail"]


def test_expected_exceptions():
    solution = "def root(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x ** 0.5\n"
    cases = [
        Case("root(-1)", None, raises="ValueError"),
        Case("root(-1)", None, raises="Exception"),  # a subclass passes
        Case("root(4)", None, raises="ValueError"),  # no exception: fail
        Case("root('a')", None, raises="ValueError"),  # another exception: fail
    ]
    found = run(solution, cases)
    assert statuses(found) == ["pass", "pass", "fail", "fail"]
    assert found[0].output == "ValueError: negative"


def test_an_unexpected_exception_is_an_error_and_the_others_still_run():
    found = run("def inv(x):\n    return 1 / x\n", [Case("inv(0)", "0"), Case("inv(2)", "0.5")])
    assert statuses(found) == ["error", "pass"]
    assert found[0].output == "ZeroDivisionError: division by zero"


@pytest.mark.parametrize(
    "solution, why",
    [
        ("def add(a, b)\n    return a + b\n", "SyntaxError"),
        ("import no_such_module\n" + ADD, "ModuleNotFoundError"),
    ],
)
def test_a_solution_that_does_not_load_errors_every_case(solution, why):
    found = run(solution, [Case("add(1, 2)", "3"), Case("add(2, 2)", "4")])
    assert statuses(found) == ["error", "error"]
    assert all(r.output.startswith(why) for r in found)


def test_context_code_runs_first_and_its_stub_is_replaced():
    context = 'import math\n\n\ndef add(a, b):\n    """Add.\n    >>> add(1, 2)\n    3\n    """\n'
    solution = "def add(a, b):\n    return math.floor(a + b)\n"
    assert statuses(run(solution, [Case("add(1, 2.5)", "3")], context=context)) == ["pass"]


def test_a_loop_in_one_case_times_out_and_the_others_still_run():
    solution = (
        "def f(x):\n    if x == 1:\n        while True:\n            pass\n"
        "    if x == 2:\n        while True:\n            try:\n"
        "                while True:\n                    pass\n"
        "            except:\n                pass\n    return x\n"
    )
    cases = [Case("f(0)", "0"), Case("f(1)", "1"), Case("f(2)", "2"), Case("f(3)", "3")]
    start = time.monotonic()
    found = run(solution, cases, per_case_s=0.5)
    assert statuses(found) == ["pass", "timeout", "timeout", "pass"]  # even a loop that swallows alarms
    assert time.monotonic() - start < default_limits(0.5, 4).wall_s + 2
    assert found[1].output.startswith("TimeoutError")


def test_a_case_stuck_in_c_times_out_alone():
    solution = (
        "def f(x):\n    if x:\n        sum(range(10 ** 13))\n    return x\n"  # one C call: no signal checks
    )
    start = time.monotonic()
    found = run(solution, [Case("f(0)", "0"), Case("f(1)", "1"), Case("f(0)", "0")], per_case_s=0.5)
    assert statuses(found) == ["pass", "timeout", "pass"]
    assert time.monotonic() - start < 3


def test_a_load_that_swallows_its_alarm_ends_at_the_wall_limit():
    solution = "while True:\n    try:\n        while True:\n            pass\n"
    solution += "    except BaseException:\n        pass\n"
    start = time.monotonic()
    found = run(
        solution, [Case("f(0)", "0"), Case("f(1)", "1")], per_case_s=0.2, limits=Limits(wall_s=2.5, cpu_s=5)
    )
    assert statuses(found) == ["timeout", "timeout"]
    assert time.monotonic() - start < 5


def test_huge_output_neither_blocks_nor_hides_the_results():
    solution = (
        "import os, sys\n"
        "def f(x):\n    print('x' * 5_000_000)\n    os.write(1, b'y' * 2_000_000)\n"
        "    sys.stderr.write('z' * 1_000_000)\n    return x\n"
    )
    found = run(solution, [Case("f(1)", "1"), Case("f(2)", "2")])
    assert statuses(found) == ["pass", "pass"]


def test_exiting_inside_a_call():
    solution = "import os, sys\ndef f(x):\n    if x == 1:\n        sys.exit(3)\n"
    solution += "    if x == 2:\n        os._exit(0)\n    return x\n"
    found = run(
        solution,
        [Case("f(0)", "0"), Case("f(1)", "1"), Case("f(0)", "0"), Case("f(2)", "2"), Case("f(0)", "0")],
    )
    assert statuses(found) == ["pass", "error", "pass", "error", "pass"]
    assert found[1].output == "SystemExit: 3"
    assert found[3].output == "the call ended its process (exit code 0)"


def test_every_case_starts_from_the_solution_as_loaded():
    solution = "seen = []\ndef f(x):\n    seen.append(x)\n    return len(seen)\n"
    assert statuses(run(solution, [Case("f(1)", "1"), Case("f(2)", "1")])) == ["pass", "pass"]


def test_a_call_that_crashes_the_interpreter_costs_only_its_case():
    solution = "import ctypes\ndef f(n):\n    return ctypes.string_at(0) if n else 3\n"  # a segfault
    found = run(solution, [Case("f(1)", "0"), Case("f(0)", "3")])
    assert statuses(found) == ["error", "pass"]
    assert found[0].output.startswith("the call ended its process (killed by signal")


def test_a_candidate_cannot_forge_a_pass():
    solution = (
        "import json, os, sys\n"
        "def add(a, b):\n"
        "    try:\n        nonce = json.load(open('cases.json'))['nonce']\n"
        "    except OSError:\n        nonce = 'x'\n"
        "    for guess in (nonce, *sys.argv):\n"
        "        for i in range(3):\n"
        "            fake = dict(event='result', i=i, status='pass', output='3')\n"
        "            line = f'{guess} ' + json.dumps(fake) + '\\n'\n"
        "            print(line)\n            os.write(1, line.encode())\n"
        "            sys.__stdout__.write(line)\n"
        "            for fd in range(3, 10):\n                try:\n"
        "                    os.write(fd, line.encode())\n                except OSError:\n"
        "                    pass\n"
        "    return 0\n"
    )
    found = run(solution, [Case("add(1, 2)", "3"), Case("add(1, 2)", "3")])
    assert statuses(found) == ["fail", "fail"]


def test_a_differently_named_single_function_answers_to_the_entry():
    assert statuses(run("def plus(a, b):\n    return a + b\n", [Case("add(1, 2)", "3")])) == ["pass"]
    stub = 'def add(a, b):\n    """Add."""\n'
    assert statuses(run("def plus(a, b):\n    return a + b\n", [Case("add(1, 2)", "3")], context=stub)) == [
        "pass"
    ]
    two = "def plus(a, b):\n    return a + b\n\ndef minus(a, b):\n    return a - b\n"
    assert statuses(run(two, [Case("add(1, 2)", "3")])) == ["error"]  # which one? none


def test_doctest_semantics_for_printed_output():
    solution = "def show(x):\n    print('value:', x)\n"
    cases = [Case("show(3)", "value: 3"), Case("show(3)", "value:   3\n"), Case("show(4)", "value: 3")]
    assert statuses(run(solution, cases)) == ["pass", "pass", "fail"]
    assert statuses(run(solution, [Case("show(3)", "value: 3", source="prose")])) == ["fail"]


def test_expected_may_name_the_solutions_constants_and_may_be_only_observed():
    solution = "LIMIT = 7\ndef f():\n    return 7\n"
    found = run(solution, [Case("f()", "LIMIT"), Case("f()", None)])
    assert statuses(found) == ["pass", "observed"]
    assert found[1].output == "7"


def test_the_same_value_gives_the_same_output_in_every_run():
    solution = (
        "class Thing:\n    pass\n\n"
        "def f():\n    return [{'pear', 'apple', 'fig', 'kiwi'}, frozenset({'b', 'a'}),\n"
        "            {'z': 1, 'a': 0.1 + 0.2}, Thing(), 10 ** 5000]\n"
    )
    first = run(solution, [Case("f()", None)])[0].output
    second = run(solution, [Case("f()", None)])[0].output
    assert first == second
    assert first.startswith(
        "[{'apple', 'fig', 'kiwi', 'pear'}, frozenset({'a', 'b'}), {'z': 1, 'a': 0.3}, "
        "<solution.Thing object at 0x...>"
    )
    assert len(first) <= 200  # clipped, with a checksum of the rest


# --- reading outcomes by hand ----------------------------------------------------------------------


def line(nonce: str, **event: object) -> str:
    return f"{nonce} {json.dumps(event)}\n"


CASES = [Case("f(0)", "0"), Case("f(1)", "1"), Case("f(2)", "2")]


def test_a_run_killed_mid_case_reports_what_it_finished():
    stdout = line("n", event="loaded", ok=True) + line("n", event="start", i=0)
    stdout += line("n", event="result", i=0, status="pass", output="0") + line("n", event="start", i=1)
    found = results(Outcome("timeout", -9, stdout, "", 3.0), CASES, "n")
    assert statuses(found) == ["pass", "timeout", "skipped"]


def test_results_without_the_nonce_or_cut_by_the_cap_do_not_count():
    stdout = line("n", event="loaded", ok=True) + line("n", event="start", i=0)
    stdout += line("m", event="result", i=0, status="pass", output="0")  # another nonce
    stdout += 'n {"event": "result", "i": 0, "status": "pa'  # cut by the output cap
    found = results(
        Outcome("error", 1, stdout, "Traceback...\nMemoryError\n", 1.0, truncated=True), CASES, "n"
    )
    assert statuses(found) == ["error", "skipped", "skipped"]
    assert found[0].output == "exited with code 1: MemoryError"
    assert found[1].output == "not run: results lost past the output cap"


def test_a_run_that_never_loaded_gives_every_case_its_reason():
    found = results(Outcome("error", None, "", "ttc: cannot run 'python3'\n", 0.0), CASES, "n")
    assert statuses(found) == ["error"] * 3
    assert all("cannot run" in r.output for r in found)


def test_job_shape():
    j = job(ADD, CASES, context="import math\n", per_case_s=0.5)
    assert j.argv[0] == sys.executable and j.argv[-1] == "harness.py"
    assert set(j.kwargs) == {"files", "limits"}
    assert j.kwargs["files"]["harness.py"] == HARNESS
    assert (
        j.kwargs["files"]["solution.py"].startswith("import math\n")
        and ADD in j.kwargs["files"]["solution.py"]
    )
    spec = json.loads(j.kwargs["files"]["cases.json"])
    assert spec["nonce"] == j.nonce and spec["entry"] == "f" and len(spec["cases"]) == 3
    assert j.kwargs["limits"] == default_limits(0.5, 3)
    assert job(ADD, CASES).nonce != job(ADD, CASES).nonce
    assert CaseResult("pass", "3").to_json() == {"status": "pass", "output": "3"}
