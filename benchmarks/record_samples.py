"""Record N samples per GSM8K question, with every token's confidence, for replaying stopping rules.

Each question is asked exactly as `ttc ask --task math` asks it (same prompt, same chat template), its N
samples decode in one batch, and one JSON line per question keeps, per sample: its length, how it ended,
its extracted answer, whether that answer is right, and the DeepConf token confidence of every token
(minus the mean log-probability of the top-k alternatives). `benchmarks/early_stop.py` replays the
stopping rules over these lines. The output is appended to and resumed: questions already recorded are
skipped, so an interrupted recording continues where it stopped.

With `--task program` the samples are program-of-thought answers (`prompts/program.yaml`): after the
batch decodes, each sample's program runs in ttc's sandbox with the shipped limits, exactly as
`ttc ask --task program` runs it, and its answer is what it printed (`execution` keeps the status and
seconds). Replays then treat a program's vote as cast when its sample ends (programs run in ~0.05 s here,
while the others decode).

    python benchmarks/record_samples.py --model ~/.cache/ttc-bench-models/qwen2.5-coder-0.5b-instruct.gguf \
        --questions 100 --out benchmarks/results/gsm8k-qwen0.5b-sc16.jsonl
    python benchmarks/record_samples.py --model ~/.cache/ttc-bench-models/qwen2.5-coder-0.5b-instruct.gguf \
        --task program -n 8 --questions 100 --out benchmarks/results/gsm8k-qwen0.5b-pot8.jsonl
    python benchmarks/record_samples.py --model ~/.cache/ttc-bench-models/qwen2.5-coder-0.5b-instruct.gguf \
        --task program -n 8 --first 8 --questions 100 --out benchmarks/results/gsm8k-qwen0.5b-pot8b.jsonl

`--first 8` records samples 8..15 (seeds continue where the first 8 stopped), so two files of 8 are
one recording of 16 that decoded in two batches of 8.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gsm8k import DATA, append_jsonl, load_questions, read_jsonl

from ttc_cli.answers.confidence import token_confidences
from ttc_cli.answers.extract import Answer, answers_equal, extract_answer
from ttc_cli.answers.program import extract_program, output_answer
from ttc_cli.engine.llama import LlamaEngine
from ttc_cli.engine.sequence import SamplingParams
from ttc_cli.execution import run_isolated
from ttc_cli.models.files import resolve_model_path
from ttc_cli.options import PlanOptions
from ttc_cli.plan import build
from ttc_cli.runner import prepare
from ttc_cli.strategies.programs import LIMITS


def run_program(text: str) -> tuple[Answer | None, dict[str, object]]:
    """What `ttc ask --task program` makes of a response: the answer its program prints, and the run."""
    code = extract_program(text)
    if code is None:
        return None, {"status": "no program", "seconds": 0.0}
    out = run_isolated([sys.executable, "main.py"], files={"main.py": code}, limits=LIMITS)
    found = output_answer(out.stdout) if out.status == "ok" else None
    status = out.status if found is not None or out.status != "ok" else "no answer"
    return found, {"status": status, "seconds": round(out.seconds, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", "-m", default=None)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument(
        "--first", type=int, default=0, help="first sample index: seeds from seed+first (extends a recording)"
    )
    ap.add_argument("--max-tokens", type=int, default=400)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--top-logprobs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--task", choices=("math", "program"), default="math")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    done = set()
    if args.out.exists():
        done = {r["id"] for r in read_jsonl(args.out)}
    path = resolve_model_path(args.model)
    engine = LlamaEngine(path, n_ctx=256, n_seq_max=2, threads=args.threads)
    started = time.perf_counter()
    for qi, row in enumerate(load_questions(args.data, args.questions)):
        if row["id"] in done:
            continue
        opts = PlanOptions(
            budget=str(args.n * args.max_tokens),
            samples=args.n,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            seed=args.seed + 100 * qi,
            task=args.task,
        )
        p = build(row["question"], "self-consistency", opts)
        ctx = prepare(p, engine)
        root = engine.prefill(ctx.prompt_tokens)
        decoder = engine.decoder(ctx.budget)
        seqs = [engine.fork(root) for _ in range(args.n)]
        engine.release(root)
        for i, seq in enumerate(seqs):
            params = SamplingParams(
                temperature=args.temperature,
                top_k=ctx.sampling.top_k,
                top_p=ctx.sampling.top_p,
                min_p=ctx.sampling.min_p,
                seed=ctx.sampling.seed + args.first + i,
                max_tokens=ctx.sampling.max_tokens,
                top_logprobs=args.top_logprobs,
            )
            decoder.add(seq, params)
        t0 = time.perf_counter()
        for _ in decoder:
            pass
        decode_s = round(time.perf_counter() - t0, 2)
        samples = []
        for i, seq in enumerate(seqs):
            execution = None
            if args.task == "program":
                found, execution = run_program(seq.text)
            else:
                found = extract_answer(seq.text.strip())
            samples.append(
                {
                    "i": args.first + i,
                    "tokens": seq.n_generated,
                    "finish": seq.finish_reason,
                    "answer": found.text if found else None,
                    "key": found.key if found else None,
                    "correct": bool(found and answers_equal(found.text, row["answer"])),
                    "mean_logprob": round(seq.mean_logprob, 4),
                    "conf": [round(c, 3) for c in token_confidences(seq.top_logprobs)],
                    **({"execution": execution} if execution is not None else {}),
                }
            )
            engine.release(seq)
        record = {
            "id": row["id"],
            "gold": row["answer"],
            "prompt_tokens": len(ctx.prompt_tokens),
            "decode_s": decode_s,
            "samples": samples,
        }
        append_jsonl(args.out, record)
        right = sum(s["correct"] for s in samples)
        total = sum(s["tokens"] for s in samples)
        print(
            f"[{qi + 1}/{args.questions}] {row['id']}: {right}/{args.n} right, {total} tokens, "
            f"{total / record['decode_s']:.0f} tok/s, {time.perf_counter() - started:.0f}s elapsed",
            flush=True,
        )


if __name__ == "__main__":
    main()
