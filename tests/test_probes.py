"""Answer probes: a running chain is asked what it would answer now, and settled probes vote early.

The scripted engine's probe reads the last "[N]" marker in the chain it forked from, so these tests script
what probes find and when; the real-model tests check what no script can: that probing a chain leaves its
KV cells, position, sampler and next-token logits as they were, and frees the forks.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import run_ttc
from fake_engine import Script
from hypothesis import given, settings
from hypothesis import strategies as st
from test_early_stop import early
from test_strategies import make_ctx, run

from ttc_cli.answers.probing import ProbeBook, Probing
from ttc_cli.budget import TokenBudget
from ttc_cli.engine.answer_probe import ProbeCost, probe
from ttc_cli.engine.sequence import SamplingParams
from ttc_cli.errors import UsageError
from ttc_cli.events import CandidateFinished, EarlyStop, Probed, TokensGenerated
from ttc_cli.options import PlanOptions
from ttc_cli.plan import build
from ttc_cli.strategies import STRATEGIES

CUE = "\n\nThe answer is"


def probing(**kw) -> Probing:
    return replace(Probing(every=8, tokens=6, settle=2, agree=0, weight=1.0), **kw)


def probed_ctx(scripts, samples, budget=10_000, **kw):
    ctx = make_ctx(scripts, samples=samples, budget=budget)
    ctx.early = early(rule="beta", confidence=0.9, width=None)
    ctx.probing = probing(**kw)
    ctx.probe_cue = ctx.engine.tokenize(CUE)
    return ctx


# ---- what probes say, as arithmetic ---------------------------------------------------------------
def test_a_chain_settles_once_its_last_probes_agree_and_may_end_later():
    book = ProbeBook(probing(settle=2, agree=3))
    assert book.due(0, 8) and not book.due(0, 7)
    book.record(0, 8, "5", "5")
    assert not book.due(0, 15) and book.due(0, 16)
    assert book.settled(0) is None  # one probe is not enough
    book.record(0, 16, "7", "7")
    assert book.settled(0) is None  # it moved
    book.record(0, 24, "7", "7")
    assert book.settled(0) == ("7", "7") and book.may_end(0) is None
    book.record(0, 32, "7", "7")
    assert book.may_end(0) == ("7", "7")
    book.record(0, 40, None, None)  # a probe that found no answer unsettles it
    assert book.settled(0) is None and book.latest(0) is None


def test_agree_zero_never_ends_a_chain():
    book = ProbeBook(probing(settle=1, agree=0))
    for at in (8, 16, 24, 32):
        book.record(0, at, "7", "7")
    assert book.settled(0) == ("7", "7") and book.may_end(0) is None


# ---- the sampler, scripted --------------------------------------------------------------------------
def test_a_run_stops_on_probed_votes_before_any_chain_ends():
    # Every chain reaches its answer early, then writes 300 more tokens: probes every 8 tokens see [7]
    # from the first round on, settle at the second, and the vote ends the run long before the chains do.
    script = Script("[7] so" + " x" * 150 + " The answer is 7.")
    ctx = probed_ctx([script], samples=8, settle=2)
    events, final = run("self-consistency", ctx)
    rounds = [e for e in events if isinstance(e, Probed)]
    stop = next(e for e in events if isinstance(e, EarlyStop))
    assert final.stopped_because == "early-stop" and final.answer == "7"
    assert "probed from running samples" in stop.detail
    assert len(rounds) == 2 and all(len(r.readings) == 8 for r in rounds)
    assert [r.settled for r in rounds[1].readings] == [True] * 8
    assert all(c.finish_reason == "probed" and c.answer == "7" for c in final.candidates)
    assert all(c.tokens == 16 for c in final.candidates)  # they ended at the second probe
    # the budget paid for the chains' tokens and for every probe's: nothing else, nothing more
    probe_tokens = sum(r.tokens for r in rounds)
    assert probe_tokens == 2 * 8 * len(" 7.\n")
    assert ctx.budget.spent == sum(c.tokens for c in final.candidates) + probe_tokens


def test_a_chain_whose_probes_agree_ends_there_with_its_probed_answer():
    # Chain 0 states [5] at once and pads; the others never mark an answer, so no vote can settle early.
    scripts = [Script("[5]" + " y" * 60 + " The answer is 5."), Script(" z" * 30 + " The answer is 9.")]
    ctx = probed_ctx(scripts, samples=2, settle=2, agree=3)
    events, final = run("self-consistency", ctx)
    first = next(e.candidate for e in events if isinstance(e, CandidateFinished))
    assert first.index == 0 and first.finish_reason == "probed" and first.answer == "5"
    assert first.tokens == 24  # three probes, at 8, 16 and 24 tokens, all read 5
    other = next(c for c in final.candidates if c.index == 1)
    assert other.finish_reason == "stop" and other.answer == "9"
    assert final.stopped_because == "completed"  # 1 vote each: nothing settled
    assert sorted(v.answer for v in final.votes) == ["5", "9"]


def test_probes_are_off_without_a_cue_or_early_stopping():
    script = Script("[7]" + " x" * 40 + " The answer is 7.")
    for change in ({"probe_cue": []}, {"early": None}):
        ctx = probed_ctx([script], samples=4)
        for k, v in change.items():
            setattr(ctx, k, v)
        events, final = run("self-consistency", ctx)
        assert not any(isinstance(e, Probed) for e in events)
        assert all(c.finish_reason == "stop" for c in final.candidates)


def test_probe_tokens_show_in_the_progress_and_never_pass_the_budget():
    script = Script("[3]" + " x" * 40 + " The answer is 3.")
    ctx = probed_ctx([script], samples=4, budget=60, settle=5)
    events, final = run("self-consistency", ctx)
    spent = [e.spent for e in events if isinstance(e, TokensGenerated | Probed)]
    assert spent == sorted(spent) and max(spent) <= 60 and ctx.budget.spent <= 60
    assert final.stopped_because == "budget"


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if STRATEGIES[s].takes_samples])
@settings(max_examples=30, deadline=None)
@given(
    marks=st.lists(st.sampled_from(["", "[4]", "[6]"]), min_size=1, max_size=4),
    pad=st.lists(st.integers(0, 40), min_size=1, max_size=4),
    samples=st.integers(2, 8),
    limit=st.integers(1, 400),
    every=st.integers(1, 12),
    settle=st.integers(1, 3),
    agree=st.integers(0, 3),
)
def test_budget_contract_holds_with_probes(strategy, marks, pad, samples, limit, every, settle, agree):
    scripts = [
        Script(m + "x" * pad[i % len(pad)] + f" The answer is {m[1:-1] or 5}.") for i, m in enumerate(marks)
    ]
    ctx = probed_ctx(scripts, samples=samples, budget=limit, every=every, settle=settle, agree=agree)
    events, final = run(strategy, ctx)
    probe_tokens = sum(e.tokens for e in events if isinstance(e, Probed))
    assert ctx.budget.spent <= limit
    assert ctx.budget.spent == sum(c.tokens for c in final.candidates) + probe_tokens
    assert ctx.engine.stats.generated_tokens == ctx.budget.spent
    assert len(final.candidates) <= samples
    for c in final.candidates:
        assert c.finish_reason != "probed" or c.answer is not None
    assert final.stopped_because in {"completed", "budget", "early-stop"}
    assert ctx.engine.cells_in_use == 0  # every fork, chain and root freed


# ---- options and profile -------------------------------------------------------------------------------
def test_probe_options_resolve_into_the_plan():
    p = build("What is 2 + 3?", "self-consistency", PlanOptions(probe=True, probe_every=40))
    assert p.probing is not None and p.probing.every == 40
    assert build("What is 2 + 3?", "self-consistency", PlanOptions()).probing is None  # off by default
    assert build("What is 2 + 3?", "self-consistency", PlanOptions(probe=False)).probing is None
    with pytest.raises(UsageError, match="--probe-every must be positive"):
        build("What is 2 + 3?", "self-consistency", PlanOptions(probe_every=0))


def test_a_bad_probe_setting_in_a_profile_is_one_clear_error(user_path):
    (user_path / "profiles").mkdir()
    (user_path / "profiles" / "bad.yaml").write_text("probe:\n  enabled: true\n  every: 0\n")
    with pytest.raises(UsageError, match="probe.every must be positive"):
        build("What is 2 + 3?", "self-consistency", PlanOptions(profile="bad"))


# ---- the real model ---------------------------------------------------------------------------------
def test_a_probe_leaves_the_chain_as_it_was_and_frees_its_forks(engine):
    import llama_cpp as L

    root = engine.prefill(engine.chat_tokens([{"role": "user", "content": "Count from one to twenty."}]))
    chain, twin_source = engine.fork(root), None
    decoder = engine.decoder(TokenBudget(100))
    decoder.add(chain, SamplingParams(temperature=0.8, seed=3, max_tokens=50))
    for _ in range(12):
        decoder.step()
    twin_source = engine.fork(chain)  # shares the chain's cells as they are before the probe
    free_before = len(engine._free_slots)
    state = (list(chain.tokens), chain.n_cached, chain.sampler, chain.n_sampled, bytes(chain.text_bytes))
    cells = (
        L.llama_memory_seq_pos_min(engine._mem, chain.slot),
        L.llama_memory_seq_pos_max(engine._mem, chain.slot),
    )
    budget, cost = TokenBudget(100), ProbeCost()
    texts = probe(engine, budget, [chain, twin_source], engine.tokenize(CUE), 6, cost)
    assert len(texts) == 2 and cost.rounds == 1 and cost.probes == 2
    assert budget.spent == cost.tokens > 0  # the probe's tokens were charged
    assert state == (
        list(chain.tokens),
        chain.n_cached,
        chain.sampler,
        chain.n_sampled,
        bytes(chain.text_bytes),
    )
    assert cells == (
        L.llama_memory_seq_pos_min(engine._mem, chain.slot),
        L.llama_memory_seq_pos_max(engine._mem, chain.slot),
    )
    assert len(engine._free_slots) == free_before  # both forks' slots back
    # The next token's logits, evaluated for the chain and for its pre-probe twin one at a time (the same
    # batch shape, so the same arithmetic): equal within float tolerance.
    rows = []
    for seq in (chain, twin_source):
        pending = seq.tokens[seq.n_cached :]
        engine.eval_batch(
            [(seq.slot, t, seq.n_cached + i, i == len(pending) - 1) for i, t in enumerate(pending)]
        )
        rows.append(engine.batch_logits(1)[0].copy())
        seq.n_cached = len(seq.tokens)
    assert np.allclose(rows[0], rows[1], atol=1e-3)
    for seq in (chain, twin_source, root):
        engine.release(seq)
        assert L.llama_memory_seq_pos_max(engine._mem, seq.slot) == -1


def test_json_reports_each_probe_and_probe_tokens_on_the_real_model():
    question = "Sam has 3 boxes with 4 pens in each box. How many pens does he have?"
    common = ("ask", question, "-s", "self-consistency", "-n", "4", "--task", "math", "--seed", "5", "--json")
    on = run_ttc(*common, "--probe", "--probe-every", "16", "--max-tokens", "96")
    assert on.returncode == 0, on.stderr
    import json

    data = json.loads(on.stdout)
    probes = data["probes"]
    assert probes["every"] == 16 and probes["rounds"] >= 1
    assert {"index", "position", "answer", "settled"} <= set(probes["readings"][0])
    assert all(r["position"] % 16 == 0 for r in probes["readings"])
    assert data["usage"]["probe_tokens"] == probes["tokens"] > 0
    spent = sum(c["tokens"] for c in data["candidates"]) + probes["tokens"]
    assert data["budget"]["spent"] == spent <= data["budget"]["limit"]
    assert data["width"]["chosen"][0]["detail"].startswith("answer probes")
    off = run_ttc(*common, "--no-probe", "--max-tokens", "96")
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["probes"] is None


def test_the_live_view_shows_each_running_samples_latest_probe_and_the_settled_tally():
    from rich.console import Console

    from ttc_cli.events import RunStarted
    from ttc_cli.ui.state import RunState
    from ttc_cli.ui.widgets import run_view

    script = Script("[7] so" + " x" * 150 + " The answer is 7.")
    ctx = probed_ctx([script], samples=4, settle=2)
    events, _ = run("self-consistency", ctx)
    second = [i for i, e in enumerate(events) if isinstance(e, Probed)][1]
    state = RunState("self-consistency", "fake", "cpu", 10_000, None)
    for e in [RunStarted("self-consistency", 4, 1000, 10_000, 19), *events[: second + 1]]:
        state.update(e)
    console = Console(record=True, width=110, color_system=None)
    console.print(run_view(state))
    text = console.export_text()
    assert text.count("7?✓") == 4  # every running sample's probe, settled
    assert "settled 7 ×4" in text
