"""Tree searches under scripted engines and verifiers: which branches survive, what is released, budgets."""

from __future__ import annotations

import re

import pytest
from step_engine import StepEngine, WordVerifier

import ttc_cli.verifiers as verifiers
from ttc_cli.budget import TokenBudget
from ttc_cli.engine.sequence import SamplingParams
from ttc_cli.events import Final, NodeCreated, NodePruned, NodeScored, NodeStep
from ttc_cli.strategies import STRATEGIES
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.search_params import SearchParams
from ttc_cli.verifiers.base import Path, PathStep, aggregate
from ttc_cli.verifiers.logprob import LogprobVerifier

PROMPT = "Q?"


def make_ctx(steps, budget=10_000, n_seq_max=64, max_tokens=400, **search) -> RunContext:
    engine = StepEngine(steps, PROMPT, n_seq_max=n_seq_max)
    return RunContext(
        question=PROMPT,
        engine=engine,
        budget=TokenBudget(budget),
        prompt_tokens=engine.tokenize(PROMPT),
        samples=1,
        sampling=SamplingParams(seed=0, max_tokens=max_tokens),
        search=SearchParams(**{"verifier": "words", **search}),
    )


@pytest.fixture
def words(monkeypatch):
    """Install a WordVerifier as `--verifier words`, the way a user adds one."""

    def install(scores: dict[str, float], default: float = 0.5) -> WordVerifier:
        verifier = WordVerifier(scores, default)
        monkeypatch.setitem(verifiers.VERIFIERS, "words", lambda vctx: verifier)
        return verifier

    return install


def run(strategy: str, ctx: RunContext) -> tuple[list, Final]:
    events = list(STRATEGIES[strategy].run(ctx))
    assert isinstance(events[-1], Final) and sum(isinstance(e, Final) for e in events) == 1
    return events, events[-1]


def by_text(final: Final) -> dict[str, object]:
    """Nodes by step text; of nodes with the same text, the one that got furthest (finished, expanded)."""
    order = {"pruned": 0, "open": 1, "expanded": 2, "finished": 3}
    out: dict[str, object] = {}
    for n in sorted(final.tree, key=lambda n: order.get(n.status, 0)):
        out[n.step] = n
    return out


TWO_WAYS = {
    "": ["One bad step.\n\n", "Two good step.\n\n"],
    "One bad step.\n\n": ["The answer is 1."],
    "Two good step.\n\n": ["The answer is 2."],
}


def test_beam_keeps_the_branch_the_verifier_prefers(words):
    verifier = words({"good": 0.9, "bad": 0.1, "answer": 0.8})
    events, final = run("beam", make_ctx(TWO_WAYS, beams=1, expansions=2))
    assert final.answer == "2" and final.stopped_because == "completed"
    nodes = by_text(final)
    assert nodes["One bad step."].status == "pruned"
    assert nodes["Two good step."].status == "expanded"
    assert nodes["The answer is 2."].status == "finished"
    assert "The answer is 1." not in nodes  # the pruned branch was never extended
    assert nodes["The answer is 2."].value == pytest.approx(0.8)  # min over 0.9, 0.8
    assert verifier.calls[0] == ["One bad step.\n\n", "Two good step.\n\n"]
    pruned = next(n.id for n in final.tree if n.step == "One bad step.")
    assert pruned in verifier.forgotten
    assert any(isinstance(e, NodePruned) and e.id == pruned for e in events)


def test_every_node_event_names_its_parent_and_the_json_tree_matches(words):
    words({"good": 0.9, "bad": 0.1})
    events, final = run("beam", make_ctx(TWO_WAYS, beams=2, expansions=2))
    created = {e.id: e.parent for e in events if isinstance(e, NodeCreated)}
    assert created == {n.id: n.parent for n in final.tree}
    assert created[0] is None and all(p in created for p in created.values() if p is not None)
    stepped = {e.id: e.tokens for e in events if isinstance(e, NodeStep)}
    assert all(n.tokens == stepped.get(n.id, 0) for n in final.tree)
    scored = {e.id for e in events if isinstance(e, NodeScored)}
    assert scored == {n.id for n in final.tree if n.score is not None}
    usage = dict(final.usage)
    assert usage["tree_tokens"] == sum(n.tokens for n in final.tree)


def test_width_two_keeps_both_and_picks_the_better_finished_beam(words):
    words({"good": 0.9, "bad": 0.6, "answer is 1": 0.95, "answer is 2": 0.7})
    _, final = run("beam", make_ctx(TWO_WAYS, beams=2, expansions=2))
    # min aggregation: the "1" path is min(0.6, 0.95) = 0.6, the "2" path min(0.9, 0.7) = 0.7
    assert final.answer == "2"
    assert [c.answer for c in final.candidates] == ["2", "2"]  # both "1" paths were pruned
    _, last = run("beam", make_ctx(TWO_WAYS, beams=2, expansions=2, aggregate="last"))
    assert last.answer == "1"


def test_pick_vote_returns_the_answer_most_finished_beams_reach(words):
    steps = {
        "": ["A.\n\n", "B.\n\n", "C.\n\n"],
        "A.\n\n": ["The answer is 5 x.", "The answer is 7 q.", "The answer is 7 q."],
        "B.\n\n": ["The answer is 5 y.", "The answer is 8 q.", "The answer is 8 q."],
        "C.\n\n": ["The answer is 0 top.", "The answer is 9 q.", "The answer is 9 q."],
    }
    words({"top": 0.99, "5 x": 0.8, "5 y": 0.7, " q.": 0.1})  # kept: 0 (0.99), 5 (0.8), 5 (0.7)
    _, by_score = run("beam", make_ctx(steps, beams=3, expansions=3, aggregate="last"))
    _, by_vote = run("beam", make_ctx(steps, beams=3, expansions=3, aggregate="last", pick="vote"))
    assert by_score.answer == "0"
    assert by_vote.answer == "5" and by_vote.selection.startswith("vote among 3 finished beams: 2 of 3")


def test_lookahead_scores_a_step_by_where_it_leads(words):
    steps = {
        "": ["Plain X.\n\n", "Plain Y.\n\n"],
        "Plain X.\n\n": ["good continuation.\n\n"],
        "Plain Y.\n\n": ["bad continuation.\n\n"],
    }
    verifier = words({"good": 0.9, "bad": 0.1})
    _, final = run("lookahead", make_ctx(steps, beams=1, expansions=2, lookahead=1))
    nodes = by_text(final)
    assert nodes["Plain X."].score == pytest.approx(0.9) and nodes["Plain Y."].score == pytest.approx(0.1)
    assert nodes["Plain Y."].status == "pruned"
    assert verifier.calls[0] == ["Plain X.\n\ngood continuation.\n\n", "Plain Y.\n\nbad continuation.\n\n"]
    assert dict(final.usage)["rollout_tokens"] > 0


def test_a_long_search_recycles_sequences_within_what_prepare_reserves(words):
    """Thirty rounds of width 3 × 3 expansions: far more nodes than sequences, never more live at once."""
    steps: dict[str, list[str]] = {}
    path = ""
    for i in range(30):
        options = [f"s{i}a.\n\n", f"s{i}b.\n\n", f"s{i}c.\n\n"]
        for o in options:
            steps[path + o] = []
        steps[path] = options
        path += options[0]
    for k in list(steps):
        if not steps[k]:
            steps[k] = [f"s{k.count(chr(10)) // 2}a.\n\n", f"s{k.count(chr(10)) // 2}b.\n\n"]
    words({"a.": 0.9, "b.": 0.5})
    ctx = make_ctx(steps, n_seq_max=1, max_tokens=10_000, budget=10_000, beams=3, expansions=3)
    need = STRATEGIES["beam"].needs(ctx)
    ctx.engine.reserve(need.cells, need.sequences)  # exactly what `prepare` asks for: cells and sequences
    seqs = need.sequences
    _, final = run("beam", ctx)
    assert len(final.tree) > 3 * seqs
    assert len(ctx.engine._free_slots) == seqs  # everything released at the end


def test_budget_ends_the_search_with_the_best_partial_beam(words):
    words({"good": 0.9, "bad": 0.1})
    steps = {"": ["bad start.\n\n", "good start.\n\n"]}
    steps["good start.\n\n"] = ["x" * 200 + "\n\n"]
    ctx = make_ctx(steps, budget=60, beams=1, expansions=2)
    _, final = run("beam", ctx)
    assert final.stopped_because == "budget" and ctx.budget.spent <= 60
    assert final.response == "good start."
    assert "no beams finished" in final.selection


@pytest.mark.parametrize(
    "how, expected", [("last", 0.9), ("min", 0.2), ("prod", 0.2 * 0.5 * 0.9), ("mean", 1.6 / 3)]
)
def test_aggregates(how, expected):
    assert aggregate([0.2, 0.5, 0.9], how) == pytest.approx(expected)
    assert aggregate([0.2, None], how if how != "last" else "last") is not None
    assert aggregate([None, None], how) is None


def test_logprob_verifier_scores_the_latest_steps_confidence():
    v = LogprobVerifier()
    paths = [Path((PathStep("a", (1,), 1, -0.1), PathStep("b", (2,), 2, -2.0)))]
    assert v.score(paths) == [pytest.approx(0.1353, abs=1e-4)]


def test_command_verifier_scores_whole_solutions_by_exit_status():
    v = verifiers.make_verifier("cmd:grep -q 42", None)  # type: ignore[arg-type]
    whole = [
        Path((PathStep("the answer is 42", ()),), whole=True),
        Path((PathStep("it is 7", ()),), whole=True),
    ]
    assert v.score(whole) == [1.0, 0.0]
    assert v.score([Path((PathStep("partial", ()),))]) == [0.5]


# ---- MCTS -----------------------------------------------------------------------------------------
def test_uct_picks_an_unvisited_child_first_then_balances_value_and_visits():
    from ttc_cli.strategies.mcts import uct_pick
    from ttc_cli.strategies.nodes import Node

    root = Node(0, None, visits=10)
    a = Node(1, root, visits=6, total=4.8)  # mean 0.8, well explored
    b = Node(2, root, visits=4, total=2.0)  # mean 0.5
    c = Node(3, root)  # never visited
    assert uct_pick([a, b, c], 10, 1.0) is c
    assert uct_pick([a, b], 10, 0.0) is a  # no exploration: the best mean
    assert uct_pick([a, b], 10, 5.0) is b  # much exploration: the less visited


class _CountingChildren(list):
    """A children list that counts how many children are looked at."""

    seen = 0

    def __iter__(self):
        _CountingChildren.seen += len(self)
        return super().__iter__()


def test_mcts_selection_looks_only_at_the_children_along_its_path():
    """Selecting a leaf in a tree of 2**9 - 1 nodes looks at the children of the 8 nodes on the path, not
    at every node below them (which made each round quadratic in the tree's size)."""
    from ttc_cli.strategies.mcts import select
    from ttc_cli.strategies.nodes import Node

    nodes = [Node(0, None, visits=1)]
    frontier = nodes[:]
    for _ in range(8):
        nxt = []
        for parent in frontier:
            parent.children = _CountingChildren()
            for _ in range(2):
                child = Node(len(nodes), parent, parent.depth + 1, visits=1, total=0.5, seq=object())
                parent.children.append(child)
                nodes.append(child)
                nxt.append(child)
        frontier = nxt
    _CountingChildren.seen = 0
    leaf = select(nodes[0], 1.0)
    assert leaf is not None and leaf.depth == 8
    assert _CountingChildren.seen <= 4 * 8 * 2


def test_mcts_keeps_which_subtrees_are_exhausted_up_to_date(words):
    """The incremental flag agrees with its definition (a leaf that cannot grow; a node whose children all
    are) at the end of a run that finished, closed and pruned nodes."""
    from ttc_cli.strategies.nodes import Node

    def exhausted(node: Node) -> bool:
        if node.children:
            return all(exhausted(ch) for ch in node.children)
        return node.final or node.dead or node.seq is None

    steps = {
        "": ["a.\n\n", "b.\n\n", "c.\n\n"],
        "a.\n\n": ["The answer is 1.", "aa.\n\n"],
        "b.\n\n": ["The answer is 2."],
    }
    words({"a": 0.9, "b": 0.6}, default=0.5)
    ctx = make_ctx(steps, expansions=2, rollouts=0, exploration=0.5, budget=400)
    seen: list = []
    import ttc_cli.strategies.mcts as mcts

    real_select = mcts.select

    def checked_select(root, c):
        stack = [root]
        while stack:
            node = stack.pop()
            assert node.exhausted == exhausted(node), node.id
            stack += node.children
        seen.append(root)
        return real_select(root, c)

    mcts.select = checked_select
    try:
        run("mcts", ctx)
    finally:
        mcts.select = real_select
    assert len(seen) > 3


def test_mcts_expands_the_more_valuable_branch_and_finishes(words):
    steps = {
        "": ["good start.\n\n", "bad start.\n\n"],
        "good start.\n\n": ["The answer is 3."],
        "bad start.\n\n": ["The answer is 4."],
    }
    words({"good": 0.9, "bad": 0.1, "answer": 0.8})
    _, final = run("mcts", make_ctx(steps, expansions=2, rollouts=0, exploration=0.0))
    nodes = by_text(final)
    assert nodes["good start."].status == "expanded"
    assert final.answer == "3" and final.stopped_because == "completed"
    assert "The answer is 3." in nodes and nodes["The answer is 3."].status == "finished"
    root = next(n for n in final.tree if n.parent is None)
    assert root.status == "expanded"


def test_mcts_rollout_agreement_raises_the_value_of_steps_whose_rollouts_agree(words):
    steps = {
        "": ["Plan A.\n\n", "Plan B.\n\n", "Plan C.\n\n"],
        "Plan A.\n\n": ["The answer is 6."],
        "Plan B.\n\n": ["The answer is 6."],
        "Plan C.\n\n": ["The answer is 1."],
    }
    words({}, default=0.5)  # the verifier cannot tell them apart; only agreement can
    ctx = make_ctx(steps, expansions=3, rollouts=1, exploration=0.0, budget=10_000)
    _, final = run("mcts", ctx)
    values = {n.step: n.value for n in final.tree if n.step.startswith("Plan")}
    assert values["Plan A."] > values["Plan C."] and values["Plan B."] > values["Plan C."]
    assert final.answer == "6"
    assert dict(final.usage)["rollout_tokens"] > 0


def test_mcts_closes_extra_leaves_so_sequences_stay_bounded(words, monkeypatch):
    import ttc_cli.strategies.search_params as sp

    monkeypatch.setattr(sp, "MCTS_MAX_OPEN", 4)
    steps = {}
    frontier = [""]
    for depth in range(6):  # a bushy tree: every path has three next steps
        nxt = []
        for path in frontier:
            steps[path] = [f"d{depth}{k}.\n\n" for k in "abc"]
            nxt += [path + o for o in steps[path]]
        frontier = nxt[:30]
    words({}, default=0.5)
    ctx = make_ctx(steps, n_seq_max=1, budget=3000, max_tokens=10_000, expansions=3, rollouts=0)
    need = STRATEGIES["mcts"].needs(ctx)
    ctx.engine.reserve(need.cells, need.sequences)
    seqs = need.sequences
    _, final = run("mcts", ctx)
    assert len(final.tree) > seqs
    assert len(ctx.engine._free_slots) == seqs


# ---- options and profiles ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, needle",
    [
        (("--beams", "0"), "--beams must be at least 1"),
        (("--width", "2"), "use --beams 2"),
        (("--aggregate", "median"), "unknown aggregate 'median'"),
        (("--verifier", "oracle"), "unknown verifier 'oracle'"),
        (("--pick", "random"), "unknown pick 'random'"),
        (("--exploration", "-1"), "--exploration must be 0 or more"),
    ],
)
def test_bad_search_options_are_one_line_errors_before_any_model_loads(args, needle):
    from conftest import run_ttc

    done = run_ttc("ask", "What is 2+3?", "-s", "beam", *args)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr


def test_search_defaults_come_from_the_preset_and_options_override_them(user_path):
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build

    low = build("What is 2+3?", "beam", PlanOptions(budget="low")).search
    high = build("What is 2+3?", "beam", PlanOptions(budget="high")).search
    assert (low.beams, low.expansions) == (2, 2) and (high.beams, high.expansions) == (4, 4)
    mine = build("What is 2+3?", "beam", PlanOptions(budget="low", beams=5)).search
    assert mine.beams == 5 and mine.expansions == 2
    (user_path / "profiles").mkdir()
    (user_path / "profiles" / "default.yaml").write_text("search: {low: {expansions: 3}, aggregate: prod}\n")
    merged = build("What is 2+3?", "beam", PlanOptions(budget="low")).search
    assert (merged.beams, merged.expansions, merged.aggregate) == (2, 3, "prod")


@pytest.mark.parametrize(
    "yaml_text, needle",
    [
        ("search: {low: {beams: -1}}\n", "search.low.beams must be an integer"),
        ("search: {low: {width: 2}}\n", "search.low.width: beams kept per step is `beams` now"),
        ("search: {low: {depth: 3}}\n", "search.low has unknown key(s) depth"),
        ("search: {exploration: high}\n", "search.exploration must be a number"),
        ("search: [1]\n", "'search' must be a mapping"),
    ],
)
def test_a_bad_search_profile_is_a_usage_error(user_path, yaml_text, needle):
    from ttc_cli.errors import UsageError
    from ttc_cli.profile import load_profile

    (user_path / "profiles").mkdir()
    (user_path / "profiles" / "default.yaml").write_text(yaml_text)
    with pytest.raises(UsageError, match=re.escape(needle)):
        load_profile()


def test_the_judge_reads_p_yes_among_yes_and_no_variants():
    import numpy as np

    from ttc_cli.engine.sequence import Sequence
    from ttc_cli.verifiers.judge import JudgeVerifier

    judge = JudgeVerifier.__new__(JudgeVerifier)
    judge.yes, judge.no = {10, 11}, {20}
    seq = Sequence(slot=0, tokens=[1], n_cached=0)
    seq.top_ids = [np.array([10, 20, 11, 5])]
    seq.top_logprobs = [np.log(np.array([0.3, 0.2, 0.1, 0.4], dtype=np.float32))]
    assert judge._p_yes(seq) == pytest.approx(0.4 / 0.6)
    seq.top_ids = [np.array([5, 6])]
    seq.top_logprobs = [np.log(np.array([0.5, 0.5], dtype=np.float32))]
    assert judge._p_yes(seq) == 0.5  # neither said: no information
    seq.top_ids = []
    assert judge._p_yes(seq) is None  # never decoded (budget, Ctrl-C)


def test_the_tree_widget_stays_bounded_and_shows_the_best_nodes_first():
    import io

    from rich.console import Console

    from ttc_cli.events import NodeCreated, NodeExpanded, NodeFinished, NodeScored, NodeStep, RunStarted
    from ttc_cli.ui.state import RunState
    from ttc_cli.ui.widgets import run_view

    state = RunState("beam", "m", "CPU", 1000, "low")
    state.update(RunStarted("beam", 1, 256, 1000, 40))
    state.update(NodeCreated(0, None, 0))
    state.update(NodeExpanded(0))
    for i in range(1, 40):
        state.update(NodeCreated(i, 0, 1))
        state.update(NodeStep(i, f"step number {i}\n\n", 5, False))
        state.update(NodeScored(i, i / 40, i / 40))
    state.update(NodeFinished(7, "7"))
    console = Console(file=io.StringIO(), width=60, color_system=None)
    console.print(run_view(state))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) <= 14 and all(len(line) <= 60 for line in lines)
    assert "tree · 40 nodes · 38 open · 1 finished" in lines[3]
    assert "done" not in lines[2]  # one solution slot: "0/1 done" would say nothing
    assert "#7" in lines[4] and "finished" in lines[4]  # finished first, then the best open
    assert "#39" in lines[5] and "0.97" in lines[5]
    assert "… 31 more" in lines[-1]


def test_an_mcts_rollout_that_reaches_an_answer_is_a_candidate(words):
    """The budget ends the tree two steps short of an answer, but a rollout got there: it answers."""
    steps = {
        "": ["Start.\n\n"],
        "Start.\n\n": ["Middle.\n\n"],
        "Start.\n\nMiddle.\n\n": ["The answer is 9."],
    }
    words({}, default=0.5)
    ctx = make_ctx(steps, budget=40, expansions=1, rollouts=1)
    _, final = run("mcts", ctx)
    assert not any(n.status == "finished" for n in final.tree)
    assert final.answer == "9" and "finished rollouts" in final.selection
    assert "partial" not in final.selection
    chosen = final.candidates[final.chosen]
    assert chosen.text == "Start.\n\nMiddle.\n\nThe answer is 9." and chosen.finish_reason == "stop"


def test_a_rollout_stops_at_the_step_that_states_the_answer(words):
    steps = {
        "": ["Plan.\n\n"],
        "Plan.\n\n": ["The answer is 5.\n\n"],
        "Plan.\n\nThe answer is 5.\n\n": ["Chatter after the answer.\n\n"],
    }
    verifier = words({}, default=0.5)
    _, final = run("lookahead", make_ctx(steps, beams=1, expansions=1, lookahead=3))
    assert final.answer == "5"
    assert not any("Chatter" in text for call in verifier.calls for text in call)


def test_search_params_defaults_are_the_built_in_profiles_medium_preset():
    """Code that builds `SearchParams()` directly gets what a run would: the profile stays the one source."""
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import search_params
    from ttc_cli.profile import load_profile

    assert search_params(load_profile(), "medium", PlanOptions(), "\n\n") == SearchParams()


def test_every_search_knob_is_an_option_and_a_profile_key_of_the_same_name():
    """SearchParams declares the knobs; the options and the profile's `search:` section follow it (a key
    it does not declare is refused: test_a_bad_search_profile_is_a_usage_error)."""
    from dataclasses import fields

    from ttc_cli.options import PlanOptions
    from ttc_cli.profile import load_profile
    from ttc_cli.strategies.search_params import PER_PRESET, WORDS

    options = {f.name for f in fields(PlanOptions)}
    assert set(PER_PRESET) | set(WORDS) <= options
    profile = load_profile().search
    assert set(WORDS) <= set(profile)
    assert all(set(profile[preset]) == set(PER_PRESET) for preset in ("low", "medium", "high", "max"))


def test_width_of_a_sampling_run_is_the_samples_in_flight_and_a_search_keeps_beams(user_path):
    """--width 30 for self-consistency is 30 samples at once; a search's width is --beams, its own flag,
    and --width given to a search says so instead of meaning something else there."""
    from ttc_cli.errors import UsageError
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build

    plan = build("What is 2+3?", "self-consistency", PlanOptions(samples=63, width=30))
    assert plan.early is not None and plan.early.width == 30 and plan.samples == 63
    assert build("What is 2+3?", "beam", PlanOptions(beams=5)).search.beams == 5
    with pytest.raises(UsageError, match="more than 64 branches"):
        build("What is 2+3?", "beam", PlanOptions(beams=30))
    with pytest.raises(UsageError, match="keeps beams"):
        build("What is 2+3?", "beam", PlanOptions(width=3))


def test_a_profile_that_still_says_width_for_beams_is_told_the_new_name(user_path):
    from ttc_cli.errors import UsageError
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build

    (user_path / "profiles").mkdir()
    (user_path / "profiles" / "default.yaml").write_text("search: {low: {width: 3}}\n")
    with pytest.raises(UsageError, match="is `beams` now"):
        build("What is 2+3?", "beam", PlanOptions(budget="low"))
