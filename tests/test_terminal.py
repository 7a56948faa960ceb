"""`ttc ask` in a real terminal (tmux): the live view on screen while it runs, the tally and summary after,
and stdout redirected to a file holding only the answer."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import OUTSIDE, TTC, write_prompt

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"
)
COLOR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|38;[25])[;m]")


class Pane:
    """A detached tmux session on its own server socket, running one shell command."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.socket = f"ttc-test-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        script = f"cd {shlex.quote(str(OUTSIDE))} && env {exports} {command}; echo EXIT=$?; sleep 120"
        self._tmux("new-session", "-d", "-x", "120", "-y", "45", "bash", "--norc", "-c", script)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def screen(self, escapes: bool = False) -> str:
        return self._tmux("capture-pane", "-p", *(["-e"] if escapes else []))

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)


def run_in_tmux(tmp_path: Path, extra_env: dict[str, str]) -> tuple[list[str], str, str, Path]:
    out = tmp_path / "answer.txt"
    question = "Sam has 12 marbles and gives away 5. How many marbles are left?"
    cmd = f"{shlex.quote(TTC[0])} ask {shlex.quote(question)} -b 1500 -n 6 --seed 4 > {out}"
    # Free text of some length, then an answer every host's kernels agree on: the tally has a leader.
    write_prompt(tmp_path / "user", "math", 'root ::= [a-z ]{40,90} ". The answer is 7."')
    env = {"TTC_USER_PATH": str(tmp_path / "user"), "TERM": "xterm-256color", **extra_env}
    pane = Pane(cmd, env)
    frames: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            frames.append(pane.screen())
            if "EXIT=" in frames[-1]:
                break
            time.sleep(0.25)
        return frames, pane.screen(), pane.screen(escapes=True), out
    finally:
        pane.close()


def test_live_view_then_tally_and_summary_stay_on_screen(tmp_path):
    frames, final, _, out = run_in_tmux(tmp_path, {})
    assert "EXIT=0" in final, final
    during = [f for f in frames if "generating" in f]
    assert during, "the live view never showed a candidate generating"
    assert any(re.search(r"\d+/1,500 tokens", f) for f in during)
    assert "self-consistency · SmolLM2-135M-Instruct.Q4_1.gguf" in during[0]
    # after the run: the last frame of the view (candidates, tally) and the summary line
    assert "★" in final and "finished" in final
    assert re.search(r"answer \S+ · self-consistency · .* · \d[\d,]*/1,500 tokens", final)
    answer = out.read_text()
    assert answer.count("\n") == 1 and answer.strip()
    assert "\x1b" not in answer and "tokens" not in answer


def test_no_color_is_honoured(tmp_path):
    _, final, with_escapes, _ = run_in_tmux(tmp_path, {"NO_COLOR": "1"})
    assert "EXIT=0" in final and "★" in final
    assert not COLOR.search(with_escapes)


def test_ctrl_c_in_the_live_view_keeps_the_answer_so_far(tmp_path):
    user = tmp_path / "user"
    write_prompt(user, "endless", "root ::= [a-z ] root")  # no sample ends before the key is pressed
    out = tmp_path / "answer.txt"
    cmd = f"{shlex.quote(TTC[0])} ask 'Tell a story.' --task endless -n 4 > {out}"
    pane = Pane(cmd, {"TTC_USER_PATH": str(user), "TERM": "xterm-256color"})
    try:
        deadline = time.monotonic() + 120
        while "generating" not in pane.screen() and time.monotonic() < deadline:
            time.sleep(0.25)
        pane._tmux("send-keys", "C-c")
        sent = time.monotonic()
        while "EXIT=" not in (screen := pane.screen()) and time.monotonic() < sent + 10:
            time.sleep(0.05)
        took = time.monotonic() - sent
    finally:
        pane.close()
    assert "EXIT=130" in screen, screen
    assert took < 1.5, took  # polled every 50 ms through tmux
    assert "interrupted" in screen and "Traceback" not in screen
    assert out.read_text().strip()  # the best text so far, on stdout
