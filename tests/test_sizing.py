"""The KV cache is sized once, before decoding, from what each strategy says it needs: no valid options
may fill it mid-run.

The scripted engine keeps llama.cpp's account of a unified KV cache (a cell per evaluated token, shared by
forks, freed when no sequence holds it) and fails a decode past what `prepare` reserved, to the cell: the
real engine's page rounding is not there to hide an estimate that is short.
"""

from __future__ import annotations

import pytest
from fake_engine import FakeEngine, Script
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ttc_cli.errors import UsageError
from ttc_cli.options import PlanOptions
from ttc_cli.plan import build
from ttc_cli.runner import execute, prepare
from ttc_cli.strategies import STRATEGIES

PIECES = ["x", "yz ", "The answer is 3.", "\n\n", "<think>", "</think>", "Step 1.", " 42", "no error"]
texts = st.lists(st.lists(st.sampled_from(PIECES), max_size=12).map("".join), min_size=1, max_size=4)


@pytest.fixture
def think_task(user_path) -> str:
    prompts = user_path / "prompts"
    prompts.mkdir(parents=True, exist_ok=True)
    (prompts / "think.yaml").write_text("template: '{question}'\nprefill: \"<think>\\n\"\n")
    return "think"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    strategy=st.sampled_from(list(STRATEGIES)),
    scripts=texts,
    budget=st.integers(1, 600),
    samples=st.integers(1, 6),
    max_tokens=st.integers(1, 80),
    early_stop=st.booleans(),
    thinking=st.sampled_from([None, "budget", "minimum", "both"]),
    task=st.sampled_from(["math", "think", "hybrid"]),  # hybrid: a second (program) root
    verifier=st.sampled_from([None, "judge", "logprob"]),
    width=st.integers(1, 3),
    expansions=st.integers(1, 3),
    step_tokens=st.integers(1, 24),
    lookahead=st.integers(0, 2),
    rollouts=st.integers(0, 2),
    refine_rounds=st.integers(1, 3),
    probe_every=st.sampled_from([None, 1, 3, 8]),  # None: answer probes off
)
def test_no_valid_options_fill_the_kv_cache(
    think_task,
    strategy,
    scripts,
    budget,
    samples,
    max_tokens,
    early_stop,
    thinking,
    task,
    verifier,
    width,
    expansions,
    step_tokens,
    lookahead,
    rollouts,
    refine_rounds,
    probe_every,
):
    engine = FakeEngine([Script(t) for t in scripts])
    opts = PlanOptions(
        budget=str(budget),
        samples=samples,
        max_tokens=max_tokens,
        seed=0,
        task=think_task if task == "think" else task,
        early_stop=early_stop,
        think_budget=max(1, max_tokens // 3) if thinking in ("budget", "both") else None,
        min_think=max_tokens // 2 if thinking in ("minimum", "both") else None,
        verifier=verifier,
        width=None if STRATEGIES[strategy].is_search else width,  # a search's is --beams
        beams=width,
        expansions=expansions,
        step_tokens=step_tokens,
        lookahead=lookahead,
        rollouts=rollouts,
        refine_rounds=refine_rounds,
        probe=probe_every is not None,
        probe_every=probe_every,
    )
    try:
        ctx = prepare(p := build("What is 1 + 2?", strategy, opts), engine)
    except UsageError:
        assume(False)  # not valid together (or too big for the profile's context): nothing to run
    result = execute(p, ctx)  # a decode past the reserved cells raises EngineError
    assert engine.peak_cells <= engine.capacity
    assert result.budget.spent <= budget
