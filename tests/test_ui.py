"""Render tests: the text a person sees at a fixed width, built from real event objects."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

from rich.console import Console

from ttc_cli.events import (
    Candidate,
    CandidateFinished,
    CandidateStarted,
    Event,
    Final,
    RunStarted,
    TokensGenerated,
    Vote,
    VotesUpdated,
)
from ttc_cli.ui import state as state_mod
from ttc_cli.ui.live import LiveView
from ttc_cli.ui.state import RunState
from ttc_cli.ui.widgets import candidates_table, compare_table, run_view, summary, vote_tally


def render(renderable, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def cand(i: int, answer: str | None, lp: float = -0.5, reason: str = "stop", tokens: int = 30) -> Candidate:
    return Candidate(i, f"... the answer is {answer}", tokens, reason, lp, answer, answer, lp)


def sc_state(n: int = 8, finished: int = 5) -> RunState:
    s = RunState("self-consistency", "SmolLM2", "CPU · 2 threads", 4096, "medium")
    s.update(RunStarted("self-consistency", n, 512, 4096, 60))
    for i in range(n):
        s.update(CandidateStarted(i))
    s.update(TokensGenerated(1234, tuple((i, 40 + i) for i in range(n))))
    answers = ["42", "7", "42", "13", "42", "7", "9", "1"]
    for i in range(finished):
        s.update(CandidateFinished(cand(i, answers[i % len(answers)], tokens=40 + i)))
    s.update(VotesUpdated((Vote("42", "42", 3, 3.0), Vote("7", "7", 1, 1.0), Vote("13", "13", 1, 1.0))))
    return s


def test_run_view_shows_header_budget_candidates_and_tally():
    text = render(run_view(sc_state()))
    assert "self-consistency · SmolLM2 · budget medium (4,096) tokens · CPU · 2 threads" in text
    assert "1,234/4,096 tokens" in text and "5/8 done" in text
    assert text.count("generating") == 3 and text.count("finished") == 5
    lines = [line for line in text.splitlines() if "█" in line or "░" in line]
    tally = [line for line in lines if "tokens" not in line]
    assert [line.split()[0:2] for line in tally] == [
        ["★", "42"],
        ["7", "█" * 10 + "░" * 20],
        ["13", "█" * 10 + "░" * 20],
    ]
    assert tally[0].rstrip().endswith(" 3") and tally[1].rstrip().endswith(" 1")
    assert text.count("★") == 1


def test_weighted_tally_shows_weights_and_scales_bars_by_them():
    s = sc_state()
    s.update(VotesUpdated((Vote("7", "7", 1, 0.9), Vote("42", "42", 3, 0.3))))
    text = render(vote_tally(s, width=10))
    first, second = [line for line in text.splitlines() if line.strip()]
    assert first.startswith("★ 7") and first.rstrip().endswith("1 (0.90)")
    assert "██████████" in first and "███░░░░░░░" in second


def test_candidate_table_is_bounded_and_says_how_many_are_hidden():
    s = sc_state(n=64, finished=40)
    text = render(candidates_table(s, max_rows=8))
    rows = [line for line in text.splitlines()[1:] if line.strip() and "more" not in line]
    assert len(rows) == 8
    assert "… 56 more" in text
    assert sum("generating" in r for r in rows) == 8  # the live ones come first


def test_view_height_stays_bounded_with_many_candidates_and_answers():
    s = sc_state(n=64, finished=64)
    s.update(VotesUpdated(tuple(Vote(str(a), str(a), 30 - a, 30.0 - a) for a in range(30))))
    full, compact = render(run_view(s)), render(run_view(s, compact=True))
    assert len(full.splitlines()) <= 20 and len(compact.splitlines()) <= 12
    assert "… 24 more answers" in full


def test_compact_view_has_no_header_and_final_marks_the_chosen_candidate():
    s = sc_state(n=4, finished=4)
    s.update(Final("42", "...", "plurality vote", "completed", tuple(cand(i, "42") for i in range(4)), (), 2))
    text = render(run_view(s, compact=True))
    assert "budget medium" not in text
    assert "★2" in text


def test_final_settles_candidates_that_were_still_generating():
    s = sc_state(n=3, finished=1)
    partial = cand(2, None, reason="interrupted", tokens=12)
    s.update(Final("42", "...", "x", "interrupted", (cand(0, "42"), cand(1, "7"), partial), (), 0))
    statuses = {i: c.status for i, c in s.candidates.items()}
    assert statuses == {0: "finished", 1: "finished", 2: "interrupted"}


def _result(strategy: str, answer: str, spent: int = 100, stopped: str = "completed", score=None) -> dict:
    return {
        "strategy": strategy,
        "model": "m.gguf",
        "answer": answer,
        "selection": "plurality vote: 3 of 4 votes",
        "stopped_because": stopped,
        "budget": {"limit": 4096, "spent": spent},
        "timing": {"total_s": 1.25},
        "candidates": [{"score": score}] if score is not None else [],
    }


def test_compare_table_marks_agreement_with_the_majority():
    results = [
        _result("greedy", "41"),
        _result("best-of-n", "42.0", score=-0.51),
        _result("self-consistency", "42"),
    ]
    rows = {
        line.split()[1]: line
        for line in render(compare_table(results), width=140).splitlines()
        if "m.gguf" in line
    }
    assert "✗" in rows["greedy"] and "✓" in rows["best-of-n"] and "✓" in rows["self-consistency"]
    assert "-0.510" in rows["best-of-n"] and "100/4,096" in rows["greedy"]


def test_summary_names_the_stop_only_when_the_run_did_not_complete():
    done = render(summary(_result("self-consistency", "42")), width=160)
    cut = render(summary(_result("self-consistency", "42", stopped="budget")), width=160)
    assert "answer 42" in done and "100/4,096 tokens" in done and "stopped" not in done
    assert "stopped: budget" in cut


def test_unknown_events_are_ignored_and_new_ones_need_one_handler():
    @dataclass(frozen=True)
    class EarlyStop(Event):
        reason: str

    s = sc_state()
    s.update(EarlyStop("leader 42 at P=0.97"))  # no handler: nothing happens
    assert s.banners == []
    try:
        state_mod.on(EarlyStop)(lambda st, e: st.banners.append(e.reason))
        s.update(EarlyStop("leader 42 at P=0.97"))
        assert "▶ leader 42 at P=0.97" in render(run_view(s))
    finally:
        state_mod.HANDLERS.pop(EarlyStop, None)


def test_live_view_redraws_on_a_clock_not_per_event():
    console = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)
    s = sc_state()
    start = time.perf_counter()
    with LiveView(console, s) as view:
        for k in range(2000):
            view(TokensGenerated(k, ((0, k),)))
    elapsed = time.perf_counter() - start
    frames = console.file.getvalue().count("tokens ·")  # type: ignore[attr-defined]
    assert frames <= 2 + 8 * (elapsed + 1), f"{frames} redraws in {elapsed:.2f}s"
    assert "1,999/4,096 tokens" in console.file.getvalue()  # type: ignore[attr-defined]
