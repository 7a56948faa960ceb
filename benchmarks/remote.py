"""In-process llama.cpp against the same model behind an OpenAI-compatible server (`--backend openai`).

Starts llama-cpp-python's server through ttc's launcher (`python -m ttc_cli.serve`, which keeps llama.cpp's
AMX kernels off where they crash, as ttc's engine does), or llama.cpp's `llama-server` with
`--llama-server BINARY` (N parallel slots), on 127.0.0.1 with the model, checks that it completes a
request, then runs self-consistency with N samples
(no early stop, the same seed) on the first K GSM8K questions both ways, one at a time, and prints per
way: tokens generated, seconds, tokens/s, accuracy, and on how many questions the two ways' answers
agree. The two ways sample with different samplers (ttc's llama.cpp chain against the server's), so the
same seed does not give the same samples: agreement measures whether the answers a user gets differ,
not whether the texts do.

    python benchmarks/remote.py --questions 3 -n 16 --max-tokens 128 [-m MODEL.gguf] [--file Q.jsonl]
        [--llama-server PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "gsm8k-train-sample-300.jsonl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    model: str, port: int, binary: str | None, slots: int, ctx: int, log: Path
) -> subprocess.Popen:
    command = (
        [binary, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-np", str(slots),
         "-c", str(ctx * slots)]
        if binary
        else [sys.executable, "-m", "ttc_cli.serve", "--model", model, "--host", "127.0.0.1",
              "--port", str(port), "--n_ctx", "8192", "--interrupt_requests", "False"]
    )  # fmt: skip
    with log.open("wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_until_serving(proc, f"http://127.0.0.1:{port}/v1", log)
    except BaseException:
        proc.kill()
        raise
    return proc


def wait_until_serving(proc: subprocess.Popen, url: str, log: Path) -> None:
    """Until the server has completed a request: /v1/models answers before an AMX crash would come."""
    deadline = time.monotonic() + 120
    while not answers(f"{url}/models"):
        if proc.poll() is not None:
            raise SystemExit(died(proc, log))
        if time.monotonic() > deadline:
            raise SystemExit(f"the server did not start within 120 s\n{tail(log)}")
        time.sleep(0.3)
    try:
        reply = httpx.post(f"{url}/completions", json={"prompt": "The sky is", "max_tokens": 4}, timeout=300)
        failure = f"HTTP {reply.status_code}: {reply.text[:300]}"
    except httpx.HTTPError as e:
        reply, failure = None, f"{type(e).__name__}: {e}"
    if reply is None or reply.status_code != 200:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)  # a crash drops the connection a moment before the process is gone
        raise SystemExit(died(proc, log) if proc.poll() is not None else f"no completion ({failure})")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def died(proc: subprocess.Popen, log: Path) -> str:
    code = proc.returncode
    how = f"signal {-code} ({signal.Signals(-code).name})" if code < 0 else f"exit code {code}"
    return f"the server died: {how}\n{tail(log)}"


def tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").strip().splitlines()[-lines:])


def ask(question: str, args: argparse.Namespace, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "ttc_cli", "ask", question, "-s", "self-consistency", "-n", str(args.n),
           "--no-early-stop", "--seed", str(args.seed), "--max-tokens", str(args.max_tokens), "-b", "max",
           "--json", *extra]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("-n", type=int, default=16)
    parser.add_argument("-m", "--model", default=None, help="GGUF path (default: ttc's built-in model)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--file", type=Path, default=DATA, help="JSONL with question and answer")
    parser.add_argument("--llama-server", default=None, help="llama.cpp's llama-server binary to use")
    args = parser.parse_args()
    from ttc_cli.models.files import resolve_model_path

    model = str(resolve_model_path(args.model))
    rows = [json.loads(line) for line in args.file.read_text().splitlines()[: args.questions]]
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"ttc-bench-server-{port}.log"  # kept only if the start fails
    server = start_server(model, port, args.llama_server, args.n, args.max_tokens + 512, log)
    ways = {
        "in-process": ["-m", model],
        "server": ["--backend", "openai", "--base-url", f"http://127.0.0.1:{port}/v1"],
    }
    totals = {w: {"tokens": 0, "seconds": 0.0, "right": 0} for w in ways}
    agree = 0
    try:
        for row in rows:
            answers = {}
            for way, extra in ways.items():
                data = ask(row["question"], args, extra)
                answers[way] = data["answer"]
                t = totals[way]
                t["tokens"] += data["usage"]["generated_tokens"]
                t["seconds"] += data["timing"]["total_s"] - data["timing"]["load_s"]
                t["right"] += data["answer"] == row["answer"]
            agree += answers["in-process"] == answers["server"]
            print(json.dumps({"id": row.get("id"), "gold": row["answer"], **answers}), file=sys.stderr)
    finally:
        server.terminate()
        log.unlink(missing_ok=True)
    kind = "llama-server" if args.llama_server else "llama-cpp-python's server"
    what = f"self-consistency N={args.n} · {len(rows)} questions · {os.cpu_count()} CPUs · {kind}"
    print(f"model {Path(model).name} · {what}")
    for way, t in totals.items():
        rate = t["tokens"] / t["seconds"] if t["seconds"] else 0.0
        print(f"{way:<11} {t['tokens']:>6} tokens  {t['seconds']:7.1f} s  {rate:6.1f} tok/s  "
              f"accuracy {t['right']}/{len(rows)}")  # fmt: skip
    print(f"same answer both ways on {agree}/{len(rows)} questions")


if __name__ == "__main__":
    main()
