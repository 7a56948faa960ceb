"""Step-level search on GSM8K: accuracy and tokens of greedy, self-consistency, best-of-n + judge, beam,
lookahead and MCTS at the same budgets, overall and on the harder questions.

Every run is what `ttc ask --task math --budget B --strategy S` does (the engine, the runner, the
strategies; no early stopping for self-consistency and best-of-n, so they spend what the preset gives
them). The judge is the model itself unless `--verifier-model` names another GGUF; its runs are recorded
under that model's file name, so one results file can hold both. "Harder" questions are those the greedy
answer gets wrong. One JSON line per (question, strategy, budget, judge) is appended, and a rerun skips
what is already there, so an interrupted benchmark resumes.

    python benchmarks/search.py run --model ~/.cache/ttc-bench-models/qwen2.5-coder-0.5b-instruct.gguf \
        --questions 20 --budgets low medium --out benchmarks/results/gsm8k-qwen0.5b-search.jsonl
    python benchmarks/search.py run --model ~/.cache/ttc-bench-models/qwen2.5-coder-0.5b-instruct.gguf \
        --verifier-model ~/.cache/ttc-bench-models/qwen2.5-coder-1.5b-instruct-q4km.gguf --runs beam \
        --questions 20 --budgets low --out benchmarks/results/gsm8k-qwen0.5b-search.jsonl
    python benchmarks/search.py summary benchmarks/results/gsm8k-qwen0.5b-search.jsonl
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

from gsm8k import DATA, append_jsonl, load_questions, read_jsonl

from ttc_cli.answers.extract import answers_equal

SELF = "self"
RUNS: dict[str, dict[str, Any]] = {
    "greedy": {"strategy": "greedy"},
    "sc": {"strategy": "self-consistency", "early_stop": False},
    "bon-judge": {"strategy": "best-of-n", "early_stop": False, "verifier": "judge"},
    "beam": {"strategy": "beam"},
    "lookahead": {"strategy": "lookahead"},
    "mcts": {"strategy": "mcts"},
}
JUDGED = {"bon-judge", "beam", "lookahead", "mcts"}


def run(args: argparse.Namespace) -> None:
    from ttc_cli.engine.llama import LlamaEngine
    from ttc_cli.models.files import resolve_model_path
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build
    from ttc_cli.runner import execute, prepare

    def load(model: str | None) -> LlamaEngine:
        return LlamaEngine(resolve_model_path(model), n_ctx=256, n_seq_max=2, threads=args.threads)

    rows = load_questions(args.data, args.questions)
    done = (
        {(r["id"], r["run"], r["budget"], r["judge"]) for r in read_jsonl(args.out)}
        if args.out.exists()
        else set()
    )
    engine = load(args.model)
    judge_engine = load(args.verifier_model) if args.verifier_model else None
    judge_name = Path(args.verifier_model).stem if args.verifier_model else SELF
    for qi, row in enumerate(rows):
        for budget in args.budgets:
            for name in args.runs:
                judge = judge_name if name in JUDGED else SELF
                if (row["id"], name, budget, judge) in done:
                    continue
                run = dict(RUNS[name])
                strategy = run.pop("strategy")
                opts = PlanOptions(budget=budget, seed=args.seed + 100 * qi, task="math", **run)
                p = build(row["question"], strategy, opts)
                ctx = prepare(p, engine, judge_engine if name in JUDGED else None)
                data = execute(p, ctx).to_json()
                usage = data["usage"]
                line = {
                    "id": row["id"],
                    "run": name,
                    "budget": budget,
                    "judge": judge,
                    "answer": data["answer"],
                    "correct": answers_equal(data["answer"], row["answer"]),
                    "spent": data["budget"]["spent"],
                    "prompt_eval": usage["prompt_eval_tokens"],
                    "judge_prompt_tokens": usage.get("judge_prompt_tokens", 0),
                    "judge_tokens": usage.get("judge_tokens", 0),
                    "seconds": data["timing"]["total_s"],
                    "stopped_because": data["stopped_because"],
                }
                append_jsonl(args.out, line)
                verdict = "right" if line["correct"] else "wrong"
                print(
                    f"[{qi + 1}/{len(rows)}] {budget} {name} ({judge}): {verdict}, "
                    f"{line['spent']} tok, {line['seconds']:.0f}s",
                    flush=True,
                )
    summary(args.out)


def summary(path: Path) -> None:
    lines = read_jsonl(path)
    greedy_wrong = _greedy_wrong(lines)
    judges = sorted({x["judge"] for x in lines} - {SELF})
    _table(lines, "judge: the model itself", SELF)
    for judge in judges:
        ids = {x["id"] for x in lines if x["judge"] == judge}
        subset = [x for x in lines if x["id"] in ids]
        _table(subset, f"judge: {judge}, and the same questions judged by the model itself", judge)
    print(f"\nharder = the {len(greedy_wrong)} questions greedy gets wrong (at its lowest budget)")


def _greedy_wrong(lines: list[dict[str, Any]]) -> set[str]:
    first: dict[str, dict[str, Any]] = {}
    for x in lines:
        if x["run"] == "greedy" and (x["id"] not in first or x["spent"] < first[x["id"]]["spent"]):
            first[x["id"]] = x
    return {i for i, x in first.items() if not x["correct"]}


def _table(lines: list[dict[str, Any]], title: str, judge: str) -> None:
    """One block per budget, each over the questions every row of that budget ran."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for x in lines:
        if x["judge"] in (SELF, judge):
            groups[(x["budget"], x["run"], x["judge"])].append(x)
    if not groups:
        return
    print(f"\n{title}")
    print(
        f"{'budget':<8} {'strategy':<10} {'judge':<34} {'accuracy':>8} {'harder':>6} {'tokens/q':>8} "
        f"{'judge prompt/q':>14} {'s/q':>6}"
    )
    order = list(RUNS)
    greedy_wrong = _greedy_wrong(lines)
    budgets = {b for b, _, who in groups if who == judge}
    for budget in sorted(budgets):
        mine = {key: g for key, g in groups.items() if key[0] == budget}
        common = set.intersection(*({x["id"] for x in g} for g in mine.values()))
        hard = greedy_wrong & common
        print(f"  {budget}: {len(common)} questions run by every row ({len(hard)} harder)")
        for (_, name, who), g in sorted(mine.items(), key=lambda kv: (order.index(kv[0][1]), kv[0][2])):
            g = [x for x in g if x["id"] in common]
            k = len(g)
            if not k:
                continue
            on_hard = [x for x in g if x["id"] in hard]
            hard_acc = f"{sum(x['correct'] for x in on_hard) / len(on_hard):.2f}" if on_hard else "-"
            print(
                f"{budget:<8} {name:<10} {who:<34} {sum(x['correct'] for x in g) / k:>8.3f} {hard_acc:>6} "
                f"{sum(x['spent'] for x in g) / k:>8.0f} "
                f"{sum(x['judge_prompt_tokens'] for x in g) / k:>14.0f} "
                f"{sum(x['seconds'] for x in g) / k:>6.1f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rn = sub.add_parser("run")
    rn.add_argument("--model", "-m", default=None)
    rn.add_argument("--verifier-model", default=None, help="a second GGUF as the judge of the judged runs")
    rn.add_argument("--data", type=Path, default=DATA)
    rn.add_argument("--questions", type=int, default=20)
    rn.add_argument("--budgets", nargs="+", default=["low", "medium"])
    rn.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    rn.add_argument("--seed", type=int, default=2000)
    rn.add_argument("--threads", type=int, default=None)
    rn.add_argument("--out", type=Path, required=True)
    sm = sub.add_parser("summary")
    sm.add_argument("results", type=Path)
    args = ap.parse_args()
    if args.cmd == "run":
        run(args)
    else:
        summary(args.results)


if __name__ == "__main__":
    main()
