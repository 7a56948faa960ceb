"""`--backend openai` against llama.cpp's own llama-server, where one is installed (on PATH, or named by
TTC_LLAMA_SERVER): the capabilities ttc probes, chat completions, and text completions with
`--tokenizer`. llama-server is not a pip package, so CI, which installs only what README says, skips
these; README records when they last ran and on what build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import ANSWER_42, ENDLESS, write_prompt
from test_remote import free_port, remote_json, stop_server

from ttc_cli.models.files import default_model_path

BINARY = os.environ.get("TTC_LLAMA_SERVER") or shutil.which("llama-server")
pytestmark = pytest.mark.skipif(BINARY is None, reason="llama-server is not installed (set TTC_LLAMA_SERVER)")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    assert BINARY is not None
    port = free_port()
    proc = subprocess.Popen(
        [BINARY, "-m", str(default_model_path()), "--host", "127.0.0.1", "--port", str(port),
         "-c", "8192", "-np", "2", "-t", str(os.cpu_count() or 2)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, "llama-server exited while starting"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("llama-server did not start within 120 s")
        time.sleep(0.3)
    yield f"http://127.0.0.1:{port}/v1"
    stop_server(proc)


def test_what_llama_server_offers_is_probed(server):
    from ttc_cli.engine.remote import RemoteEngine

    engine = RemoteEngine(server, None)
    try:
        caps = engine.caps
        assert caps.kind == "llama-server" and caps.parallel == 2
        assert caps.logprobs and caps.sampler_extras and caps.tokenize == "/tokenize"
        assert engine.count("Hello world") == 2
    finally:
        engine.close()


@pytest.mark.parametrize("strategy", ["greedy", "self-consistency"])
def test_sampling_strategies_run_on_llama_server(server, user_path: Path, strategy: str):
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    data = remote_json(server, "What is 12 + 30?", "-s", strategy, "-n", "4", "--task", task, "-b", "600")
    assert data["answer"] == "42" and data["backend"]["server"] == "llama-server"
    assert data["backend"]["degraded"] == [] and 0 < data["budget"]["spent"] <= 600
    assert all(c["mean_logprob"] <= 0 for c in data["candidates"])


@pytest.mark.parametrize("strategy", ["beam", "mcts"])
def test_step_level_searches_run_on_llama_server_with_a_tokenizer(server, user_path: Path, strategy: str):
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    data = remote_json(
        server, "What is 12 + 30?", "-s", strategy, "--task", task, "-b", "400",
        "--tokenizer", str(default_model_path()),
    )  # fmt: skip
    assert data["answer"] == "42" and data["backend"]["continues_text"]
    assert any(n["score"] is not None and 0 < n["score"] < 1 for n in data["tree"])


def test_the_budget_holds_with_two_slots_streaming(server, user_path: Path):
    task = write_prompt(user_path, "endless", ENDLESS)
    args = ["Tell a story.", "-s", "self-consistency", "-n", "4", "--no-early-stop", "--task", task]
    data = remote_json(server, *args, "-b", "77", "--max-tokens", "200")
    assert data["budget"]["spent"] <= 77 and data["budget"]["spent"] == data["usage"]["generated_tokens"]


def test_budget_forcing_on_llama_server(server, user_path: Path):
    task = write_prompt(user_path, "think-endless", ENDLESS, prefill="<think>\n")
    data = remote_json(
        server, "What is 17 + 25?", "-s", "greedy", "--task", task, "--think-budget", "10",
        "--max-tokens", "24", "--tokenizer", str(default_model_path()),
    )  # fmt: skip
    c = data["candidates"][0]
    assert c["forced"] == [{"action": "end", "thinking_tokens": 10}]
    assert "</think>\n\nThe answer is" in c["text"]
