"""`cmd:COMMAND` runs the user's command on each whole solution, contained like model-written code."""

from __future__ import annotations

import os
import time

from ttc_cli.execution import Limits
from ttc_cli.verifiers.base import Path, PathStep
from ttc_cli.verifiers.command import CommandVerifier


def whole(*texts: str) -> list[Path]:
    return [Path((PathStep(t, ()),), whole=True) for t in texts]


def test_the_command_gets_the_solution_and_no_secrets(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    here = os.getcwd()
    v = CommandVerifier(f'grep -q 42 && test -z "$OPENAI_API_KEY" && test "$PWD" != "{here}"')
    assert v.score(whole("the answer is 42", "it is 7")) == [1.0, 0.0]
    assert [o.status for o in v.outcomes] == ["ok", "error"]


def test_it_runs_in_a_fresh_scratch_directory_each_time():
    v = CommandVerifier("test ! -e left-behind && touch left-behind && pwd")
    v.score(whole("a", "b", "c"))
    dirs = {o.stdout.strip() for o in v.outcomes}
    assert [o.status for o in v.outcomes] == ["ok"] * 3 and len(dirs) == 3


def test_a_command_that_hangs_is_killed_at_its_limit_and_scores_zero():
    v = CommandVerifier("sleep 60", Limits(wall_s=1.0, cpu_s=1))
    start = time.monotonic()
    assert v.score(whole("x", "y")) == [0.0, 0.0]
    assert time.monotonic() - start < 4  # two at a time: both killed after a second
    assert {o.status for o in v.outcomes} == {"timeout"}


def test_a_flood_of_output_is_capped_not_waited_on():
    v = CommandVerifier("yes | head -c 50000000", Limits(output_bytes=1000))
    assert v.score(whole("x")) == [1.0]
    assert len(v.outcomes[0].stdout) <= 1000 and v.outcomes[0].truncated


def test_partial_solutions_are_not_run_and_score_a_neutral_half():
    v = CommandVerifier("exit 1")
    assert v.score([Path((PathStep("step one", ()),))]) == [0.5] and v.outcomes == []
