"""How many samples decode at once: the throughput curve (measured, cached) and the width policy on it."""

from __future__ import annotations

import json

import pytest
from fake_engine import Script
from test_early_stop import early
from test_strategies import make_ctx, run

from ttc_cli.answers.stopping import VoteStop
from ttc_cli.engine import throughput
from ttc_cli.engine.sequence import SamplingParams
from ttc_cli.engine.throughput import Curve, widths_up_to
from ttc_cli.events import CandidateStarted, WidthChosen
from ttc_cli.strategies.width import NO_CURVE_WIDTH, choose_width, votes_to_stop

FLAT = Curve(((1, 100.0), (2, 200.0), (4, 400.0), (8, 800.0), (16, 1600.0)))  # a GPU: per sample, no cost
CPU = Curve(((1, 15.0), (2, 20.0), (4, 28.0), (8, 25.0), (16, 31.0)))  # this file's 2-core AVX-512 host
SATURATED = Curve(((1, 30.0), (16, 31.0)))  # batching buys nothing


def test_curve_interpolates_between_widths_and_is_flat_past_the_widest():
    assert CPU.rate(1) == 15.0 and CPU.rate(3) == pytest.approx(24.0) and CPU.rate(12) == pytest.approx(28.0)
    assert CPU.rate(64) == 31.0 and CPU.widest == 16
    assert Curve.from_json(CPU.to_json()) == CPU
    assert widths_up_to(16) == [1, 2, 4, 8, 16] and widths_up_to(12) == [1, 2, 4, 8, 12]
    assert widths_up_to(1) == [1]


def test_votes_to_stop_counts_the_agreeing_votes_the_rule_still_needs():
    beta = VoteStop("beta", 0.7)
    assert votes_to_stop(beta, [], 0, 16) == 2  # P(Beta(3,1) > 1/2) = 0.875; one vote is below min_votes
    assert votes_to_stop(beta, [1.0], 1, 16) == 1
    assert votes_to_stop(beta, [1.0, 1.0, 1.0], 3, 16) > 1
    decided = VoteStop("decided", 1.0)
    assert votes_to_stop(decided, [], 0, 4) == 3  # 3 votes to 0 with 1 left cannot be overturned
    assert votes_to_stop(decided, [1.0, 1.0], 2, 3) == 2  # cannot stop before the last sample


def test_a_flat_curve_or_an_unsettled_vote_decodes_everything_at_once():
    assert choose_width(FLAT, 16, 2, 0.0, 0).width == 16  # a GPU: 16 cost what 1 does
    assert choose_width(FLAT, 16, 1, 5.0, 5).width >= 14  # a near tie with 16: the narrower is chosen
    assert choose_width(CPU, 16, 17, 0.0, 0).width == 16  # the rule cannot stop before the last sample


def test_a_likely_near_stop_on_a_saturated_curve_keeps_few_in_flight():
    sure = choose_width(SATURATED, 12, 1, 4.0, 4)  # 4 of 4 agree: one more agreeing vote stops it
    assert sure.width == 1 and "1 more agreeing vote" in sure.detail
    assert choose_width(CPU, 16, 2, 0.0, 0).width == 4  # the measured CPU curve's best at the start
    assert choose_width(CPU, 1, 1, 0.0, 0).width == 1


@pytest.mark.parametrize("curve", [FLAT, CPU, SATURATED])
def test_the_chosen_width_has_the_least_expected_time(curve):
    """The docstring's E(w), checked against every other width for a grid of states."""
    for remaining in (2, 5, 16):
        for to_stop in range(1, remaining + 1):
            for leader, finished in ((0.0, 0), (1.0, 2), (3.0, 3)):
                p = ((leader + 1) / (finished + 2)) ** to_stop

                def expected(w, p=p, to_stop=to_stop, remaining=remaining):
                    return (p * max(to_stop, w) + (1 - p) * remaining) / curve.rate(w)

                chosen = choose_width(curve, remaining, to_stop, leader, finished).width
                best = min(expected(w) for w in range(1, remaining + 1))
                assert expected(chosen) <= best * 1.02 + 1e-12


def test_the_sampler_follows_the_policy_and_reports_each_change():
    ctx = make_ctx([Script("The answer is 7.")], samples=16)
    ctx.early = early(rule="beta", confidence=0.95, width=None)
    ctx.throughput = SATURATED
    events, final = run("self-consistency", ctx)
    widths = [e for e in events if isinstance(e, WidthChosen)]
    assert widths and all(w.policy == "measured" for w in widths)
    assert widths[0].width == 1 and widths[0].votes == 0  # batching buys nothing here: one at a time
    assert final.stopped_because == "early-stop" and len(final.candidates) == 4  # none started in vain

    ctx = make_ctx([Script("The answer is 7.")], samples=16)
    ctx.early = early(rule="beta", confidence=0.95, width=None)
    ctx.throughput = FLAT
    events, final = run("self-consistency", ctx)
    assert [e.width for e in events if isinstance(e, WidthChosen)] == [16]
    assert sum(isinstance(e, CandidateStarted) for e in events) == 16  # all at once, as on a GPU


@pytest.mark.parametrize(
    ("width", "curve", "expected", "policy"), [(3, FLAT, 3, "fixed"), (None, None, NO_CURVE_WIDTH, "fixed")]
)
def test_a_fixed_width_or_no_curve_ignores_the_policy(width, curve, expected, policy):
    ctx = make_ctx([Script("The answer is 7.")], samples=8)
    ctx.early = early(rule="beta", confidence=0.95, width=width)
    ctx.throughput = curve
    events, _ = run("self-consistency", ctx)
    chosen = [e for e in events if isinstance(e, WidthChosen)]
    assert [(e.width, e.policy) for e in chosen] == [(expected, policy)]


def test_width_option_and_profile_key_fix_the_sampling_width(user_path):
    from ttc_cli.errors import UsageError
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build

    assert build("1+1?", "self-consistency", PlanOptions()).early.width is None  # auto by default
    assert build("1+1?", "self-consistency", PlanOptions(width=5)).early.width == 5
    (user_path / "profiles").mkdir()
    (user_path / "profiles" / "default.yaml").write_text("early_stop: {width: 3}\n")
    assert build("1+1?", "self-consistency", PlanOptions()).early.width == 3
    (user_path / "profiles" / "default.yaml").write_text("early_stop: {width: wide}\n")
    with pytest.raises(UsageError, match="early_stop.width must be a number or auto"):
        build("1+1?", "self-consistency", PlanOptions())


def test_the_cache_keeps_a_curve_per_key_and_ignores_a_corrupt_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TTC_CACHE_PATH", str(tmp_path))
    throughput.store("host-a", CPU)
    assert throughput.cached("host-a", 16) == CPU
    assert throughput.cached("host-a", 32) is None  # measured only up to 16
    assert throughput.cached("host-b", 4) is None
    (tmp_path / "throughput.json").write_text("{not json")
    assert throughput.cached("host-a", 4) is None
    throughput.store("host-a", FLAT)
    assert json.loads((tmp_path / "throughput.json").read_text())["host-a"]["16"] == 1600.0


def test_a_real_engine_measures_its_curve_and_leaves_the_context_as_it_found_it(engine):
    """Measuring decodes in the run's context and then recreates it: a seeded run right after a
    measurement writes exactly what the same run writes without one."""
    from ttc_cli.budget import TokenBudget

    def sample_once() -> list[int]:
        root = engine.prefill(engine.tokenize("Count: one, two,", add_special=True))
        decoder = engine.decoder(TokenBudget(48))
        seqs = [engine.fork(root) for _ in range(3)]
        for i, seq in enumerate(seqs):
            decoder.add(seq, SamplingParams(temperature=0.9, seed=11 + i, max_tokens=16))
        for _ in decoder:
            pass
        out = [t for s in seqs for t in s.tokens]
        for s in [*seqs, root]:
            engine.release(s)
        return out

    engine.fresh_context()
    before = sample_once()
    curve = throughput.measure(engine, [1, 2, 4], SamplingParams(top_logprobs=20))
    assert curve is not None and [w for w, _ in curve.rates] == [1, 2, 4]
    assert all(rate > 0 for _, rate in curve.rates)
    assert sample_once() == before
    key = engine.throughput_key()
    assert "threads" in key and engine.model_name in key


def test_ask_measures_once_per_host_and_model_then_reads_the_cache(tmp_path):
    from conftest import run_ttc

    env = {"TTC_CACHE_PATH": str(tmp_path)}
    args = ("ask", "What is 2+2?", "--json", "-n", "4", "-b", "200", "--max-tokens", "16", "--seed", "3")
    args += ("--no-probe",)  # with answer probes every sample decodes at once: no width to measure
    first = json.loads(run_ttc(*args, env=env).stdout)
    assert first["width"]["policy"] == "measured" and first["width"]["measured_s"] > 0
    assert set(first["width"]["curve_tokens_per_s"]) == {"1", "2", "4"}
    assert first["budget"]["spent"] == first["usage"]["generated_tokens"]  # the measurement is not charged
    second = json.loads(run_ttc(*args, env=env).stdout)
    assert "measured_s" not in second["width"]
    assert second["width"]["curve_tokens_per_s"] == first["width"]["curve_tokens_per_s"]
    assert [c["text"] for c in second["candidates"]] == [c["text"] for c in first["candidates"]]


def test_a_measurement_wider_than_the_run_fits_its_context(tmp_path):
    """-n 63 on a tiny budget reserves a small KV cache; the curve it measures first (up to 63 at once)
    must fit in it too (found by tests/test_fuzz.py: 'the KV cache (256 cells) is full')."""
    from conftest import run_ttc

    args = ("ask", "What is 2 + 2?", "-s", "best-of-n", "--json", "--max-tokens", "4", "-b", "8", "-n", "63")
    args += ("--no-probe",)
    done = run_ttc(*args, env={"TTC_CACHE_PATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "63" in json.loads(done.stdout)["width"]["curve_tokens_per_s"]


def test_doctor_measures_a_model_and_lists_the_cached_curves(tmp_path):
    from conftest import run_ttc

    env = {"TTC_CACHE_PATH": str(tmp_path)}
    empty = run_ttc("doctor", env=env)
    assert empty.returncode == 0 and "no throughput measured yet" in empty.stdout
    done = run_ttc("doctor", "--measure", "--widest", "4", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["cpu"] and data["llama_cpp_python"]
    [curve] = data["curves"]
    assert curve["measured_now"] and set(curve["tokens_per_s"]) == {"1", "2", "4"}
    assert set(json.loads((tmp_path / "throughput.json").read_text())) == {curve["key"]}
    assert "tok/s by samples at once" in run_ttc("doctor", env=env).stdout
    bad = run_ttc("doctor", "--measure", "--widest", "0", env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--widest" in bad.stderr
