"""Ctrl-C, SIGTERM and a closed stdout, sent to real `ttc` processes in each phase of a run.

Each test starts `ttc -v`, waits on stderr for the phase it wants to interrupt (`ttc: prefill: ...`,
`ttc: judge: ...`, the phases `--verbose` logs), sends the signal, and checks what a user would: the exit
status (130 for Ctrl-C, 143 for SIGTERM) within a second of the signal, the best answer so far on stdout
(JSON with `stopped_because: "interrupted"`), and no traceback. Prompts whose grammar never lets the model
finish keep each phase going until the signal comes, on any host.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import ENDLESS, OUTSIDE, TTC, write_prompt

# Seconds from the signal to the exit: a forward pass is at most 128 tokens, then the engine is freed and
# the process ends. Under 1 s on an AVX2 host; 1.4-1.6 s on an AVX-512 host of the same kind with the
# whole suite's processes around it, so the bound leaves room for slow hosts (a hang takes far longer).
PROMPT_LIMIT = 3.0
LONG_QUESTION = "Think about this sentence with great care and attention. " * 500  # ~5,500 tokens


class Ttc:
    """`python -m ttc_cli -v ARGS` with stdout and stderr drained on threads, so neither pipe can block."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*TTC, *args, "-v"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=OUTSIDE,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.err: list[str] = []
        self.out: list[str] = []
        self.sent = 0.0
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.out, False), daemon=True).start()

    def _pump(self, stream, into: list[str], lines: bool) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            into.append(line)
            if lines:
                self.lines.put(line)

    def wait_for(self, marker: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.lines.get(timeout=0.5).startswith(marker):
                    return
            except queue.Empty:
                assert self.proc.poll() is None, "".join(self.err[-20:])
        self.proc.kill()
        pytest.fail(f"never saw {marker!r}")

    def signal(self, sig: int = signal.SIGINT) -> None:
        self.sent = time.monotonic()
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 60) -> tuple[int, float, str, str]:
        """(exit status, seconds from the last signal to the exit, stdout, stderr)."""
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        took = time.monotonic() - self.sent
        time.sleep(0.1)  # the pump threads take the last lines
        return code, took, "".join(self.out), "".join(self.err)


def interrupted(run: Ttc, sig: int = signal.SIGINT, code: int = 130) -> dict:
    """Send `sig` and check the run ended as an interrupted one should; returns its JSON."""
    run.signal(sig)
    status, took, out, err = run.finish()
    assert "Traceback" not in err, err
    assert status == code, (status, err[-2000:])
    assert took < PROMPT_LIMIT, f"exited {took:.2f} s after the signal"
    data = json.loads(out)
    assert data["stopped_because"] == "interrupted"
    u, spent = data["usage"], data["budget"]["spent"]
    if "tree" in data:  # a search: steps, rollouts and judgements
        assert u["tree_tokens"] + u["rollout_tokens"] + u.get("judge_tokens", 0) == spent
    else:
        assert sum(c["tokens"] for c in data["candidates"]) == spent
    assert u["generated_tokens"] == spent
    return data


@pytest.fixture
def endless(user_path: Path) -> str:
    return write_prompt(user_path, "endless", ENDLESS)


def test_ctrl_c_during_the_prefill(user_path):
    run = Ttc("ask", LONG_QUESTION, "--ctx", "8192", "-s", "greedy", "--json")
    run.wait_for("ttc: prefill:")
    time.sleep(0.3)
    data = interrupted(run)
    assert data["budget"]["spent"] == 0  # nothing was generated yet: the answer so far is empty


def test_ctrl_c_while_decoding(endless):
    run = Ttc("ask", "Tell a story.", "--task", endless, "-n", "4", "--max-tokens", "3000", "--json")
    run.wait_for("ttc: prefill:")
    time.sleep(1.5)
    data = interrupted(run)
    assert data["budget"]["spent"] > 0 and data["answer"]  # the best text so far


def test_ctrl_c_while_the_judge_reads(user_path, endless):
    # A judge prompt of ~3,000 tokens takes seconds to evaluate: the signal lands inside the judging.
    (user_path / "prompts" / "judge.yaml").write_text(
        "system: '" + "Judge the step strictly and carefully. " * 400 + "'\n"
    )
    run = Ttc("ask", "What is 2 + 3?", "--task", endless, "-s", "beam", "--beams", "2", "--expansions", "2",
              "--step-tokens", "8", "--json")  # fmt: skip
    run.wait_for("ttc: judge:")
    time.sleep(0.3)
    interrupted(run)


def test_ctrl_c_during_an_mcts_rollout(endless):
    run = Ttc("ask", "What is 2 + 3?", "--task", endless, "-s", "mcts", "--rollouts", "1", "--step-tokens",
              "8", "--max-tokens", "1000", "-b", "6000", "--verifier", "logprob", "--json")  # fmt: skip
    run.wait_for("ttc: rollout:")
    time.sleep(0.3)
    interrupted(run)


def test_ctrl_c_in_compare_keeps_the_finished_runs(endless):
    # greedy writes 16 tokens and finishes; self-consistency then decodes 64 samples of 16
    run = Ttc("compare", "What is 2 + 3?", "--task", endless, "-s", "greedy", "-s", "self-consistency",
              "-n", "64", "--max-tokens", "16", "-b", "3000", "--no-early-stop", "--json")  # fmt: skip
    run.wait_for("ttc: prefill:")
    run.wait_for("ttc: prefill:")
    run.signal()
    status, took, out, err = run.finish()
    assert status == 130 and "Traceback" not in err and took < PROMPT_LIMIT
    runs = json.loads(out)
    assert [r["strategy"] for r in runs] == ["greedy", "self-consistency"]
    assert runs[0]["stopped_because"] == "completed" and runs[1]["stopped_because"] == "interrupted"


def test_ctrl_c_while_loading_the_model_or_just_after():
    """The load itself is cut short where llama.cpp next asks (`test_engine` checks that exactly); here,
    whichever phase the signal lands in, the process ends at once without a traceback."""
    run = Ttc("ask", "What is 2 + 3?", "--json")
    run.wait_for("ttc: load:")
    run.signal()
    status, took, out, err = run.finish()
    assert status == 130 and "Traceback" not in err and took < PROMPT_LIMIT
    if out:  # the load had finished: the run answered with what it had
        assert json.loads(out)["stopped_because"] == "interrupted"
    else:
        assert err.rstrip().endswith("ttc: interrupted")


def test_a_second_ctrl_c_aborts_at_once(endless):
    run = Ttc("ask", LONG_QUESTION, "--ctx", "8192", "-s", "greedy", "--task", endless, "--json")
    run.wait_for("ttc: prefill:")
    run.signal()
    run.signal()
    status, took, out, err = run.finish()
    assert status == 130 and "Traceback" not in err and took < PROMPT_LIMIT
    assert err.rstrip().endswith("ttc: interrupted") or json.loads(out)["stopped_because"] == "interrupted"


@pytest.mark.parametrize("where", ["in-a-command", "outside-a-command"])
def test_a_second_signal_ends_with_one_line_and_its_status(where, monkeypatch, capsys):
    """The abort path on its own, without the race of two real signals: wherever the second one lands
    (inside a command, where Typer would turn a KeyboardInterrupt into a silent exit, or outside one),
    ttc says so and exits 128 + the signal."""
    from ttc_cli import cli
    from ttc_cli.interrupts import Interrupts

    handler = Interrupts()

    def second_signal(*args: object, **kwargs: object) -> None:
        handler._handle(signal.SIGTERM, None)
        handler._handle(signal.SIGTERM, None)

    if where == "in-a-command":
        monkeypatch.setattr(cli.typer, "echo", second_signal)  # `ttc strategies` prints with typer.echo
    else:
        monkeypatch.setattr(cli, "app", second_signal)
    with pytest.raises(SystemExit) as exited:
        cli.main(["strategies"])
    assert exited.value.code == 143
    assert capsys.readouterr().err == "ttc: interrupted\n"


def test_sigterm_stops_the_run_with_its_best_answer(endless):
    run = Ttc("ask", "Tell a story.", "--task", endless, "-n", "2", "--max-tokens", "3000", "--json")
    run.wait_for("ttc: prefill:")
    time.sleep(1.0)
    data = interrupted(run, signal.SIGTERM, code=143)
    assert data["answer"]


def test_a_closed_stdout_ends_quietly():
    """`ttc ask ... | head -c1` where the reader is gone before ttc writes: no traceback, no hang."""
    read, write = os.pipe()
    os.close(read)  # nobody will ever read: the first write gets EPIPE
    done = subprocess.run(
        [*TTC, "ask", "What is 2 + 3?", "-b", "20", "--json"],
        stdin=subprocess.DEVNULL,
        stdout=write,
        stderr=subprocess.PIPE,
        text=True,
        cwd=OUTSIDE,
        timeout=120,
    )
    os.close(write)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_head_reading_one_byte_ends_the_pipeline(endless):
    shell = f"{TTC[0]} ask 'What is 2 + 3?' -b 40 --json | head -c1"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, cwd=OUTSIDE, timeout=120
    )
    assert done.stdout == "{" and "Traceback" not in done.stderr and done.returncode == 0, done.stderr
