"""How well best-of-n's and greedy's confidence would have been calibrated over a `ttc bench` run log.

The bench run in README predates both (best-of-n and greedy stated no confidence then), so this
recomputes them from each run's stored candidates exactly as the strategies now do: best-of-n's as
answers.confidence.agreement_confidence over the kept answer; greedy's as the calibration `ttc bench
--fit` would fit (bench.fit.calibrate_greedy), over several random halves of the questions. Voting
strategies' own stated confidence is shown beside for comparison. No model runs.

    python benchmarks/confidence.py benchmarks/results/bench-qwen0.5b/runs.sqlite [--limit 80]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections import defaultdict

from ttc_cli.answers.confidence import agreement_confidence
from ttc_cli.answers.extract import answer_key, answers_equal
from ttc_cli.bench.fit import calibrate_greedy
from ttc_cli.bench.metrics import auroc, calibration_error


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", help="a bench's runs.sqlite")
    ap.add_argument("--limit", type=int, help="only the first K questions (by their order in the log)")
    ap.add_argument("--halves", type=int, default=5, help="random halves for greedy's calibration")
    args = ap.parse_args()
    db = sqlite3.connect(f"file:{args.log}?mode=ro", uri=True)
    rows = db.execute("SELECT strategy, options, result FROM runs WHERE command = 'bench' ORDER BY started")
    order: dict[str, int] = {}
    by_config: dict[tuple[str, str], dict[str, tuple[dict, str]]] = defaultdict(dict)
    for strategy, options, result in rows:
        opts = json.loads(options)
        qid = opts["bench"]["id"]
        order.setdefault(qid, len(order))
        by_config[(strategy, opts["plan"]["budget"])][qid] = (json.loads(result), opts["bench"]["gold"])
    keep = {q for q, i in order.items() if args.limit is None or i < args.limit}
    for (strategy, budget), runs in sorted(by_config.items()):
        runs = {q: r for q, r in runs.items() if q in keep}
        right = {
            q: r["answer"] is not None and answers_equal(r["answer"], gold) for q, (r, gold) in runs.items()
        }
        label = f"{strategy} · {budget} ({len(runs)} q, {100 * sum(right.values()) / len(runs):.1f} % right)"
        if strategy == "best-of-n":
            said = {q: _agreement(r) for q, (r, _) in runs.items()}
            _report(label, "agreement with the kept answer", said, right)
        elif strategy == "greedy":
            _greedy(label, runs, right, args.halves)
        elif all(r["confidence"] is not None for r, _ in runs.values()):
            _report(label, "stated", {q: r["confidence"] for q, (r, _) in runs.items()}, right)


def _agreement(result: dict) -> float:
    cands = result["candidates"]
    kept = next(c for c in cands if c["index"] == result["chosen"])
    ended = sum(c["finish_reason"] in ("stop", "length") for c in cands)
    if kept["answer"] is None or kept["finish_reason"] != "stop":
        return 0.0
    key = answer_key(kept["answer"])
    agreeing = sum(c["finish_reason"] == "stop" and c["answer"] is not None and answer_key(c["answer"]) == key
                   for c in cands)  # fmt: skip
    return agreement_confidence(agreeing, ended)


def _greedy(label: str, runs: dict[str, tuple[dict, str]], right: dict[str, bool], halves: int) -> None:
    chosen = {q: r["candidates"][0] for q, (r, _) in runs.items()}
    logprob = auroc([c["mean_logprob"] for c in chosen.values()], [right[q] for q in chosen])
    print(f"{label}: AUROC of the mean log-probability {logprob:.2f}")
    data = [(q, right[q], c["mean_logprob"], c["answer"] is not None) for q, c in chosen.items()]
    for seed in range(halves):
        fit = calibrate_greedy(data, seed)
        if fit is None:
            continue
        print(f"  half {seed}: fitted on {fit['fit_runs']}, held back {fit['test_runs']}: says "
              f"{fit['test_mean_confidence']:.3f} vs {fit['test_accuracy']:.3f} right, "
              f"ECE {fit['test_calibration_error']:.3f}, AUROC {fit['test_auroc']:.2f}")  # fmt: skip


def _report(label: str, what: str, said: dict[str, float], right: dict[str, bool]) -> None:
    qs = list(said)
    ece = calibration_error([said[q] for q in qs], [right[q] for q in qs])
    area = auroc([said[q] for q in qs], [right[q] for q in qs])
    mean = sum(said.values()) / len(said)
    print(f"{label}: {what}: mean {mean:.3f}, ECE {ece:.3f}, AUROC {area:.2f}")


if __name__ == "__main__":
    main()
