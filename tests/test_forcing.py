"""Budget forcing (--think-budget, --min-think): exact token-level behaviour on the scripted engine, and
the mechanism on the real model with a prompt that opens a thinking block."""

from __future__ import annotations

import pytest
from conftest import eos_token
from fake_engine import Script
from test_strategies import make_ctx, run

from ttc_cli.engine.forcing import Thinking
from ttc_cli.events import ThinkingForced


def thinking_ctx(script: str, **limits):
    ctx = make_ctx([Script(script)], samples=1)
    ctx.prompt_tokens = ctx.engine.tokenize("Question?\n<think>\n")  # the prompt opens the thinking
    ctx.thinking = Thinking(**limits)
    return ctx


def test_think_budget_closes_the_thinking_and_cues_the_answer_at_the_cap():
    ctx = thinking_ctx("a" * 20 + "</think>The answer is 5.", budget=8)
    events, final = run("greedy", ctx)
    c = final.candidates[0]
    assert c.forced == (("end", 8),)
    # 8 sampled a's, the forced close and cue, then the script goes on (the fake ignores context)
    assert c.text.startswith("a" * 8 + "</think>\n\nThe answer is" + "a")
    assert [e for e in events if isinstance(e, ThinkingForced)] == [ThinkingForced(0, "end", 8)]
    forced = len("</think>\n\nThe answer is")
    assert ctx.budget.spent == c.tokens == len("a" * 20 + "</think>The answer is 5.") + 1
    # forced text is evaluated like a prompt, never charged
    assert ctx.engine.stats.prompt_eval_tokens == len(ctx.prompt_tokens) - 1 + 1 + forced


def test_min_think_replaces_an_early_closing_tag_with_wait():
    ctx = thinking_ctx("abc</think>xyz", minimum=20)
    _, final = run("greedy", ctx)
    c = final.candidates[0]
    assert c.forced[0] == ("wait", 11)  # a, b, c and the 8 bytes of the tag
    assert c.text.startswith("abcWaitxyzWait") and "</think>" not in c.text
    assert all(action == "wait" for action, _ in c.forced)
    assert c.forced[-1][1] < 20 and c.finish_reason == "stop"
    assert ctx.budget.spent == c.tokens  # the cut tokens were sampled, so they stay charged
    assert ctx.engine.trims  # the tag's cells were dropped from the cache


def test_min_think_also_catches_an_end_of_generation_while_thinking():
    ctx = thinking_ctx("ab", minimum=5)
    _, final = run("greedy", ctx)
    c = final.candidates[0]
    # a, b, then the end token (3 thinking tokens) -> Wait; then end tokens until 5 are reached
    assert c.forced[0] == ("wait", 3)
    assert c.text.startswith("abWait") and c.finish_reason == "stop"
    assert [t for _, t in c.forced] == [3, 4]


def test_nothing_is_forced_outside_a_thinking_block():
    ctx = make_ctx([Script("plain answer: 4")], samples=1)
    ctx.thinking = Thinking(budget=2, minimum=0)
    _, final = run("greedy", ctx)
    assert final.candidates[0].forced == () and final.candidates[0].text == "plain answer: 4"


def test_thinking_opened_by_the_model_is_followed():
    ctx = make_ctx([Script("ok <think>" + "z" * 30)], samples=1)
    ctx.thinking = Thinking(budget=5)
    _, final = run("greedy", ctx)
    c = final.candidates[0]
    assert c.forced == (("end", 5),) and c.text.startswith("ok <think>zzzzz</think>")


@pytest.mark.parametrize(
    ("opts", "needle"),
    [
        ({"think_budget": 0}, "--think-budget must be positive"),
        ({"min_think": -1}, "--min-think must be 0 or more"),
        ({"think_budget": 10, "min_think": 20}, "--min-think 20 is more than --think-budget 10"),
    ],
)
def test_bad_forcing_options(opts, needle):
    from ttc_cli.errors import UsageError
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build

    with pytest.raises(UsageError, match=needle):
        build("What is 2 + 2?", "greedy", PlanOptions(**opts))


# ---- the real model ---------------------------------------------------------------------------------
@pytest.fixture
def think_prompt(user_path):
    prompts = user_path / "prompts"
    prompts.mkdir(parents=True, exist_ok=True)
    (prompts / "think.yaml").write_text(
        "system: Think step by step inside <think> tags, then answer.\n"
        "template: '{question}'\n"
        'prefill: "<think>\\n"\n'
    )
    return "think"


def ask_real(engine, sampling: dict | None = None, **opts):
    from dataclasses import replace

    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build
    from ttc_cli.runner import execute, prepare

    p = build("What is 17 + 25?", "greedy", PlanOptions(max_tokens=80, **opts))
    ctx = prepare(p, engine)
    ctx.sampling = replace(ctx.sampling, **(sampling or {}))
    events: list = []
    data = execute(p, ctx, events.append).to_json()
    return data, events


def test_think_budget_on_the_real_model(engine, think_prompt):
    # Only letters and no end token: the model cannot close its thinking by itself, so the cap must.
    never_closes = {"grammar": "root ::= [a-z ] root", "logit_bias": ((eos_token(engine), float("-inf")),)}
    data, events = ask_real(engine, never_closes, task=think_prompt, think_budget=12)
    c = data["candidates"][0]
    assert c["forced"] == [{"action": "end", "thinking_tokens": 12}]
    assert "</think>\n\nThe answer is" in c["text"]
    assert data["budget"]["spent"] == c["tokens"] == 80
    assert any(isinstance(e, ThinkingForced) and e.action == "end" for e in events)


def test_min_think_on_the_real_model(engine, think_prompt):
    # The end token is made the most likely one everywhere, so the model tries to stop after every token:
    # each try is cut from the sequence and its KV cache and answered with "Wait", until 12 thinking tokens.
    always_ends = {"logit_bias": ((eos_token(engine), 100.0),)}
    data, _ = ask_real(engine, always_ends, task=think_prompt, min_think=12)
    c = data["candidates"][0]
    assert c["forced"] == [{"action": "wait", "thinking_tokens": t} for t in range(1, 12)]
    assert c["text"] == "Wait" * 11 and c["finish_reason"] == "stop"
    assert data["budget"]["spent"] == c["tokens"] == 12  # the cut end tokens were sampled: charged
