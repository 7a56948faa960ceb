"""`--backend openai` against a real OpenAI-compatible server: llama-cpp-python's own server (the `server`
extra), started here on 127.0.0.1 on a free port and serving the default SmolLM2 GGUF. No mock stands in
for it. It is started through ttc's launcher (`ttc serve`), which loads the model with the
same guard on llama.cpp's extra buffer types as ttc's engine: plain `python -m llama_cpp.server` dies at
its first completion on hosts whose AMX kernels crash. Before any test uses a server, it has completed a
request. Replies the tests depend on are forced by a grammar (the server applies it), so they hold on any
host's kernels.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from conftest import ANSWER_42, ENDLESS, OUTSIDE, TTC, run_ttc, write_prompt

from ttc_cli.models.files import default_model_path

SECRET = "sk-test-0123456789-never-print-me"
SERVE = [*TTC, "serve"]  # llama_cpp.server with ttc's guard, as README says
START_S = 120  # loading the 135M model takes seconds; an AMX host's first check adds a child's load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(port: int, log: Path, *options: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The launcher serving the default model on `port`, its stderr going to `log`."""
    with log.open("wb") as err:
        return subprocess.Popen(
            [*SERVE, "--model", str(default_model_path()), "--host", "127.0.0.1", "--port", str(port),
             *options],
            stdout=subprocess.DEVNULL, stderr=err, cwd=OUTSIDE,
            env={**os.environ, "OPENAI_API_KEY": "", **(env or {})},
        )  # fmt: skip


def start_server(port: int, log: Path) -> subprocess.Popen:
    """A server that has answered a real completion, or the test fails saying why (its exit and stderr)."""
    # ttc may stream several requests at once; they queue rather than cancel each other
    proc = launch(port, log, "--n_ctx", "4096", "--interrupt_requests", "False")
    try:
        wait_until_listening(proc, port, log)
        prove_it_completes(proc, port, log)
    except BaseException:
        stop_server(proc)
        raise
    return proc


def wait_until_listening(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(died(proc, log, "while starting"))
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the server did not answer /v1/models within {START_S} s; {tail(log)}")


def prove_it_completes(proc: subprocess.Popen, port: int, log: Path) -> None:
    """One real decode: answering /v1/models is not enough (an AMX crash comes at the first completion)."""
    body = {"prompt": "The sky is", "max_tokens": 4, "temperature": 0, "grammar": 'root ::= "ok"'}
    try:
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/completions", json=body, timeout=START_S)
    except httpx.HTTPError as e:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)  # a crash drops the connection a moment before the process is gone
        if proc.poll() is None:
            pytest.fail(f"the server's first completion failed ({type(e).__name__}: {e}); {tail(log)}")
    if proc.poll() is not None:
        pytest.fail(died(proc, log, "at its first completion"))
    assert reply.status_code == 200, (reply.status_code, reply.text, tail(log))
    assert reply.json()["choices"][0]["text"] == "ok", (reply.text, tail(log))


def died(proc: subprocess.Popen, log: Path, when: str) -> str:
    code = proc.returncode
    how = f"signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"exit code {code}"
    return f"the server ({' '.join(SERVE[1:])}) died {when}: {how}; {tail(log)}"


def tail(log: Path, lines: int = 20) -> str:
    text = log.read_text(errors="replace").strip().splitlines()[-lines:] if log.exists() else []
    return "its stderr ends:\n" + "\n".join(text) if text else "its stderr is empty"


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc = start_server(port := free_port(), tmp_path_factory.mktemp("server") / "stderr.log")
    yield f"http://127.0.0.1:{port}/v1"
    stop_server(proc)


def remote(url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_ttc("ask", *args, "--backend", "openai", "--base-url", url, env=env, timeout=180)


def remote_json(url: str, *args: str) -> dict:
    done = remote(url, *args, "--json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def assert_one_line(done: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ttc: error:"), done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# ---- the launcher: llama_cpp.server with ttc's guard on extra buffer types -----------------------------
# What a host's CPU has does not matter here: TTC_EXTRA_BUFTS decides, and the tests read the decision back
# from the params llama.cpp is given, so they check the mechanism on an AVX2 host as on an AMX one.
@pytest.mark.parametrize("setting, expected", [("0", False), ("1", True)])
def test_the_launcher_loads_models_as_the_guard_decides(monkeypatch, setting: str, expected: bool):
    import llama_cpp
    from llama_cpp import _internals

    from ttc_cli import serve

    monkeypatch.setattr(_internals.LlamaModel, "__init__", _internals.LlamaModel.__init__)  # undone after
    monkeypatch.setenv("TTC_EXTRA_BUFTS", setting)
    said: list[tuple[str, bool, str]] = []
    serve.guard_model_loads(report=lambda path, on, reason: said.append((path.name, on, reason)))
    serve.guard_model_loads()  # a second install changes nothing
    # The class the server's LlamaProxy builds; vocab_only reads no weights and decodes nothing.
    llm = llama_cpp.Llama(model_path=str(default_model_path()), vocab_only=True, verbose=False)
    try:
        assert llm.model_params.use_extra_bufts is expected
    finally:
        llm.close()
    assert said == [(default_model_path().name, expected, f"TTC_EXTRA_BUFTS={setting}")]


@pytest.mark.parametrize("setting, state", [("0", "off"), ("1", "on")])
def test_the_launcher_says_which_kernels_its_server_runs(tmp_path: Path, setting: str, state: str):
    """The real launcher process: its log names the decision before the server takes requests."""
    log = tmp_path / "server.log"
    proc = launch(free_port(), log, env={"TTC_EXTRA_BUFTS": setting})
    name = default_model_path().name
    line = f"ttc: {name}: llama.cpp's extra buffer types {state} (TTC_EXTRA_BUFTS={setting})"
    try:
        deadline = time.monotonic() + START_S
        while line not in log.read_text(errors="replace") and time.monotonic() < deadline:
            assert proc.poll() is None, died(proc, log, "while loading")
            time.sleep(0.2)
    finally:
        stop_server(proc)
    assert line in log.read_text(errors="replace").splitlines(), tail(log)


def test_without_the_server_extra_the_launcher_says_how_to_get_it():
    code = (
        "import runpy, sys\n"
        "sys.modules['fastapi'] = None  # as if the extra were not installed\n"
        "sys.argv = ['serve', '--model', 'model.gguf']\n"
        "runpy.run_module('ttc_cli.serve', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=OUTSIDE, timeout=60
    )
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ttc: error:"), done.stderr
    assert "'fastapi'" in lines[0] and "llama-cpp-python[server]" in lines[0]


def test_a_model_that_is_not_there_is_one_line():
    done = subprocess.run(
        [*SERVE, "--model", "/no/such.gguf"], capture_output=True, text=True, cwd=OUTSIDE, timeout=60
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == (
        "ttc: error: model file not found: /no/such.gguf; pass --model PATH to a .gguf file or set TTC_MODEL"
    )


CRASHING = """
import os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # /v1/models answers, as llama_cpp.server's does on an AMX host
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"data": []}')

    def do_POST(self):  # and the first completion kills it, as the AMX kernels do
        sys.stderr.write("ggml_backend_amx_mul_mat: pretend crash\\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSEGV)

HTTPServer(("127.0.0.1", int(sys.argv[sys.argv.index("--port") + 1])), Handler).serve_forever()
"""


def test_a_server_that_dies_at_its_first_completion_fails_the_fixture_with_why(monkeypatch, tmp_path):
    """Not "cannot reach the server" in every test: the start fails, with the exit and the stderr."""
    (tmp_path / "crashing.py").write_text(CRASHING)
    monkeypatch.setattr(sys.modules[__name__], "SERVE", [sys.executable, str(tmp_path / "crashing.py")])
    with pytest.raises(pytest.fail.Exception) as failed:
        start_server(free_port(), tmp_path / "server.log")
    message = str(failed.value)
    assert "died at its first completion: signal 11 (SIGSEGV)" in message, message
    assert "ggml_backend_amx_mul_mat: pretend crash" in message, message


# ---- every strategy a server can run, through it -----------------------------------------------------
@pytest.mark.parametrize("strategy", ["greedy", "best-of-n", "self-consistency", "auto", "refine"])
def test_each_strategy_runs_through_the_server(server, user_path: Path, strategy: str):
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    data = remote_json(server, "What is 12 + 30?", "-s", strategy, "-n", "3", "--task", task, "-b", "600")
    assert data["answer"] == "42"
    assert data["backend"]["name"] == "openai" and data["backend"]["url"] == server
    assert data["backend"]["server"] == "llama-cpp-python" and data["backend"]["degraded"] == []
    assert 0 < data["budget"]["spent"] <= data["budget"]["limit"] == 600
    assert data["usage"]["generated_tokens"] == data["budget"]["spent"]
    assert data["usage"]["prompt_tokens"] > 10  # counted by the server's tokenizer, not one marker token


def test_a_code_question_runs_through_the_server_without_the_stub_prefill(server, user_path: Path):
    """A server without --tokenizer cannot continue a reply, so the reply does not start with the stub
    (it only saves tokens): the model writes the whole function, and its tests still run."""
    question = 'def double(x):\n    """Twice x.\n    >>> double(2)\n    4\n    """\n'
    data = remote_json(server, question, "-s", "best-of-n", "-n", "2", "--max-tokens", "60")
    assert data["task"] == "code" and [e["call"] for e in data["code"]["examples"]] == ["double(2)"]
    for c in data["candidates"]:
        assert c["kind"] == "code" and not c["text"].startswith('```python\ndef double(x):\n    """')
        assert c["tests"] is not None or c["execution"]["status"] in ("no program", "not run")


def test_samples_carry_the_servers_logprobs(server, user_path: Path):
    data = remote_json(
        server, "Tell me about cats.", "-s", "self-consistency", "-n", "2", "--max-tokens", "12"
    )
    for c in data["candidates"]:
        assert c["tokens"] > 0 and c["mean_logprob"] < 0  # real log-probabilities, not zeros
        assert c["trace_confidence"] is not None and c["trace_confidence"] > 0


@pytest.mark.parametrize("budget", [1, 7, 50, 333])
def test_the_budget_is_never_exceeded_with_requests_in_flight_at_once(server, user_path: Path, budget: int):
    """Every sample could go on forever (the grammar has no end), three stream at once: the budget alone
    stops them, and it is spent exactly, never overdrawn."""
    task = write_prompt(user_path, "endless", ENDLESS)
    args = ["Tell a story.", "-s", "self-consistency", "-n", "4", "--no-early-stop", "--parallel", "3"]
    data = remote_json(server, *args, "--task", task, "-b", str(budget), "--max-tokens", "200")
    spent = data["budget"]["spent"]
    assert spent <= budget and spent == data["usage"]["generated_tokens"]
    assert spent == sum(c["tokens"] for c in data["candidates"])
    assert spent >= budget - 4  # shared out evenly, each share used to its end (rounding leaves < n)


def test_strategies_a_server_cannot_run_are_refused_by_name(server):
    done = remote(server, "What is 2+3?", "-s", "beam")
    assert_one_line(done, 2, "--backend openai cannot run this", "beam", "--tokenizer")


# ---- with the model's tokenizer here: text completions, so every strategy -------------------------------
def tokenized(url: str, *args: str) -> dict:
    return remote_json(url, *args, "--tokenizer", str(default_model_path()))


@pytest.mark.parametrize("strategy", ["beam", "lookahead", "mcts"])
def test_step_level_searches_run_through_the_server_with_a_local_tokenizer(server, user_path, strategy):
    """Each step continues its path as a text completion, and the judge reads P(Yes) from the server's
    top log-probabilities of one more token."""
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    data = tokenized(server, "What is 12 + 30?", "-s", strategy, "--task", task, "-b", "400")
    assert data["answer"] == "42"
    assert data["backend"]["continues_text"] and data["backend"]["token_counts"] == "local-tokenizer"
    assert 0 < data["budget"]["spent"] <= 400 and data["usage"]["judge_tokens"] > 0
    scored = [n["score"] for n in data["tree"] if n["score"] is not None]
    assert scored and all(0.0 < s < 1.0 for s in scored)  # a probability, not a missing signal


def test_a_search_path_is_continued_step_after_step(server, user_path: Path):
    """Free text, so steps end at the delimiter and a path grows over several requests that each send
    the path so far: children extend their parents."""
    data = tokenized(server, "Explain why the sky is blue.", "-s", "beam", "-b", "300", "--step-tokens", "12")
    depth = {n["id"]: 0 for n in data["tree"]}
    for n in data["tree"]:
        if n["parent"] is not None:
            depth[n["id"]] = depth[n["parent"]] + 1
    assert max(depth.values()) >= 2
    assert data["budget"]["spent"] <= 300


def test_prompt_tokens_are_counted_exactly_by_the_local_tokenizer(server, user_path: Path):
    from ttc_cli.engine.llama_vocab import LlamaVocab
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build

    question = "Natalia sold clips to 48 of her friends in April."
    data = tokenized(server, question, "-s", "greedy", "--max-tokens", "4")
    vocab = LlamaVocab.load(default_model_path())
    try:
        messages = build(question, "greedy", PlanOptions()).prompt.messages(question)
        assert data["usage"]["prompt_tokens"] == len(vocab.chat_tokens(messages))
    finally:
        vocab.close()


@pytest.mark.parametrize("budget", [7, 60, 250])
def test_a_searchs_budget_is_never_exceeded_through_the_server(server, user_path: Path, budget: int):
    task = write_prompt(user_path, "endless", ENDLESS)
    data = tokenized(server, "Tell a story.", "-s", "beam", "--task", task, "-b", str(budget))
    assert data["budget"]["spent"] <= budget
    assert data["budget"]["spent"] == data["usage"]["generated_tokens"]


def test_budget_forcing_continues_the_reply_through_the_server(server, user_path: Path):
    """The cap appends the closing tag and the answer cue, and a new request goes on from there."""
    task = write_prompt(user_path, "think-endless", ENDLESS, prefill="<think>\n")
    data = tokenized(
        server, "What is 17 + 25?", "-s", "greedy", "--task", task, "--think-budget", "12",
        "--max-tokens", "30",
    )  # fmt: skip
    c = data["candidates"][0]
    assert c["forced"] == [{"action": "end", "thinking_tokens": 12}]
    assert "</think>\n\nThe answer is" in c["text"]
    assert data["budget"]["spent"] == c["tokens"] == 30  # the forced text is not charged


def test_min_think_answers_the_servers_end_with_wait(server, user_path: Path):
    """Every reply the grammar allows ends after "ok": each end is cut and "Wait" sent on, until the
    minimum is thought."""
    task = write_prompt(user_path, "think-ok", 'root ::= "ok"', prefill="<think>\n")
    data = tokenized(server, "Hi", "-s", "greedy", "--task", task, "--min-think", "8")
    c = data["candidates"][0]
    assert [a["action"] for a in c["forced"]] == ["wait"] * len(c["forced"]) and len(c["forced"]) >= 2
    assert c["text"].startswith("okWaitok") and c["finish_reason"] == "stop"


def test_compare_runs_every_strategy_through_the_server_with_a_tokenizer(server, user_path: Path):
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    done = run_ttc(
        "compare", "What is 12 + 30?", "--backend", "openai", "--base-url", server, "--task", task,
        "--tokenizer", str(default_model_path()), "-n", "2", "-b", "300", "--json", timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ran = {r["strategy"] for r in json.loads(done.stdout)}
    assert {"beam", "lookahead", "mcts", "self-consistency"} <= ran
    assert "leaving out" not in done.stderr


def test_a_second_model_cannot_judge_with_the_policys_tokenizer(server):
    done = remote(
        server, "What is 2+3?", "-s", "beam", "--tokenizer", str(default_model_path()),
        "--verifier-model", "judge-model",
    )  # fmt: skip
    assert_one_line(done, 2, "--tokenizer", "--verifier-model")


def test_a_tokenizer_that_is_not_a_gguf_is_one_line(server, tmp_path: Path):
    bad = tmp_path / "not-a-model.gguf"
    bad.write_bytes(b"GGUF but not really")
    done = remote(server, "What is 2+3?", "--tokenizer", str(bad))
    assert_one_line(done, 2, "tokenizer", str(bad))


def test_compare_leaves_out_what_a_server_cannot_run(server, user_path: Path):
    task = write_prompt(user_path, "forty-two", ANSWER_42)
    done = run_ttc(
        "compare", "What is 12 + 30?", "--backend", "openai", "--base-url", server, "--task", task,
        "-n", "2", "-b", "300", "--json", timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ran = {r["strategy"] for r in json.loads(done.stdout)}
    assert {"greedy", "self-consistency"} <= ran and not ran & {"beam", "lookahead", "mcts"}
    assert "leaving out beam" in done.stderr


def test_the_api_key_is_sent_but_never_shown(server, user_path: Path, cache_path: Path):
    args = ["What is 2+3?", "--api-key-env", "MY_KEY", "-s", "greedy", "--max-tokens", "8", "--json", "-v"]
    done = remote(server, *args, env={"MY_KEY": SECRET})
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert all(SECRET not in p.read_text(errors="replace") for p in cache_path.rglob("*") if p.is_file())


# ---- what goes wrong -------------------------------------------------------------------------------
def test_a_server_that_is_not_there_is_one_line_and_exit_1():
    done = remote(f"http://127.0.0.1:{free_port()}/v1", "What is 2+3?")
    assert_one_line(done, 1, "cannot reach the server", "connection refused")


def test_a_url_that_is_not_one_is_a_usage_error():
    assert_one_line(remote("localhost:8080", "What is 2+3?"), 2, "not a server URL", "--base-url")


def test_no_url_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("TTC_BASE_URL", raising=False)
    done = run_ttc("ask", "What is 2+3?", "--backend", "openai")
    assert_one_line(done, 2, "--base-url", "TTC_BASE_URL")


def test_a_model_the_server_does_not_serve_lists_what_it_does(server):
    done = remote(server, "What is 2+3?", "-m", "qwen2.5:7b")
    assert_one_line(done, 2, "does not serve 'qwen2.5:7b'", "SmolLM2")


def test_a_server_killed_mid_answer_is_one_line_and_exit_1(user_path: Path, tmp_path: Path):
    proc = start_server(port := free_port(), tmp_path / "server.log")
    try:
        task = write_prompt(user_path, "endless", ENDLESS)
        ttc = subprocess.Popen(
            [*TTC, "ask", "Tell a story.", "--backend", "openai", "--base-url",
             f"http://127.0.0.1:{port}/v1", "--task", task, "-s", "greedy", "--max-tokens", "3000", "-v"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=OUTSIDE,
        )  # fmt: skip
        time.sleep(6)  # loaded, probed and streaming
        proc.kill()
        out, err = ttc.communicate(timeout=60)
    finally:
        stop_server(proc)
    assert ttc.returncode == 1, err
    assert "Traceback" not in err and out == ""
    assert err.strip().splitlines()[-1].startswith("ttc: error: the server at"), err


def test_ctrl_c_cancels_the_streams_and_prints_the_best_answer_so_far(server, user_path: Path):
    task = write_prompt(user_path, "endless", ENDLESS)
    ttc = subprocess.Popen(
        [*TTC, "ask", "Tell a story.", "--backend", "openai", "--base-url", server,
         "--task", task, "-n", "2", "--parallel", "2", "--max-tokens", "3000", "--json", "-v"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=OUTSIDE,
    )  # fmt: skip
    time.sleep(10)  # loaded, probed, and streaming for a while even on a slow host
    sent = time.monotonic()
    ttc.send_signal(signal.SIGINT)
    out, err = ttc.communicate(timeout=60)
    assert time.monotonic() - sent < 5, "the streams were not cancelled promptly"
    assert ttc.returncode == 130 and "Traceback" not in err, err
    data = json.loads(out)
    # llama-cpp-python's server serves one request at a time, so the second sample has often not begun:
    # the answer so far is the first one's text, never the empty one's.
    assert data["stopped_because"] == "interrupted" and data["answer"].strip() and data["response"]
    assert all(c["finish_reason"] == "interrupted" for c in data["candidates"])
    assert data["budget"]["spent"] == sum(c["tokens"] for c in data["candidates"]) > 0


# ---- token counts -------------------------------------------------------------------------------------
def test_tiktoken_counts_with_the_network_unreachable():
    """The encodings ship with the install: counting works with every socket refused."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network unreachable in this test')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "from ttc_cli.engine import token_count\n"
        "enc = token_count.encoding('cl100k_base')\n"
        "print(enc.encode('hello world'), token_count.count('hello world', 'gpt-4o'))\n"
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": "/nonexistent-ttc-test"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=OUTSIDE
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("]")[0] == "[15339, 1917"  # tiktoken's published ids for cl100k_base
    assert done.stdout.split()[-1] == "2"


def test_a_changed_encoding_file_is_refused(monkeypatch, tmp_path: Path):
    import gzip

    from ttc_cli.engine import token_count
    from ttc_cli.errors import EngineError

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "o200k_base.tiktoken.gz").write_bytes(gzip.compress(b"aGk= 0\n"))
    monkeypatch.setattr(token_count.resources, "files", lambda package: tmp_path)
    with pytest.raises(EngineError, match="SHA-256"):
        token_count._ranks("o200k_base")


def test_without_a_tokenize_endpoint_prompt_counts_fall_back_to_tiktoken(server):
    from dataclasses import replace

    from ttc_cli.engine import token_count
    from ttc_cli.engine.remote import RemoteEngine

    engine = RemoteEngine(server, None)
    try:
        text = "Natalia sold clips to 48 of her friends in April."
        exact = engine.count(text)
        engine.caps = replace(engine.caps, tokenize=None)
        assert engine.count(text) == token_count.count(text, engine.model_name)
        assert exact > 0 and abs(exact - engine.count(text)) <= 5  # same ballpark, not the same tokenizer
    finally:
        engine.close()


# ---- faults a real server rarely shows on demand: a stub that only fails ----------------------------------
class Failing(BaseHTTPRequestHandler):
    """Answers every request with the class's `status` and `body`, counting them."""

    status, body, seen = 503, b"{}", [0]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen[0] += 1
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    "status, body, needle, tries",
    [(503, b"{}", "(503)", 4), (200, b"<html>not json</html>", "something other than JSON", 1)],
    ids=["503-retried-then-one-line", "malformed-json"],
)
def test_a_failing_server_is_retried_a_bounded_number_of_times_then_one_line(status, body, needle, tries):
    handler = type("H", (Failing,), {"status": status, "body": body, "seen": [0]})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        done = remote(f"http://127.0.0.1:{httpd.server_address[1]}/v1", "What is 2+3?")
    finally:
        httpd.shutdown()
    assert_one_line(done, 1, needle)
    assert handler.seen[0] == tries


# ---- the wire: both dialects of a streamed text completion's log-probabilities ------------------------
def test_a_text_completion_chunk_is_read_in_either_dialect():
    from ttc_cli.engine.remote_wire import parse_chunk

    legacy = {  # llama-cpp-python, vLLM: parallel lists, alternatives as a dict
        "choices": [{"text": " Yes", "finish_reason": None, "logprobs": {
            "tokens": [" Yes"], "token_logprobs": [-0.1], "top_logprobs": [{" No": -2.5, " Yes": -0.1}]}}],
    }  # fmt: skip
    chat_like = {  # llama-server: the chat completions' list of entries, also for text completions
        "choices": [{"text": " Yes", "finish_reason": "length", "logprobs": {"content": [
            {"token": " Yes", "logprob": -0.1, "top_logprobs": [
                {"token": " Yes", "logprob": -0.1}, {"token": " No", "logprob": -2.5}]}]}}],
        "usage": {"completion_tokens": 1},
    }  # fmt: skip
    expected = [(" Yes", -0.1, [(" Yes", -0.1), (" No", -2.5)])]
    assert parse_chunk(legacy) == (expected, None, None)
    assert parse_chunk(chat_like) == (expected, "length", 1)
    plain = {"choices": [{"text": "abc", "logprobs": None, "finish_reason": None}]}
    assert parse_chunk(plain) == ([("abc", 0.0, [])], None, None)  # no logprobs: the text is one piece
    assert parse_chunk({"choices": [{"delta": {"content": ""}, "finish_reason": "stop"}]}) == (
        [],
        "stop",
        None,
    )


def test_answer_probes_run_through_a_server_that_continues_text(server):
    """With --tokenizer a probe is a text completion of the sample so far plus the cue; without one a
    server can only answer whole chats, so there are no probes (and no error)."""
    from ttc_cli.models.files import default_model_path

    args = ("Sam has 3 boxes with 4 pens in each. How many pens?", "-s", "self-consistency", "-n", "3")
    args += (
        "--task",
        "math",
        "--seed",
        "2",
        "--max-tokens",
        "64",
        "--probe",
        "--probe-every",
        "16",
        "-b",
        "400",
    )
    data = remote_json(server, *args, "--tokenizer", str(default_model_path()))
    probes = data["probes"]
    assert probes["rounds"] >= 1 and all(r["position"] % 16 == 0 for r in probes["readings"])
    assert data["usage"]["probe_tokens"] == probes["tokens"]
    assert data["budget"]["spent"] <= 400
    assert remote_json(server, *args)["probes"] is None
