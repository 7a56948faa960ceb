"""Strategy and decoder logic under a scripted engine: exact votes, scores, budgets and stops."""

from __future__ import annotations

import pytest
from conftest import OUTSIDE
from fake_engine import FakeEngine, Script
from hypothesis import given, settings
from hypothesis import strategies as st

from ttc_cli.answers.calibration import platt
from ttc_cli.budget import TokenBudget
from ttc_cli.engine.sequence import SamplingParams
from ttc_cli.events import CandidateFinished, Final, TokensGenerated, VotesUpdated
from ttc_cli.strategies import STRATEGIES
from ttc_cli.strategies.context import RunContext


def make_ctx(
    scripts: list[Script], samples: int, budget: int = 10_000, vote: str = "majority", **kw
) -> RunContext:
    engine = FakeEngine(scripts, **kw)
    prompt = "What is the answer?"
    return RunContext(
        question=prompt,
        engine=engine,
        budget=TokenBudget(budget),
        prompt_tokens=engine.tokenize(prompt),
        samples=samples,
        sampling=SamplingParams(seed=0, max_tokens=1000),
        vote=vote,
    )


def run(strategy: str, ctx: RunContext) -> tuple[list, Final]:
    events = list(STRATEGIES[strategy].run(ctx))
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) == 1 and events[-1] is finals[0]
    return events, finals[0]


def test_self_consistency_returns_the_plurality_with_equivalent_numbers_merged():
    scripts = [
        Script("The answer is 7."),
        Script("The answer is 1,000."),
        Script("I think 1000.0"),
        Script("The answer is 7"),
        Script("So the answer is 1000"),
    ]
    events, final = run("self-consistency", make_ctx(scripts, samples=5))
    assert final.answer == "1000"
    assert [(v.answer, v.count) for v in final.votes] == [("1000", 3), ("7", 2)]
    assert final.selection.startswith("plurality vote: 3 of 5 votes")
    tallies = [e for e in events if isinstance(e, VotesUpdated)]
    assert len(tallies) == 5 and sum(v.count for v in tallies[-1].votes) == 5


def test_weighted_vote_lets_two_confident_samples_beat_three_unsure_ones():
    scripts = [
        Script("The answer is 7.", 0.0),
        Script("The answer is 42.", 12.0),
        Script("The answer is 7.", 0.0),
        Script("The answer is 42.", 12.0),
        Script("The answer is 7.", 0.0),
    ]
    _, majority = run("self-consistency", make_ctx(scripts, samples=5))
    _, weighted = run("self-consistency", make_ctx(scripts, samples=5, vote="weighted"))
    assert majority.answer == "7"
    assert weighted.answer == "42"
    assert weighted.selection.startswith("weighted vote")


def test_filtered_vote_lets_only_the_most_confident_half_vote():
    scripts = [
        Script("The answer is 7.", 0.0),
        Script("The answer is 42.", 12.0),
        Script("The answer is 7.", 0.0),
        Script("The answer is 42.", 12.0),
        Script("The answer is 7.", 0.0),
    ]
    _, final = run("self-consistency", make_ctx(scripts, samples=5, vote="filtered"))
    assert final.answer == "42"
    assert final.selection.startswith("plurality vote among the 2 most confident of 5: 2 of 2 votes")
    confident = {c.index: c.trace_confidence for c in final.candidates}
    assert confident[1] > confident[0]


def test_self_consistency_without_parseable_answers_picks_the_most_consistent_text():
    scripts = [
        Script("cats are mammals that purr"),
        Script("cats are mammals that meow"),
        Script("bananas grow on tall plants"),
        Script("cats are mammals"),
    ]
    _, final = run("self-consistency", make_ctx(scripts, samples=4))
    assert final.votes == ()
    assert final.answer == "cats are mammals that purr"
    assert "most consistent" in final.selection


def test_unparseable_candidates_do_not_vote_and_the_output_says_so():
    scripts = [Script("The answer is 5."), Script("no idea"), Script("The answer is 5.")]
    _, final = run("self-consistency", make_ctx(scripts, samples=3))
    assert final.answer == "5"
    assert "1 candidate(s) stated no parseable answer" in final.selection


def test_best_of_n_keeps_the_highest_mean_logprob():
    scripts = [
        Script("The answer is 1.", 1.0),
        Script("The answer is 2.", 9.0),
        Script("The answer is 3.", 4.0),
    ]
    _, final = run("best-of-n", make_ctx(scripts, samples=3))
    assert final.answer == "2" and final.chosen == 1
    scores = {c.index: c.score for c in final.candidates}
    assert scores[1] > scores[2] > scores[0]
    assert final.confidence == pytest.approx(2 / 5)  # 1 of 3 ended samples backs it: (1 + 1) / (3 + 2)


def test_best_of_n_confidence_counts_the_samples_agreeing_with_the_kept_answer():
    scripts = [
        Script("The answer is 2.", 1.0),
        Script("The answer is 2.0", 9.0),
        Script("no answer here", 4.0),
        Script("The answer is 3.", 2.0),
    ]
    _, final = run("best-of-n", make_ctx(scripts, samples=4))
    assert final.answer == "2" and final.confidence == pytest.approx(3 / 6)


def test_greedy_runs_one_candidate():
    _, final = run("greedy", make_ctx([Script("The answer is 9.")], samples=5))
    assert len(final.candidates) == 1 and final.answer == "9"
    assert final.confidence is None  # no calibration: one sample has no vote to count


def test_greedy_states_the_calibrated_confidence_of_its_answer():
    ctx = make_ctx([Script("The answer is 9.")], samples=1)
    ctx.greedy_confidence = (10.0, 2.0)
    _, final = run("greedy", ctx)
    assert final.confidence == pytest.approx(platt(10.0, 2.0, final.candidates[0].mean_logprob))
    ctx = make_ctx([Script("no answer at all")], samples=1)
    ctx.greedy_confidence = (10.0, 2.0)
    assert run("greedy", ctx)[1].confidence == 0.0


def test_a_stop_request_ends_the_run_with_the_best_answer_so_far():
    scripts = [Script("The answer is 4."), Script("The answer is 4."), Script("x" * 500)]
    ctx = make_ctx(scripts, samples=3)
    events = []
    for event in STRATEGIES["self-consistency"].run(ctx):
        events.append(event)
        if (
            isinstance(event, CandidateFinished)
            and sum(isinstance(e, CandidateFinished) for e in events) == 2
        ):
            ctx.stop.set()  # what the CLI's SIGINT handler does
    final = events[-1]
    assert isinstance(final, Final)
    assert final.stopped_because == "interrupted" and final.answer == "4"
    partial = [c for c in final.candidates if c.finish_reason == "interrupted"]
    assert len(partial) == 1 and 0 < partial[0].tokens < 500


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_a_stop_before_any_sample_starts_still_ends_with_a_final(strategy):
    """Ctrl-C while the prompt is being evaluated: no sample has started, and the run must still end
    cleanly (the CLI prints the result and exits 130) rather than fail on an empty pool."""
    ctx = make_ctx([Script("The answer is 4.")] * 4, samples=4)
    ctx.stop.set()
    _, final = run(strategy, ctx)
    assert final.stopped_because == "interrupted"
    assert ctx.budget.spent == 0
    assert all(c.tokens == 0 for c in final.candidates)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=1, max_size=6),
    samples=st.integers(1, 9),
    limit=st.integers(1, 200),
)
def test_budget_is_charged_exactly_and_never_exceeded(strategy, lengths, samples, limit):
    scripts = [Script("a" * n) for n in lengths]
    ctx = make_ctx(scripts, samples=samples, budget=limit)
    events, final = run(strategy, ctx)
    spent_seen = [e.spent for e in events if isinstance(e, TokensGenerated)]
    assert spent_seen == sorted(spent_seen) and all(s <= limit for s in spent_seen)
    if STRATEGIES[strategy].is_search:  # steps and judgements: every spent token is in the tree or the judge
        usage = dict(final.usage)
        assert ctx.budget.spent <= limit
        assert ctx.engine.stats.generated_tokens == ctx.budget.spent
        in_tree = usage["tree_tokens"] + usage["rollout_tokens"]
        assert ctx.budget.spent == in_tree + usage.get("judge_tokens", 0)
        assert final.stopped_because in {"budget", "completed"}
        return
    n = samples if STRATEGIES[strategy].takes_samples else 1
    wanted = sum(lengths[i % len(lengths)] + 1 for i in range(n))  # each text plus its end token
    assert ctx.budget.spent == min(limit, wanted) <= limit
    assert sum(c.tokens for c in final.candidates) == ctx.budget.spent
    assert final.stopped_because == ("budget" if wanted > limit else "completed")


def test_prompt_is_evaluated_once_and_forks_share_it():
    ctx = make_ctx([Script("ab")], samples=6)
    run("self-consistency", ctx)
    stats = ctx.engine.stats
    assert stats.prefill_calls == 1
    # prompt minus its last token once, then each fork evaluates that last token in its own sequence
    assert stats.prompt_eval_tokens == len(ctx.prompt_tokens) - 1 + 6
    assert stats.generated_tokens == 6 * 3


def test_passes_never_exceed_the_batch_size_and_give_the_same_result():
    scripts = [Script("The answer is 12."), Script("The answer is 13."), Script("The answer is 12.")]
    big = make_ctx(scripts, samples=3)
    small = make_ctx(scripts, samples=3, n_batch=4)
    _, a = run("self-consistency", big)
    _, b = run("self-consistency", small)
    assert max(len(e) for e in small.engine.evals) <= 4
    assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
    assert a.answer == b.answer == "12"


def test_released_slots_are_reused():
    ctx = make_ctx([Script("x")], samples=3, n_seq_max=4)
    for _ in range(50):  # far more sequences over time than the context has slots
        run("self-consistency", ctx)
        ctx.budget = TokenBudget(100)
    assert len(ctx.engine._free_slots) == 4


def test_with_no_finished_candidate_the_vote_uses_partial_answers_and_says_so():
    scripts = [Script("The answer is 3" + "." * 50), Script("The answer is 3" + "!" * 50)]
    _, final = run("self-consistency", make_ctx(scripts, samples=2, budget=40))
    assert final.stopped_because == "budget" and final.answer == "3"
    assert "no candidate finished" in final.selection
    _, complete_run = run("self-consistency", make_ctx(scripts, samples=2))
    assert "no candidate finished" not in complete_run.selection


def test_strategies_import_neither_rich_nor_llama_cpp():
    import subprocess
    import sys

    code = (
        "import sys, ttc_cli.strategies, ttc_cli.runner\n"
        "print(sorted(m for m in ('rich', 'llama_cpp') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=OUTSIDE
    )
    assert done.stdout.strip() == "[]"
