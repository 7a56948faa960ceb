"""The terminal UI: states built from real events, drawn at a fixed width, checked as the text one sees."""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, replace

import pytest
from rich.console import Console, RenderableType

import ttc_cli.ui.state as ui_state
from ttc_cli.budget import TokenBudget
from ttc_cli.engine.base import EngineStats
from ttc_cli.events import (
    Candidate,
    CandidateExecuted,
    CandidateFinished,
    CandidateStarted,
    CodeReport,
    EarlyStop,
    Event,
    Execution,
    Final,
    Routed,
    RunStarted,
    TokensGenerated,
    TraceCancelled,
    Vote,
    VotesUpdated,
)
from ttc_cli.result import RunResult
from ttc_cli.ui.compare_table import compare_table
from ttc_cli.ui.live import CompareView, LiveView
from ttc_cli.ui.state import RunState, on
from ttc_cli.ui.summary import summary
from ttc_cli.ui.widgets import (
    budget_bar,
    candidates_table,
    compare_panels,
    run_view,
    vote_tally,
)


def render(renderable: RenderableType, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, record=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def new_state(strategy: str = "self-consistency", n: int = 8, limit: int = 4096) -> RunState:
    state = RunState(strategy, "SmolLM2-135M", "CPU · 2 threads", limit, "medium")
    state.update(RunStarted(strategy, n, 512, limit, 40))
    for i in range(n):
        state.update(CandidateStarted(i))
    return state


def cand(i: int, answer: str | None = "18", reason: str = "stop", lp: float = -0.2) -> Candidate:
    return Candidate(i, f"... so {answer}", 100, reason, lp, answer, answer, lp)


def votes(*pairs: tuple[str, int]) -> tuple[Vote, ...]:
    return tuple(Vote(a, a, n, float(n)) for a, n in pairs)


def candidate_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.split()[:1] and line.split()[0].lstrip("→").isdigit()]


def result_json(
    strategy: str, answer: str, stopped: str = "completed", scores: tuple[float, ...] = ()
) -> dict:
    """What the CLI hands to `summary` and `compare_table`: a real `RunResult.to_json()`."""
    cands = tuple(Candidate(i, answer, 50, "stop", s, answer, answer, s) for i, s in enumerate(scores))
    budget = TokenBudget(4096, preset="medium")
    budget.take(1234)
    final = Final(answer, answer, "plurality vote: 3 of 4 votes", stopped, cands, (), 0 if cands else None)
    result = RunResult(
        "q?", strategy, "SmolLM2-135M", "math", final, budget, 4, 1, 40, EngineStats(), 0.5, 3.25
    )
    return result.to_json()


def test_tally_lists_answers_leader_first_with_counts_and_a_star_on_the_leader_only() -> None:
    state = new_state()
    state.update(VotesUpdated(votes(("18", 5), ("17", 2), ("20", 1))))
    lines = render(vote_tally(state)).splitlines()
    rows = [line for line in lines if "█" in line or "░" in line]
    assert [r.lstrip("★ ").split()[0] for r in rows] == ["18", "17", "20"]
    assert [r.split()[-1] for r in rows] == ["5", "2", "1"]
    assert rows[0].startswith("★") and sum("★" in line for line in lines) == 1
    assert rows[0].count("█") == 30 and rows[1].count("█") == 12  # proportional to the count


def test_weighted_tally_draws_bars_by_weight() -> None:
    state = new_state()
    state.update(VotesUpdated((Vote("7", "7", 2, 1.8), Vote("9", "9", 3, 0.9))))
    rows = [line for line in render(vote_tally(state)).splitlines() if "█" in line]
    assert "2 (1.80)" in rows[0] and "3 (0.90)" in rows[1]
    assert rows[0].count("█") == 2 * rows[1].count("█")


def test_tally_summarises_answers_beyond_max_rows() -> None:
    state = new_state()
    state.update(VotesUpdated(votes(*((str(a), 30 - a) for a in range(30)))))
    text = render(vote_tally(state, max_rows=6))
    assert sum("█" in line for line in text.splitlines()) == 6
    assert f"… 24 more answers ({sum(30 - a for a in range(6, 30))} votes)" in text


def test_candidate_table_shows_generating_first_then_most_recent_finished_and_counts_the_rest() -> None:
    state = new_state(n=12)
    for i in range(10):
        state.update(CandidateFinished(cand(i)))
    rows = candidate_rows(render(candidates_table(state, max_rows=4)))
    assert [int(r.split()[0]) for r in rows] == [8, 9, 10, 11]
    assert "… 8 more" in render(candidates_table(state, max_rows=4))


def test_candidate_table_statuses_tokens_and_confidence() -> None:
    state = new_state(n=5)
    state.update(TokensGenerated(210, ((4, 1234),)))
    for i, reason in enumerate(("stop", "length", "budget", "interrupted")):
        state.update(CandidateFinished(cand(i, reason=reason, lp=-0.2)))
    text = render(candidates_table(state))
    rows = candidate_rows(text)
    assert [r.split()[1] for r in rows] == ["finished", "length", "budget", "interrupted", "generating"]
    assert f"{math.exp(-0.2):.2f}" in rows[0] and "1,234" in rows[4]
    # The column is the mean token probability; "confidence" is the answer's alone.
    assert "tok p" in text.splitlines()[0] and "conf" not in text


def test_budget_bar_shows_spent_over_limit() -> None:
    state = new_state(n=2)
    state.update(TokensGenerated(1234, ((0, 617), (1, 617))))
    text = render(budget_bar(state))
    assert "1,234/4,096 tokens" in text and "0/2 done" in text
    assert text.count("█") == round(1234 / 4096 * 40)


def test_a_deadline_shows_in_the_header_and_beside_the_clock() -> None:
    state = new_state()
    state.deadline_s = 30.0
    text = render(run_view(state), width=140)
    assert "budget medium · 4,096 tokens · 30s deadline" in text and "/30s" in render(budget_bar(state))


def test_full_view_has_a_header_and_the_compact_view_does_not() -> None:
    state = new_state()
    full, compact = render(run_view(state)), render(run_view(state, compact=True))
    assert "self-consistency · SmolLM2-135M · budget medium · 4,096 tokens" in full and "CPU" in full
    assert "SmolLM2-135M" not in compact and "CPU" not in compact and "4,096 tokens" in compact


def test_final_settles_every_candidate_and_marks_the_chosen_one() -> None:
    state = new_state(n=4)
    state.update(CandidateFinished(cand(0)))
    # 1 and 2 were cut off by the budget and only the Final reports them; 3 is never mentioned again.
    settled = (cand(0), cand(1, reason="budget"), cand(2, reason="budget"))
    state.update(Final("18", "... so 18", "plurality", "budget", settled, votes(("18", 1)), chosen=0))
    assert [state.candidates[i].status for i in range(4)] == ["finished", "budget", "budget", "cancelled"]
    assert state.votes == votes(("18", 1)) and state.finished_at is not None
    assert "→0" in render(run_view(state))
    assert "answer 18 · plurality" in render(run_view(state, compact=True))  # ask prints it as its summary


def test_unknown_events_are_ignored() -> None:
    @dataclass(frozen=True)
    class Unheard(Event):
        x: int

    state = new_state(n=2)
    before = repr(state)
    state.update(Unheard(1))
    assert repr(state) == before


def test_a_handler_registered_with_on_handles_a_new_event_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui_state, "HANDLERS", dict(ui_state.HANDLERS))  # the registration ends with the test

    @dataclass(frozen=True)
    class EarlyStop(Event):
        reason: str

    @on(EarlyStop)
    def _early_stop(state: RunState, e: EarlyStop) -> None:
        state.banners.append(f"early stop: {e.reason}")

    state = new_state(n=2)
    state.update(EarlyStop("the leader cannot be overtaken"))
    assert "▶ early stop: the leader cannot be overtaken" in render(run_view(state))


def test_height_stays_bounded_with_64_candidates_and_30_answers() -> None:
    small, big = new_state(n=2), new_state(n=64)
    for i in range(40):
        big.update(CandidateFinished(cand(i, answer=f"answer number {i % 30}")))
    big.update(VotesUpdated(votes(*((f"answer number {a}", 2 if a < 10 else 1) for a in range(30)))))
    big.banners += ["one", "two", "three", "four"]
    for compact, limit in ((False, 26), (True, 17)):
        lines = render(run_view(big, compact=compact)).splitlines()
        assert len(lines) <= limit, "\n".join(lines)
        assert len(candidate_rows("\n".join(lines))) == (4 if compact else 8)
    panels = render(compare_panels([big, big, small])).splitlines()
    assert len(panels) <= 2 + 17 and all(len(line) <= 100 for line in panels)


def test_compare_panels_are_titled_by_run_and_show_queued_runs_as_waiting() -> None:
    queued = RunState("best-of-n", "SmolLM2-135M", "CPU", 4096, None)
    text = render(compare_panels([new_state(), queued]))
    assert "self-consistency · SmolLM2-135M" in text and "best-of-n · SmolLM2-135M" in text
    assert "waiting" in text


def test_compare_table_marks_agreement_with_the_majority_answer() -> None:
    runs = [
        result_json("greedy", "17"),
        result_json("best-of-n", "18.0"),
        result_json("self-consistency", "18"),
    ]
    lines = render(compare_table(runs), width=160).splitlines()[3:-1]  # between the header and the border
    rows = {line.split("│")[1].strip(): line for line in lines}
    assert "✗" in rows["greedy"] and "✓" in rows["best-of-n"] and "✓" in rows["self-consistency"]
    assert "1,234/4,096" in rows["greedy"] and "3.2" in rows["greedy"]


def test_compare_table_shows_no_majority_on_a_tie_and_the_top_score() -> None:
    runs = [result_json("greedy", "17", scores=(-0.5, -0.25)), result_json("best-of-n", "18")]
    text = render(compare_table(runs), width=160)
    assert "✓" not in text and "✗" not in text
    assert "-0.250" in text


def test_summary_says_why_a_run_stopped_only_when_it_did_not_complete() -> None:
    done = render(summary(result_json("greedy", "18")))
    cut = render(summary(result_json("greedy", "18", "budget")))
    assert "answer 18" in done and "1,234/4,096 tokens" in done and "3.2s" in done
    assert "stopped" not in done and "stopped: budget" in cut


def test_live_view_redraws_on_a_clock_not_per_event() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    state = RunState("self-consistency", "SmolLM2-135M", "CPU", 100_000, None)
    start = time.perf_counter()
    with LiveView(console, state) as view:
        view(RunStarted("self-consistency", 8, 512, 100_000, 40))
        for i in range(8):
            view(CandidateStarted(i))
        for step in range(1, 2001):
            view(TokensGenerated(8 * step, tuple((i, step) for i in range(8))))
    assert time.perf_counter() - start < 1.0
    assert state.spent == 16_000
    frames = console.file.getvalue().count("SmolLM2-135M · budget")  # type: ignore[attr-defined]
    assert 1 <= frames < 50


def test_compare_view_routes_events_to_the_selected_run() -> None:
    states = [RunState(s, "m", "CPU", 4096, None) for s in ("greedy", "best-of-n")]
    with CompareView(Console(file=io.StringIO(), force_terminal=True, width=100), states) as view:
        view.select(1)
        view(TokensGenerated(42, ((0, 42),)))
    assert (states[0].spent, states[1].spent) == (0, 42)


def test_early_stop_route_and_cancelled_traces_show_as_bounded_banners() -> None:
    state = new_state(n=16)
    state.update(Routed("medium", "2 of 4 probe samples agree (3 distinct answers)", 8))
    for i in range(5):
        state.update(TraceCancelled(i, 40 + i, 5.1, 6.2))
    state.update(EarlyStop("beta", "leader has 4 of 4 votes (runner-up 0): P = 0.969", 6, 16, 900, 1500))
    out = render(run_view(state))
    assert "auto: medium question (2 of 4 probe samples agree" in out
    assert "5 low-confidence trace(s) cancelled (latest #4 at 44 tokens" in out
    assert "early stop (beta): leader has 4 of 4 votes" in out and "~1,500 tokens saved" in out
    assert out.count("cancelled (latest") == 1


def test_summary_reports_an_early_stop_and_what_it_saved() -> None:
    data = {
        "answer": "18",
        "strategy": "self-consistency",
        "selection": "plurality vote: 4 of 4 votes",
        "budget": {"spent": 400, "limit": 4096},
        "timing": {"total_s": 3.0},
        "stopped_because": "early-stop",
        "early_stop": {"rule": "beta", "samples_finished": 4, "samples": 16, "saved_tokens": 1200},
    }
    out = render(summary(data), width=200)
    assert "stopped early (beta) after 4/16 samples, ~1,200 tokens saved" in out


def test_program_candidates_show_their_runs_and_a_weak_vote_is_flagged() -> None:
    state = new_state(n=4)
    program = replace(cand(0, answer=None), kind="program", execution=Execution("running"))
    state.update(CandidateFinished(program))
    assert "running" in render(candidates_table(state))
    ran = replace(cand(0, answer="18"), kind="program", execution=Execution("ok", "18\n", 0.05))
    state.update(CandidateExecuted(ran))
    crashed = replace(cand(1, answer=None), kind="program", execution=Execution("error"))
    state.update(CandidateFinished(crashed))
    state.update(CandidateFinished(cand(2, answer="17")))
    rows = candidate_rows(render(candidates_table(state)))
    assert "ran" in rows[0] and "18" in rows[0] and "error" in rows[1]
    state.update(VotesUpdated(votes(("18", 1), ("17", 1))))
    assert "1 of 3 for the leader: low confidence" in render(vote_tally(state), width=120)  # 2/5 < 0.5


def test_code_candidates_show_how_their_tests_went_not_their_code() -> None:
    state = new_state(n=3)
    code = "def f(x):\n    return 2 * x\n"
    testing = replace(cand(0, answer=code), kind="code", execution=Execution("running"))
    state.update(CandidateFinished(testing))
    assert "running" in candidate_rows(render(candidates_table(state)))[0]
    report = CodeReport(examples=(("pass", "4"), ("pass", "-2")), generated=(("pass", "1"), ("fail", "0")))
    tested = replace(testing, execution=Execution("ok", report.summary()), tests=report)
    state.update(CandidateExecuted(tested))
    row = candidate_rows(render(candidates_table(state), width=120))[0]
    assert "tested" in row and "2/2 examples · 1/2 generated" in row and "def f" not in row


def test_summary_states_the_confidence_and_calls_a_weak_answer_a_guess() -> None:
    sure, weak = result_json("self-consistency", "18"), result_json("self-consistency", "18")
    sure["confidence"], weak["confidence"] = 0.8, 0.25
    assert "confidence 0.80" in render(summary(sure), width=200)
    out = render(summary(weak), width=200)
    assert "confidence 0.25: low, treat this answer as a guess" in out


def test_the_tally_judges_the_leader_on_samples_that_ended_not_on_those_an_early_stop_cancelled():
    """2 of 2 ended agree and 6 were cancelled by the stop: the answer's confidence is (2+1)/(2+2) = 0.75,
    and the tally must not call it low by counting the cancelled ones as evidence."""
    from ttc_cli.events import Candidate, CandidateFinished, CandidateStarted, RunStarted, Vote, VotesUpdated
    from ttc_cli.ui.widgets import vote_tally

    def tally(answers: list[str]) -> str:
        state = RunState("self-consistency", "m", "cpu", 1000, None)
        state.update(RunStarted("self-consistency", 8, 100, 1000, 10))
        for i in range(8):
            state.update(CandidateStarted(i))
            ended = i < len(answers)
            answer = answers[i] if ended else None
            text, reason = (f"The answer is {answer}.", "stop") if ended else ("x", "cancelled")
            c = Candidate(i, text, 5, reason, -0.1, answer, answer)
            state.update(CandidateFinished(c))
        counts: dict[str, int] = {}
        for a in answers:
            counts[a] = counts.get(a, 0) + 1
        state.update(VotesUpdated(tuple(Vote(a, a, n, float(n)) for a, n in counts.items())))
        console = Console(record=True, width=100, color_system=None)
        console.print(vote_tally(state))
        return console.export_text()

    assert "low confidence" not in tally(["7", "7"])  # (2+1)/(2+2) = 0.75, whatever was cancelled
    assert "1 of 3 for the leader: low confidence" in tally(["7", "9", "5"])  # (1+1)/(3+2) = 0.4
