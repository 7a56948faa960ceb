"""Budgets in seconds (a deadline beside the tokens) and the warning that a preset cannot pay for -n.

The deadline runs on a scripted engine whose every forward pass advances a clock by one second, so a run
cut at second 30 is exact and the test takes no real time.
"""

from __future__ import annotations

import pytest
from fake_engine import FakeEngine, Script

from ttc_cli.budget import BudgetSlice, TokenBudget, parse_seconds
from ttc_cli.engine.sequence import SamplingParams
from ttc_cli.errors import UsageError
from ttc_cli.events import Final
from ttc_cli.options import PlanOptions
from ttc_cli.plan import build
from ttc_cli.profile import load_profile
from ttc_cli.runner import execute
from ttc_cli.strategies import STRATEGIES
from ttc_cli.strategies.context import RunContext
from ttc_cli.ui.summary import summary
from ttc_cli.ui.terminal import budget_warnings

Q = "What is the answer?"
SHORT = "The answer is 7."  # 16 bytes: ends at its 17th step
LONG = "Let me think about this for a long while. " * 5 + "The answer is 9."


class TickingEngine(FakeEngine):
    """A forward pass takes one second of its clock."""

    def __init__(self, scripts: list[Script], **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(scripts, **kw)
        self.now = 0.0

    def eval_batch(self, items) -> None:  # type: ignore[no-untyped-def]
        self.now += 1.0
        super().eval_batch(items)


def ticking_ctx(scripts: list[Script], samples: int, deadline_s: float, limit: int = 100_000) -> RunContext:
    engine = TickingEngine(scripts)
    return RunContext(
        question=Q,
        engine=engine,
        budget=TokenBudget(limit, deadline_s=deadline_s, clock=lambda: engine.now),
        prompt_tokens=engine.tokenize(Q),
        samples=samples,
        sampling=SamplingParams(seed=0, max_tokens=1000),
    )


def final_of(strategy: str, ctx: RunContext) -> Final:
    events = list(STRATEGIES[strategy].run(ctx))
    assert isinstance(events[-1], Final) and sum(isinstance(e, Final) for e in events) == 1
    return events[-1]


# ---- the budget ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "seconds"),
    [("30s", 30.0), ("90s", 90.0), ("2m", 120.0), ("1m30s", 90.0), ("1.5s", 1.5), (" 45S ", 45.0)],
)
def test_durations_parse_to_seconds(spec, seconds):
    assert parse_seconds(spec) == seconds


@pytest.mark.parametrize("spec", ["30", "medium", "0s", "", "s", "3h", "-5s", "1,5s"])
def test_what_is_not_a_duration_is_none(spec):
    assert parse_seconds(spec) is None


def test_a_budget_grants_nothing_once_its_deadline_has_passed():
    now = [0.0]
    budget = TokenBudget(100, deadline_s=10, clock=lambda: now[0])
    assert budget.take(5) == 5 and budget.remaining == 95 and not budget.expired
    now[0] = 10.0
    assert budget.expired and budget.remaining == 0 and budget.take(5) == 0
    assert budget.spent == 5 and budget.cut_by == "deadline"
    budget.end()
    now[0] = 99.0
    assert budget.elapsed_s == 10.0  # the run's seconds, not what came after it


def test_a_spent_budget_was_cut_by_its_tokens_even_after_the_deadline():
    now = [0.0]
    budget = TokenBudget(4, deadline_s=10, clock=lambda: now[0])
    assert budget.take(9) == 4 and budget.cut_by == "budget"
    now[0] = 20.0
    assert budget.cut_by == "budget"


def test_the_clock_starts_at_start_or_else_at_the_first_grant():
    now = [5.0]
    budget = TokenBudget(100, deadline_s=10, clock=lambda: now[0])
    now[0] = 50.0  # a model loading: not the run's time
    budget.take(1)
    now[0] = 59.0
    assert not budget.expired and budget.elapsed_s == 9.0


def test_a_slice_follows_its_parents_deadline_and_may_be_empty():
    now = [0.0]
    parent = TokenBudget(100, deadline_s=10, clock=lambda: now[0])
    part = BudgetSlice(50, parent=parent)
    assert part.take(3) == 3 and parent.spent == 3
    now[0] = 11.0
    assert part.expired and part.remaining == 0 and part.take(3) == 0 and part.cut_by == "deadline"
    assert BudgetSlice(-4, parent=parent).take(1) == 0  # cut from what was left after the deadline


def test_a_budget_in_seconds_is_the_default_preset_with_a_deadline():
    budget, preset = load_profile().budget("30s")
    assert (budget.limit, budget.preset, budget.deadline_s) == (4096, "medium", 30.0)
    assert preset.name == "medium"
    assert load_profile().budget("high")[0].deadline_s is None


def test_plans_take_a_deadline_from_the_budget_or_the_deadline_option():
    assert build(Q, "greedy", PlanOptions(budget="2m")).deadline_s == 120.0
    high = build(Q, "self-consistency", PlanOptions(budget="high", deadline="30s"))
    assert (high.budget_limit, high.deadline_s, high.samples) == (12288, 30.0, 16)
    assert build(Q, "greedy", PlanOptions(deadline="45")).deadline_s == 45.0  # a bare number: seconds
    assert build(Q, "greedy", PlanOptions()).deadline_s is None
    assert build(Q, "greedy", PlanOptions(budget="30s")).new_budget().deadline_s == 30.0


@pytest.mark.parametrize(
    ("opts", "needle"),
    [
        (PlanOptions(budget="30s", deadline="10s"), "both set a deadline"),
        (PlanOptions(deadline="soon"), "invalid --deadline 'soon'"),
        (PlanOptions(deadline="0s"), "invalid --deadline"),
        (PlanOptions(budget="30x"), "or seconds (e.g. --budget 30s)"),
    ],
)
def test_a_wrong_deadline_is_a_usage_error(opts, needle):
    with pytest.raises(UsageError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        build(Q, "greedy", opts)


# ---- runs cut at the deadline ------------------------------------------------------------------------
def test_self_consistency_at_the_deadline_votes_among_the_finished_samples():
    scripts = [Script(SHORT), Script(LONG)] * 4  # the short ones end at step 17, the long ones run on
    ctx = ticking_ctx(scripts, samples=8, deadline_s=30)
    final = final_of("self-consistency", ctx)
    assert final.stopped_because == "deadline"
    assert final.answer == "7" and [(v.answer, v.count) for v in final.votes] == [("7", 4)]
    cut = [c for c in final.candidates if c.finish_reason == "budget"]
    assert len(cut) == 4 and all(0 < c.tokens < len(LONG) for c in cut)
    assert ctx.budget.spent < 8 * len(LONG)  # nothing was sampled after the deadline
    assert ctx.engine.now <= 31  # the prefill's pass, then one pass per step until second 30


def test_greedy_cut_at_the_deadline_answers_with_its_partial_text():
    ctx = ticking_ctx([Script(LONG)], samples=1, deadline_s=20)
    final = final_of("greedy", ctx)
    assert final.stopped_because == "deadline"
    assert final.candidates[0].finish_reason == "budget" and LONG.startswith(final.response)
    assert final.answer and 10 < len(final.response) < len(LONG)


def test_a_run_that_finishes_before_its_deadline_is_complete():
    ctx = ticking_ctx([Script(SHORT)] * 3, samples=3, deadline_s=1000)
    assert final_of("self-consistency", ctx).stopped_because == "completed"


def test_tokens_that_run_out_before_the_deadline_say_budget():
    ctx = ticking_ctx([Script(LONG)] * 3, samples=3, deadline_s=1000, limit=60)
    assert final_of("self-consistency", ctx).stopped_because == "budget"


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_stops_at_the_deadline_with_a_final(strategy):
    ctx = ticking_ctx([Script(LONG)] * 4, samples=4, deadline_s=25)
    final = final_of(strategy, ctx)
    assert final.stopped_because == "deadline" and final.answer
    assert ctx.engine.now <= 26  # the prefill's pass, then no pass after second 25
    assert ctx.budget.remaining == 0 and ctx.budget.take(1) == 0


def test_the_json_reports_the_deadline_and_the_seconds_spent():
    p = build(Q, "self-consistency", PlanOptions(budget="30s", samples=8, seed=0, early_stop=False))
    engine = TickingEngine([Script(SHORT), Script(LONG)] * 4)
    budget = p.new_budget()
    budget.clock = lambda: engine.now
    ctx = RunContext(
        question=Q,
        engine=engine,
        budget=budget,
        prompt_tokens=engine.tokenize(Q),
        samples=8,
        sampling=SamplingParams(seed=0, max_tokens=1000),
    )
    data = execute(p, ctx).to_json()
    assert data["schema"] == 2 and data["stopped_because"] == "deadline" and data["answer"] == "7"
    b = data["budget"]
    assert b["deadline_s"] == 30.0 and b["spent_s"] == 30.0 and 0 < b["spent"] < b["limit"] == 4096
    assert all("trace_confidence" in c and "confidence" not in c for c in data["candidates"])
    said = str(summary(data))
    assert "stopped: the 30s deadline passed; answered with what had finished" in said
    data["budget"]["spent"] = 0  # the prefill alone outlasted the deadline
    assert "the 30s deadline passed; before a token was sampled: no answer" in str(summary(data))


# ---- -n beyond what the preset pays for --------------------------------------------------------------
def test_more_samples_than_the_preset_pays_for_are_warned_of_with_a_fix():
    warning = build(Q, "self-consistency", PlanOptions(samples=16)).warning
    assert warning is not None
    assert "medium budget's 4,096 tokens cannot pay for 16 samples of up to 512 tokens (8,192)" in warning
    assert warning.endswith("use --budget high or --budget 8192")
    # The fixes it names pay for the samples, so following one warns no more.
    for fix in ("high", "8192"):
        assert build(Q, "self-consistency", PlanOptions(samples=16, budget=fix)).warning is None


def test_a_fix_for_a_longer_cap_keeps_n():
    warning = build(Q, "best-of-n", PlanOptions(max_tokens=2000)).warning
    assert warning is not None and warning.endswith("use --budget max -n 8 or --budget 16000 -n 8")


def test_a_deadline_budget_keeps_its_deadline_in_the_fix():
    warning = build(Q, "self-consistency", PlanOptions(samples=16, budget="30s")).warning
    assert warning is not None and "--budget high --deadline 30s" in warning


@pytest.mark.parametrize(
    ("strategy", "opts"),
    [
        ("self-consistency", PlanOptions()),  # every preset pays for its own N
        ("self-consistency", PlanOptions(budget="low")),
        ("self-consistency", PlanOptions(samples=16, budget="200")),  # a number is the user's own limit
        ("beam", PlanOptions(max_tokens=5000, budget="low")),  # a search's cap is a step's
    ],
)
def test_no_warning_where_the_budget_was_chosen_or_pays(strategy, opts):
    assert build(Q, strategy, opts).warning is None


def test_the_warning_goes_to_stderr_once_and_not_with_quiet(capsys):
    plans = [build(Q, s, PlanOptions(samples=16)) for s in ("self-consistency", "best-of-n", "greedy")]
    budget_warnings(plans, quiet=False)
    out, err = capsys.readouterr()
    assert out == "" and err.count("ttc: warning: the medium budget") == 1 and err.endswith("\n")
    budget_warnings(plans, quiet=True)
    assert capsys.readouterr().err == ""
    said: set[str] = set()
    budget_warnings(plans, quiet=False, said=said)
    budget_warnings(plans, quiet=False, said=said)  # compare's second model: said already
    assert capsys.readouterr().err.count("ttc: warning:") == 1
