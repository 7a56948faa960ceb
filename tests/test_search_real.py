"""Tree searches on the real model: budgets kept, the tree reported, KV reused rather than re-prefilled."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import eos_token

from ttc_cli.budget import TokenBudget
from ttc_cli.events import Final, NodeCreated
from ttc_cli.options import PlanOptions
from ttc_cli.plan import build
from ttc_cli.runner import execute, prepare
from ttc_cli.verifiers.base import VerifierContext
from ttc_cli.verifiers.judge import JudgeVerifier

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"
SMALL = {"beams": 2, "expansions": 2, "step_tokens": 24, "lookahead": 1, "rollouts": 1, "refine_rounds": 1}


def ask(
    engine,
    strategy: str,
    budget: int,
    verifier_engine=None,
    search: dict = SMALL,
    sampling: dict | None = None,
    **opts,
):
    p = build(QUESTION, strategy, PlanOptions(budget=str(budget), seed=3, **search, **opts))
    ctx = prepare(p, engine, verifier_engine)
    ctx.sampling = replace(ctx.sampling, **(sampling or {}))
    events: list = []
    result = execute(p, ctx, events.append)
    return result.to_json(), events


@pytest.mark.parametrize("strategy", ["beam", "lookahead", "mcts", "refine"])
def test_a_search_keeps_its_budget_and_reports_its_tree(engine, strategy):
    data, events = ask(engine, strategy, 160, max_tokens=80)
    spent = data["budget"]["spent"]
    assert 0 < spent <= 160
    assert data["usage"]["generated_tokens"] == spent
    u = data["usage"]
    assert u["tree_tokens"] + u["rollout_tokens"] + u.get("judge_tokens", 0) == spent
    tree = data["tree"]
    ids = [n["id"] for n in tree]
    assert len(set(ids)) == len(ids) and tree[0]["parent"] is None
    assert all(n["parent"] in ids for n in tree[1:])
    assert all(set(n) >= {"id", "parent", "step", "score", "status", "tokens"} for n in tree)
    assert {e.id for e in events if isinstance(e, NodeCreated)} == set(ids)
    assert data["stopped_because"] in {"budget", "completed"}
    assert isinstance(events[-1], Final)
    if strategy != "refine":
        scores = [n["score"] for n in tree if n["score"] is not None]
        assert scores and all(0.0 <= s <= 1.0 for s in scores)


def test_children_fork_their_parents_cache_instead_of_reevaluating_the_path(engine):
    """prompt_eval_tokens stays within 5% of prompt + unique tree tokens + judge prompts; a search that
    re-evaluated each node's path (for its steps or its judgement) would cost several times more."""
    # Steps of lower-case letters with no end token can only end at the 32-token cap, never with an
    # answer, so the search runs several rounds on any host.
    no_answers = {"grammar": "root ::= [a-z ] root", "logit_bias": ((eos_token(engine), float("-inf")),)}
    search = {"beams": 2, "expansions": 2, "step_tokens": 32}
    data, _ = ask(engine, "beam", 300, max_tokens=120, search=search, sampling=no_answers)
    u = data["usage"]
    evaluated = u["prompt_eval_tokens"]
    assert evaluated <= 1.05 * (u["prompt_tokens"] + u["tree_tokens"] + u["judge_prompt_tokens"])
    # What re-evaluating every node's path from scratch would cost, for its step and for its judgement.
    by_id = {n["id"]: n for n in data["tree"]}

    def path_tokens(node) -> int:
        total = 0
        while node["parent"] is not None:
            total += node["tokens"]
            node = by_id[node["parent"]]
        return total

    judged = [n for n in data["tree"] if n["score"] is not None]
    assert len(judged) >= 4 and max(n["id"] for n in judged) > 4  # at least two rounds
    naive = sum(2 * u["prompt_tokens"] + path_tokens(by_id[n["parent"]]) for n in judged)
    assert evaluated < naive / 2
    # The judge evaluated its prompt once, then per judged node only that node's step and the prompt's tail.
    judge = JudgeVerifier(VerifierContext(QUESTION, engine, True, TokenBudget(1)))
    frame = judge.frame(False)
    head, tail = frame.head, len(frame.left) + len(frame.right)
    judge.close()
    assert u["judge_prompt_tokens"] <= head + sum(n["tokens"] + tail for n in judged)


def test_a_separate_verifier_model_is_charged_to_the_same_budget(engine):
    from ttc_cli.engine.llama import LlamaEngine
    from ttc_cli.models.files import default_model_path

    judge = LlamaEngine(default_model_path(), n_ctx=512, n_seq_max=2)
    try:
        data, _ = ask(engine, "beam", 120, verifier_engine=judge, max_tokens=60)
    finally:
        judge.close()
    u = data["usage"]
    assert data["budget"]["spent"] == u["tree_tokens"] + u["judge_tokens"] <= 120
    assert u["judge_tokens"] > 0
    # Every charged token is in usage, the second model's included.
    assert u["generated_tokens"] == data["budget"]["spent"]
    assert u["prompt_eval_tokens"] >= u["prompt_tokens"] + u["judge_prompt_tokens"] - 1


def test_best_of_n_with_the_judge_scores_whole_solutions(engine):
    p = build(
        QUESTION,
        "best-of-n",
        PlanOptions(budget="200", samples=3, max_tokens=40, seed=2, verifier="judge"),
    )
    result = execute(p, prepare(p, engine))
    data = result.to_json()
    assert data["budget"]["spent"] <= 200
    assert "judge" in data["selection"]
    assert all(c["score"] is None or 0.0 <= c["score"] <= 1.0 for c in data["candidates"])
    assert data["usage"]["judge_tokens"] == 3


def test_mcts_rollouts_that_reach_an_answer_are_candidates(engine):
    """Whatever the model writes on this host, a candidate is a finished path or a rollout that reached an
    answer, and the selection says which. (The exact behaviour is `test_search.py`'s scripted
    `test_an_mcts_rollout_that_reaches_an_answer_is_a_candidate`.)"""
    search = {"expansions": 2, "step_tokens": 24, "rollouts": 1}
    data, _ = ask(engine, "mcts", 300, max_tokens=120, search=search)
    finished_paths = sum(n["status"] == "finished" for n in data["tree"])
    rollouts = data["candidates"][finished_paths:] if finished_paths else data["candidates"]
    if "finished rollouts" in data["selection"]:
        assert rollouts and all(c["answer"] is not None and c["finish_reason"] == "stop" for c in rollouts)
    u = data["usage"]
    assert data["budget"]["spent"] == u["tree_tokens"] + u["rollout_tokens"] + u["judge_tokens"] <= 300
    assert u["rollout_tokens"] > 0


def test_refine_sizes_the_cache_from_the_users_own_long_prompts(user_path):
    """A user's refine prompts are part of the conversation the cache must hold: sized from their real
    tokens, a long critique request fits instead of filling the cache mid-run."""
    from ttc_cli.engine.llama import LlamaEngine
    from ttc_cli.models.files import default_model_path

    prompts = user_path / "prompts"
    prompts.mkdir(parents=True, exist_ok=True)
    long_request = "Check every step of your solution very carefully, one at a time. " * 60
    (prompts / "refine.yaml").write_text(f"critique: '{long_request} List any errors.'\n")
    engine = LlamaEngine(default_model_path(), n_ctx=256, n_seq_max=2)  # sized by this run alone
    try:
        search = {"refine_rounds": 1, "step_tokens": 24}
        data, _ = ask(engine, "refine", 200, max_tokens=60, search=search)
    finally:
        engine.close()
    assert data["budget"]["spent"] <= 200
    assert data["usage"]["prompt_eval_tokens"] > 600  # the long request was evaluated
