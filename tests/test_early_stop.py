"""Early-stopping rules: their arithmetic by hand, and their effect on runs of a scripted engine."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from conftest import ANSWER_42, eos_token, write_prompt
from fake_engine import Script
from hypothesis import given, settings
from hypothesis import strategies as st
from test_strategies import make_ctx, run

from ttc_cli.answers.confidence import GroupConfidence, lowest_group_confidence, token_confidence
from ttc_cli.answers.stopping import (
    EarlyStopping,
    TraceFilter,
    VoteStop,
    leader_probability,
    regularized_beta,
)
from ttc_cli.events import CandidateFinished, CandidateStarted, EarlyStop, Routed, TraceCancelled
from ttc_cli.strategies import STRATEGIES


# ---- arithmetic ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("leader", "runner_up", "expected"),
    [
        (3, 0, 1 - 0.5**4),  # Beta(4, 1): P(X > 1/2) = 1 - (1/2)^4
        (4, 0, 1 - 0.5**5),
        (5, 1, 1 - 8 / 128),  # Beta(6, 2): P(Bin(7, 1/2) <= 5) = 1 - (7 + 1) / 2^7
        (2, 2, 0.5),
        (0, 0, 0.5),
        (6, 3, sum(math.comb(10, k) for k in range(7)) / 2**10),  # Beta(7, 4): P(Bin(10, 1/2) <= 6)
    ],
)
def test_leader_probability_matches_the_binomial_form(leader, runner_up, expected):
    assert leader_probability(leader, runner_up) == pytest.approx(expected, abs=1e-9)


@given(a=st.floats(0.5, 60), b=st.floats(0.5, 60), x=st.floats(0.01, 0.99))
def test_regularized_beta_is_a_cdf_with_the_reflection_symmetry(a, b, x):
    value = regularized_beta(x, a, b)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(1.0 - regularized_beta(1.0 - x, b, a), abs=1e-9)
    assert regularized_beta(min(0.999, x + 0.01), a, b) >= value - 1e-12


def test_weighted_counts_use_the_same_posterior():
    assert leader_probability(2.5, 0.5) == pytest.approx(1 - regularized_beta(0.5, 3.5, 1.5))
    assert leader_probability(2.5, 0.5) + leader_probability(0.5, 2.5) == pytest.approx(1.0)


def test_decided_rule_stops_exactly_when_the_rest_cannot_overturn_the_leader():
    rule = VoteStop("decided", 0.95)
    assert rule.check([5, 1], finished=6, total=10) is None  # 4 left could make it a 5-5 tie
    assert rule.check([5, 1], finished=6, total=9) is not None  # 3 left: 5 vs at most 4
    assert rule.check([4, 2], finished=6, total=8) is None  # 2 left could tie it
    assert rule.check([5, 1], finished=8, total=8) is None  # nothing left to save
    d = rule.check([6, 0], finished=6, total=8)
    assert d is not None and d.rule == "decided" and "2 samples left" in d.detail


def test_decided_counts_unparsed_samples_as_finished():
    rule = VoteStop("decided", 0.95)
    # 3 votes for the leader, 2 samples with no answer: 5 finished of 6, 1 left, 3 - 0 > 1
    assert rule.check([3], finished=5, total=6) is not None


def test_beta_rule_stops_at_the_threshold_and_reports_the_figures():
    rule = VoteStop("beta", 0.95)
    assert rule.check([3], finished=3, total=16) is None  # P = 0.9375
    d = rule.check([4], finished=4, total=16)  # P = 0.96875
    assert d is not None and d.rule == "beta" and d.probability == pytest.approx(0.96875)
    assert "4 of 4 votes" in d.detail and "0.969" in d.detail and "after 4/16" in d.detail
    assert VoteStop("beta", 0.9).check([3], finished=3, total=16) is not None
    assert rule.check([5, 1], finished=6, total=16) is None  # 0.9375 again
    assert rule.check([1], finished=1, total=16) is None  # fewer than min_votes


def test_token_and_group_confidence():
    assert token_confidence(np.array([-1.0, -2.0, -3.0])) == pytest.approx(2.0)
    assert lowest_group_confidence([5, 5, 1, 1, 5, 5], window=2) == pytest.approx(1.0)
    assert lowest_group_confidence([5, 5, 1, 1, 5, 5], window=3) == pytest.approx(7 / 3)
    assert lowest_group_confidence([4, 2], window=8) == pytest.approx(3.0)
    g = GroupConfidence(3)
    assert [g.add(x) for x in (3, 3, 3, 0, 3)] == [None, None, 3.0, 2.0, 2.0]
    assert g.lowest == 2.0


def test_trace_filter_sets_its_threshold_from_the_warmup_and_cancels_below_it():
    f = TraceFilter(warmup=2, window=2, keep=0.5)
    rows = {c: c for c in (1.0, 3.0, 5.0)}  # token confidences
    for i, c in ((0, 3.0), (1, 5.0)):
        f.start(i)
        for _ in range(4):
            assert f.observe(i, rows[c]) is None  # no threshold during the warm-up
        f.finish(i, counted=True)
    assert f.threshold == pytest.approx(4.0)  # median of the warm-up's lowest groups (3 and 5)
    f.start(2)
    assert f.observe(2, rows[5.0]) is None  # the window is not full yet
    assert f.observe(2, rows[5.0]) is None
    assert f.observe(2, rows[3.0]) is None  # window (5 + 3) / 2 = 4: not below 4
    assert f.observe(2, rows[1.0]) == pytest.approx(2.0)  # window (3 + 1) / 2 = 2 < 4: cancel


def test_trace_filter_ignores_cancelled_or_cut_traces_for_the_warmup():
    f = TraceFilter(warmup=1, window=2, keep=1.0)
    f.start(0)
    f.observe(0, 2.0)
    f.finish(0, counted=False)
    assert f.threshold is None and f.warm == []


# ---- runs on the scripted engine -------------------------------------------------------------------
def early(**kw) -> EarlyStopping:
    """The built-in profile's early-stopping settings, with `kw` changed."""
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import early_stopping
    from ttc_cli.profile import load_profile

    defaults = early_stopping(load_profile(), PlanOptions(early_stop=True))
    assert defaults is not None
    return replace(defaults, **kw)


def test_unanimous_samples_stop_at_the_posterior_threshold_and_the_rest_never_start():
    scripts = [Script("The answer is 7.")]
    ctx = make_ctx(scripts, samples=16)
    ctx.early = early(rule="beta", confidence=0.95, width=2)
    events, final = run("self-consistency", ctx)
    stops = [e for e in events if isinstance(e, EarlyStop)]
    assert len(stops) == 1 and stops[0].rule == "beta" and stops[0].finished == 4
    assert final.stopped_because == "early-stop" and final.early_stop is stops[0]
    assert final.answer == "7" and len(final.candidates) == 4
    assert sum(isinstance(e, CandidateStarted) for e in events) == 4
    per_sample = len("The answer is 7.") + 1
    assert ctx.budget.spent == 4 * per_sample
    assert stops[0].saved == 12 * per_sample


def test_without_early_stopping_every_sample_runs():
    ctx = make_ctx([Script("The answer is 7.")], samples=16)
    ctx.early = None
    events, final = run("self-consistency", ctx)
    assert final.stopped_because == "completed" and final.early_stop is None
    assert len(final.candidates) == 16 and not any(isinstance(e, EarlyStop) for e in events)


def test_stopping_cancels_samples_in_flight_and_they_do_not_vote():
    seven = Script("The answer is 7.")
    scripts = [seven, seven, Script("x" * 200 + " The answer is 9.")]  # candidate i types script i % 3
    ctx = make_ctx(scripts, samples=9)
    ctx.early = early(rule="decided", width=3)
    events, final = run("self-consistency", ctx)
    # 0 and 1 finish, then 3 and 4, then 6 while 2 and 5 are still typing x's: 5 votes for 7 with 4
    # samples left is decided.
    stop = next(e for e in events if isinstance(e, EarlyStop))
    assert stop.rule == "decided" and stop.finished == 5
    assert final.answer == "7" and final.stopped_because == "early-stop"
    cancelled = sorted(c.index for c in final.candidates if c.finish_reason == "cancelled")
    assert cancelled == [2, 5]
    assert sum(v.count for v in final.votes) == 5
    assert ctx.budget.spent == sum(c.tokens for c in final.candidates)


def test_deepconf_cancels_a_low_confidence_trace_after_the_warmup():
    sure, surer = Script("The answer is 7." + " " * 30, 12.0), Script("The answer is 7." + " " * 30, 14.0)
    unsure = Script("hmm " * 40 + "The answer is 3.", 0.0)
    ctx = make_ctx([sure, surer, unsure, surer, surer, surer], samples=6)
    ctx.early = early(rule="deepconf", confidence=0.999, width=3, warmup=2, window=4, keep=0.9)
    events, final = run("self-consistency", ctx)
    cancels = [e for e in events if isinstance(e, TraceCancelled)]
    assert [c.index for c in cancels] == [2]
    assert cancels[0].trace_confidence < cancels[0].threshold
    unsure_cand = next(c for c in final.candidates if c.index == 2)
    assert unsure_cand.finish_reason == "cancelled" and unsure_cand.tokens < len(unsure.text)
    assert final.answer == "7"


def test_best_of_n_stops_early_too():
    ctx = make_ctx([Script("The answer is 5.")], samples=8)
    ctx.early = early(rule="beta", confidence=0.95, width=1)
    _, final = run("best-of-n", ctx)
    assert final.stopped_because == "early-stop" and len(final.candidates) == 4
    assert final.early_stop is not None


def test_samples_cut_by_ctrl_c_never_trigger_an_early_stop():
    scripts = [Script("The answer is 4."), Script("The answer is 4."), Script("x" * 500)]
    ctx = make_ctx(scripts, samples=4)
    ctx.early = early(rule="decided", width=3)
    events = []
    for event in STRATEGIES["self-consistency"].run(ctx):
        events.append(event)
        if sum(isinstance(e, CandidateFinished) for e in events) == 2 and not ctx.stop.is_set():
            ctx.stop.set()
    final = events[-1]
    # 2 votes with 1 sample left would be "decided", but the third sample was interrupted, not finished
    assert final.stopped_because == "interrupted" and final.early_stop is None
    assert not any(isinstance(e, EarlyStop) for e in events)


def test_a_budget_that_runs_out_before_every_sample_started_says_budget():
    ctx = make_ctx([Script("The answer is 1."), Script("The answer is 2.")], samples=8, budget=34)
    ctx.early = early(rule="decided", width=2)
    _, final = run("self-consistency", ctx)
    assert ctx.budget.spent == 34 and len(final.candidates) == 2
    assert final.stopped_because == "budget"


@pytest.mark.parametrize("strategy", [name for name, s in STRATEGIES.items() if not s.is_search])
@settings(max_examples=30, deadline=None)
@given(
    answers=st.lists(st.integers(0, 3), min_size=1, max_size=5),
    pad=st.lists(st.integers(0, 30), min_size=1, max_size=5),
    samples=st.integers(1, 12),
    limit=st.integers(1, 400),
    rule=st.sampled_from(["beta", "decided", "deepconf"]),
    width=st.integers(1, 6),
    confidence=st.floats(0.6, 1.0),
)
def test_budget_contract_holds_with_early_stopping(
    strategy, answers, pad, samples, limit, rule, width, confidence
):
    scripts = [
        Script("x" * pad[i % len(pad)] + f" The answer is {a}.", 1.0 + (i % 3) * 4)
        for i, a in enumerate(answers)
    ]
    ctx = make_ctx(scripts, samples=samples, budget=limit)
    ctx.early = early(rule=rule, width=width, confidence=confidence, warmup=2, window=4)
    events, final = run(strategy, ctx)
    assert ctx.budget.spent <= limit
    assert sum(c.tokens for c in final.candidates) == ctx.budget.spent
    n = samples if STRATEGIES[strategy].takes_samples else 1
    assert len(final.candidates) <= n
    assert final.stopped_because in {"completed", "budget", "early-stop"}
    if final.stopped_because == "early-stop":
        assert final.early_stop is not None and final.early_stop.saved >= 0
    started = [e.index for e in events if isinstance(e, CandidateStarted)]
    assert started == list(range(len(started)))  # in seed order, each once


def auto_run(answers: list[str], samples: int = 16):
    scripts = [Script(f"The answer is {a}.") for a in answers]
    ctx = make_ctx(scripts, samples=samples)
    ctx.early = early(rule="beta", confidence=0.95, width=4)
    events, final = run("auto", ctx)
    routes = [e for e in events if isinstance(e, Routed)]
    assert len(routes) == 1 and final.route is routes[0]
    return events, final, routes[0]


def test_auto_stops_after_the_probe_when_it_is_unanimous():
    events, final, route = auto_run(["7"])
    assert route.difficulty == "easy" and "4 of 4 probe samples agree" in route.reason
    assert len(final.candidates) == 4 and final.stopped_because == "early-stop"
    assert final.early_stop is not None and final.early_stop.rule == "auto"
    assert final.answer == "7"


def test_auto_continues_to_n_when_the_probe_partly_agrees():
    # probe: 7, 7, 3, 5 -> medium, up to 16 // 2 = 8 samples, with the beta rule after the probe
    events, final, route = auto_run(["7", "7", "3", "5", "9", "3", "5", "9"])
    assert route.difficulty == "medium" and route.samples == 8
    assert len(final.candidates) == 8 and final.answer in {"3", "5", "7", "9"}
    assert final.stopped_because == "completed"
    first_after_probe = next(
        i for i, e in enumerate(events) if isinstance(e, CandidateStarted) and e.index == 4
    )
    assert events.index(route) < first_after_probe  # the route is announced before it acts


def test_auto_spends_up_to_n_when_no_two_probe_samples_agree():
    events, final, route = auto_run([str(i) for i in range(16)])
    assert route.difficulty == "hard" and route.samples == 16
    assert len(final.candidates) == 16


# ---- the real model ---------------------------------------------------------------------------------
def ask(engine, question="What is 12 + 30?", sampling: dict | None = None, **opts):
    from dataclasses import replace

    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build
    from ttc_cli.runner import execute, prepare

    p = build(question, opts.pop("strategy", "self-consistency"), PlanOptions(**opts))
    ctx = prepare(p, engine)
    ctx.sampling = replace(ctx.sampling, **(sampling or {}))
    events: list = []
    result = execute(p, ctx, events.append)
    return result.to_json(), events


@pytest.fixture
def forced(user_path) -> str:
    """A task whose grammar makes every sample the same parseable answer, on any host's kernels."""
    return write_prompt(user_path, "forced", ANSWER_42)


def test_early_stop_fires_on_the_real_model_and_json_reports_it(engine, forced):
    # Every sample is the same greedy chain stating 42, so the vote is unanimous: with 2 in flight and the
    # default confidence 0.7, P = 1 - 1/2^3 = 0.875 after the first 2.
    data, events = ask(
        engine, task=forced, strategy="self-consistency", temperature=0.0, samples=16, max_tokens=120, width=2
    )
    stop = data["early_stop"]
    assert data["stopped_because"] == "early-stop"
    assert stop["rule"] == "deepconf" and stop["samples_finished"] == 2 and stop["samples"] == 16
    assert "P(leader is the majority) = 0.875 >= 0.7" in stop["detail"]
    per_sample = data["candidates"][0]["tokens"]
    assert len(data["candidates"]) == 2 and data["budget"]["spent"] == 2 * per_sample
    assert stop["saved_tokens"] == 14 * per_sample
    assert sum(isinstance(e, EarlyStop) for e in events) == 1


def test_no_early_stop_runs_all_n_on_the_real_model(engine, forced):
    data, events = ask(
        engine, task=forced, strategy="self-consistency", samples=16, max_tokens=120, early_stop=False
    )
    assert data["stopped_because"] == "completed" and data["early_stop"] is None
    assert len(data["candidates"]) == 16 and not any(isinstance(e, EarlyStop) for e in events)
    assert data["votes"][0]["count"] == 16 and data["answer"] == "42"


def test_deepconf_cancels_traces_live_on_the_real_model(engine, user_path):
    profile = user_path / "profiles" / "default.yaml"  # merged over the built-in default
    profile.parent.mkdir(parents=True, exist_ok=True)
    # Later traces must stay above the best of the four warm-up traces' weakest windows. This needs no
    # particular text: with the end token banned every trace runs 60 tokens, and a later trace's weakest
    # window beats the best of four exchangeable ones with probability 1/5, so all 8 later traces do
    # about once in 400,000 runs.
    profile.write_text("early_stop: {warmup: 4, window: 8, keep: 0.01, width: 4}\n")
    data, events = ask(
        engine,
        question="Explain why the sky is blue.",
        sampling={"logit_bias": ((eos_token(engine), float("-inf")),)},
        strategy="self-consistency",
        stop_rule="deepconf",
        samples=12,
        max_tokens=60,
        seed=11,
    )
    cancels = [e for e in events if isinstance(e, TraceCancelled)]
    assert cancels, "no trace fell below the warm-up's weakest window"
    by_index = {c["index"]: c for c in data["candidates"]}
    for e in cancels:
        assert e.trace_confidence < e.threshold
        assert by_index[e.index]["finish_reason"] == "cancelled"
        assert by_index[e.index]["tokens"] == e.tokens >= 8
    assert data["budget"]["spent"] == sum(c["tokens"] for c in data["candidates"])


def test_a_filtered_vote_runs_every_sample_and_refuses_an_explicit_early_stop():
    """The filtered vote keeps the most confident half of all N traces: a stop decided on the full tally
    could disagree with it, so the two never run together."""
    from ttc_cli.errors import UsageError
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build

    def plan(question: str, opts: PlanOptions):
        return build(question, "self-consistency", opts)

    assert plan("What is 2 + 2?", PlanOptions(vote="filtered")).early is None
    assert plan("What is 2 + 2?", PlanOptions(vote="majority")).early is not None
    with pytest.raises(UsageError, match="--vote filtered .* --early-stop"):
        plan("What is 2 + 2?", PlanOptions(vote="filtered", early_stop=True))
