"""Which prompt to ship: greedy accuracy of prompt variants on GSM8K questions, the same questions for each.

    python benchmarks/prompts.py run -m MODEL --prompt benchmarks/prompts/cot-plain.yaml --range 101-200 \
        --out benchmarks/results/prompts-qwen0.5b.jsonl
    python benchmarks/prompts.py summary benchmarks/results/prompts-qwen0.5b.jsonl

A variant whose name starts with `program` answers with a Python program: it is run in the sandbox
(`ttc_cli.execution`) and its printed answer scored, the way `--task program` does. Greedy decoding is
deterministic on one host, so the spread that matters is over questions: the summary gives each variant
a 95 % interval and, against the first variant, the questions only one of them got right (a paired
comparison: 9 against 2 is a prompt effect, 5 against 4 is noise). Resumable: finished rows are kept.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from gsm8k import DATA, append_jsonl, read_jsonl

from ttc_cli.answers.extract import answers_equal
from ttc_cli.answers.program import extract_program, output_answer
from ttc_cli.execution import Limits, run_isolated


def question_range(spec: str) -> tuple[int, int]:
    lo, _, hi = spec.partition("-")
    return int(lo), int(hi or lo)


def run(args: argparse.Namespace) -> None:
    user = Path(tempfile.mkdtemp(prefix="ttc-prompts-"))
    name = args.prompt.stem
    (user / "prompts").mkdir()
    shutil.copy(args.prompt, user / "prompts" / args.prompt.name)
    os.environ["TTC_USER_PATH"] = str(user)
    from ttc_cli.engine.llama import LlamaEngine
    from ttc_cli.models.files import resolve_model_path
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build
    from ttc_cli.runner import execute, prepare

    lo, hi = question_range(args.range)
    rows = read_jsonl(args.data)[lo - 1 : hi]
    done = {(r["prompt"], r["id"]) for r in read_jsonl(args.out)} if args.out.exists() else set()
    engine = LlamaEngine(resolve_model_path(args.model), n_ctx=256, n_seq_max=2, threads=args.threads)
    for qi, row in enumerate(rows, lo):
        if (name, row["id"]) in done:
            continue
        opts = PlanOptions(task=name, budget=str(args.max_tokens), max_tokens=args.max_tokens, seed=qi)
        p = build(row["question"], "greedy", opts)
        start = time.perf_counter()
        data = execute(p, prepare(p, engine)).to_json()
        text = data["candidates"][0]["text"]
        line = {"prompt": name, "id": row["id"], "q": qi, "tokens": data["budget"]["spent"]}
        if name.startswith("program"):
            code = extract_program(text)
            outcome = (
                run_isolated([sys.executable, "main.py"], files={"main.py": code}, limits=LIMITS)
                if code
                else None
            )
            found = output_answer(outcome.stdout) if outcome is not None and outcome.status == "ok" else None
            line |= {
                "ran": outcome.status if outcome else "no program",
                "answer": found.text if found else None,
            }
        else:
            line["answer"] = data["answer"]
        line["correct"] = line["answer"] is not None and answers_equal(line["answer"], row["answer"])
        line["seconds"] = round(time.perf_counter() - start, 2)
        append_jsonl(args.out, line)
        print(f"[{qi}] {name}: {line['correct']} {line['tokens']} tok {line['seconds']}s", flush=True)


LIMITS = Limits(wall_s=5.0, cpu_s=5, memory_mb=512)


def wilson(k: int, n: int) -> tuple[float, float]:
    if not n:
        return 0.0, 0.0
    z, p = 1.96, k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return mid - half, mid + half


def summary(args: argparse.Namespace) -> None:
    rows = read_jsonl(args.results)
    by_prompt: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_prompt.setdefault(r["prompt"], {})[r["id"]] = r
    common = set.intersection(*(set(v) for v in by_prompt.values()))
    first = next(iter(by_prompt))
    print(f"{len(common)} questions answered under every prompt; paired against {first}\n")
    print(
        "| prompt | accuracy (95 % interval) | tokens/q | s/q | programs that ran | only this right | only "
        f"{first} right |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, got in by_prompt.items():
        rs = [got[i] for i in common]
        k = sum(r["correct"] for r in rs)
        lo, hi = wilson(k, len(rs))
        ran = [r for r in rs if "ran" in r]
        ran_s = f"{sum(r['ran'] == 'ok' for r in ran) / len(ran):.2f}" if ran else ""
        mine = sum(got[i]["correct"] and not by_prompt[first][i]["correct"] for i in common)
        theirs = sum(by_prompt[first][i]["correct"] and not got[i]["correct"] for i in common)
        tokens = sum(r["tokens"] for r in rs) / len(rs)
        seconds = sum(r["seconds"] for r in rs) / len(rs)
        print(
            f"| {name} | {k / len(rs):.3f} ({lo:.2f}–{hi:.2f}) | {tokens:,.0f} | {seconds:.1f} | {ran_s} | "
            f"{mine} | {theirs} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--model", "-m", default=None)
    r.add_argument("--prompt", type=Path, required=True)
    r.add_argument("--data", type=Path, default=DATA)
    r.add_argument("--range", default="101-200", help="questions, 1-based, in file order")
    r.add_argument("--max-tokens", type=int, default=400)
    r.add_argument("--threads", type=int, default=None)
    r.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("summary")
    s.add_argument("results", type=Path)
    args = ap.parse_args()
    run(args) if args.command == "run" else summary(args)


if __name__ == "__main__":
    main()
