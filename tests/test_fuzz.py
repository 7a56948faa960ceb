"""Fuzzing what users hand ttc: profile and prompt YAML, question text, numeric options at their edges.

Every case must end in an answer or in a `UsageError` (which the CLI prints as one line with exit code 2,
`test_cli` checks that), never in another exception. The option cases go through the real command line,
in-process, so Typer's parsing is fuzzed too.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttc_cli.errors import UsageError
from ttc_cli.options import PlanOptions
from ttc_cli.plan import build
from ttc_cli.runner import execute, prepare
from ttc_cli.strategies import STRATEGIES

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# YAML-able values of every type, nested, with unicode and huge numbers.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
)
PROFILE_KEYS = ["default_budget", "budgets", "sampling", "engine", "early_stop", "thinking", "search", "junk"]
PROFILE_KEYS += ["execution"]
SECTION_KEYS = (
    "low medium tokens samples max_tokens temperature top_k min_p enabled rule confidence width keep"
)
SECTION_KEYS += " open close verifier exploration max_context hybrid_share timeout_s memory_mb auto_task"
sections = st.dictionaries(st.sampled_from(SECTION_KEYS.split()), values, max_size=4)
profiles = st.dictionaries(st.sampled_from(PROFILE_KEYS), values | sections, max_size=4)
PROMPT_KEYS = ["system", "template", "prefill", "step_delimiter", "grammar", "answer", "junk"]
prompt_values = values | st.just("Q: {question}") | st.sampled_from(["program", "text"])
prompts = st.dictionaries(st.sampled_from(PROMPT_KEYS), prompt_values, max_size=5)


def dump(data: object) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return "{}"


def answered_or_refused(user_path, question: str, strategy: str = "greedy", engine=None, **opts) -> None:
    """Plan (and with an engine, prepare and run on a tiny budget): a result or a UsageError only."""
    try:
        p = build(question, strategy, PlanOptions(**opts))
        if engine is not None:
            ctx = prepare(p, engine)
            if p.budget_limit <= 64:
                assert isinstance(execute(p, ctx).final.answer, str)
    except UsageError as e:
        assert str(e) and "\n" not in str(e)


@SETTINGS
@given(profile=profiles, strategy=st.sampled_from(list(STRATEGIES)), task=st.sampled_from(["auto", "hybrid"]))
def test_any_profile_yaml_is_used_or_refused_in_one_line(user_path, profile, strategy, task):
    (user_path / "profiles").mkdir(exist_ok=True)
    (user_path / "profiles" / "default.yaml").write_text(dump(profile), encoding="utf-8")
    answered_or_refused(user_path, "What is 2 + 2?", strategy, task=task)


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_text_in_a_profile_file_is_used_or_refused_in_one_line(user_path, text):
    (user_path / "profiles").mkdir(exist_ok=True)
    (user_path / "profiles" / "default.yaml").write_text(text, encoding="utf-8")
    answered_or_refused(user_path, "What is 2 + 2?")


@SETTINGS
@given(prompt=prompts)
def test_any_prompt_yaml_is_used_or_refused_in_one_line(user_path, engine, prompt):
    (user_path / "prompts").mkdir(exist_ok=True)
    (user_path / "prompts" / "math.yaml").write_text(dump(prompt), encoding="utf-8")
    answered_or_refused(user_path, "What is 2 + 2?", engine=engine, budget="2")


SPECIALS = [
    "<|im_end|>",
    "<|im_start|>system\n",
    "<|endoftext|>",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\x00",
    "\x1b[2J",
]
questions = st.lists(st.text(max_size=30) | st.sampled_from(SPECIALS), min_size=1, max_size=6).map("".join)


@SETTINGS
@given(question=questions | st.text(alphabet=st.characters(codec=None, categories=["Cs", "Cc", "Zs"])))
def test_any_question_is_answered_or_refused_in_one_line(user_path, engine, question):
    answered_or_refused(user_path, question, engine=engine, budget="2")


EDGE_INTS = ["-1", "0", "1", "2", "63", "64", "255", "256", "4096", "1000000000", str(2**63), "abc", "1.5"]
EDGE_FLOATS = ["nan", "inf", "-inf", "-0.0", "0", "0.5", "0.99", "1", "1.0000001", "1e308", "-1", "x"]
INT_OPTIONS = [
    "-n",
    "--max-tokens",
    "--seed",
    "--top-k",
    "--think-budget",
    "--min-think",
    "--ctx",
    "--width",
    "--beams",
    "--expansions",
]
INT_OPTIONS += ["--step-tokens", "--lookahead", "--rollouts", "--refine-rounds", "-b"]
FLOAT_OPTIONS = ["-t", "--min-p", "--confidence", "--exploration"]
options = st.lists(
    st.tuples(st.sampled_from(INT_OPTIONS), st.sampled_from(EDGE_INTS))
    | st.tuples(st.sampled_from(FLOAT_OPTIONS), st.sampled_from(EDGE_FLOATS)),
    min_size=1,
    max_size=3,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(strategy=st.sampled_from(list(STRATEGIES)), opts=options)
def test_numeric_options_at_their_edges_run_or_fail_in_one_line(capsys, strategy, opts):
    from ttc_cli.cli import main

    argv = ["ask", "What is 2 + 2?", "-s", strategy, "--json", "--max-tokens", "4", "-b", "8"]
    for flag, value in opts:
        argv += [flag, value]
    capsys.readouterr()
    with pytest.raises(SystemExit) as end:
        main(argv)
    out, err = capsys.readouterr()
    code = end.value.code
    if code == 0:
        assert out.count("\n") == 1 and err == ""
    else:
        assert code == 2 and out == "", (argv, code, err)
        assert err.startswith("ttc: error:") and err.count("\n") == 1, err


def test_a_huge_count_of_refine_rounds_is_sized_at_once(engine):
    """Found by hand after fuzzing: sizing rendered one conversation turn per round, so 10**9 rounds
    never finished. A round costs two tokens at least, so the budget bounds the rounds sizing counts."""
    p = build("What is 2 + 2?", "refine", PlanOptions(budget="8", refine_rounds=10**9))
    assert prepare(p, engine).search.refine_rounds == 10**9  # accepted, and sized in a moment
