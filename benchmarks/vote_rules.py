"""Vote rules over a hybrid pool: can another way of counting, or another mix, reach SC@16 + 8 points?

Reads the recordings `execution.py` reads (16 chain-of-thought and 16 program samples per question) and
lets every sample run to its end, so only the pool and the rule differ between rows:

    cd benchmarks && python vote_rules.py --cot results/gsm8k-qwen0.5b-sc16.jsonl.gz \
        --pot results/gsm8k-qwen0.5b-pot8.jsonl.gz results/gsm8k-qwen0.5b-pot8b.jsonl.gz

A vote's ties go to the answer reached first, so one sample order can move a row by a few questions.
Every accuracy here is the mean over `--orders` random orders of each pool (the range: the 5th and
95th percentile over orders); beside it, the order a run without early stopping votes in: all samples
start at once, so they vote as they end, shortest first.

Then the question that matters for a target: if one picks the best (pool, rule) by looking at questions,
what does it gain on questions it has not seen? Each of `--halves` random splits picks the best on one
half and scores it, against SC@16 chain-of-thought, on the other.

`--held-out FILE` scores the pre-registered test instead (docs/benchmarks.md, "Held out"): live runs of
`early_stop.py live --runs hybrid16+8-off`, each answer against a plain vote over its own 16
chain-of-thought samples.
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from early_stop import is_right, read_lines
from execution import joined

from ttc_cli.answers.confidence import lowest_group_confidence
from ttc_cli.answers.extract import answers_equal
from ttc_cli.answers.voting import VoteTally

Sample = dict[str, Any]
Rule = Callable[[list[Sample]], VoteTally]
SPLITS = ((16, 0), (0, 16), (8, 8), (12, 4), (16, 4), (16, 8), (12, 12), (16, 16))


def votes(pool: list[Sample]) -> list[Sample]:
    return [s for s in pool if s["finish"] == "stop" and s["key"] is not None]


def weighted(weight: Callable[[Sample], float]) -> Rule:
    def rule(pool: list[Sample]) -> VoteTally:
        tally = VoteTally()
        for s in votes(pool):
            tally.add(s["key"], s["answer"], weight(s))
        return tally

    return rule


def is_program(s: Sample) -> bool:
    return "execution" in s


def confident(keep: float) -> Rule:
    """DeepConf offline, per kind (the two kinds' token confidences are on different scales): only the
    `keep` share of each kind's votes with the highest lowest-group confidence (window 16) votes."""

    def rule(pool: list[Sample]) -> VoteTally:
        kept = []
        for kind in (False, True):
            mine = [s for s in votes(pool) if is_program(s) == kind]
            mine.sort(key=lambda s: s["group_conf"], reverse=True)
            kept += mine[: max(1, round(len(mine) * keep))] if mine else []
        return weighted(lambda s: 1.0)(kept)

    return rule


def both_kinds(pool: list[Sample]) -> VoteTally:
    """Only answers that a chain of thought and a program both reached, when there is one."""
    cast = votes(pool)
    common = {s["key"] for s in cast if is_program(s)} & {s["key"] for s in cast if not is_program(s)}
    return weighted(lambda s: 1.0)([s for s in cast if s["key"] in common] if common else cast)


RULES: dict[str, Rule] = {
    "plain vote": weighted(lambda s: 1.0),
    "programs count 2": weighted(lambda s: 2.0 if is_program(s) else 1.0),
    "programs count 0.5": weighted(lambda s: 0.5 if is_program(s) else 1.0),
    "answers both kinds reached": both_kinds,
    "DeepConf offline, keep 75 % per kind": confident(0.75),
    "DeepConf offline, keep 50 % per kind": confident(0.5),
    "mean log-prob weight, exp(lp / 0.3)": weighted(lambda s: math.exp(s["mean_logprob"] / 0.3)),
}


def pool(cot: Sample, pot: Sample, texts: int, programs: int) -> list[Sample]:
    return cot["samples"][:texts] + pot["samples"][:programs]


def accuracy(recs: list[tuple[Sample, list[Sample]]], rule: Rule, order: random.Random | None) -> float:
    right = 0
    for rec, samples in recs:
        # without early stopping all samples start at once and vote as they end: shortest first
        samples = order.sample(samples, len(samples)) if order else sorted(samples, key=lambda s: s["tokens"])
        right += is_right(rec, rule(samples))
    return right / len(recs)


def plain(samples: list[Sample]) -> VoteTally:
    tally = VoteTally()
    for s in samples:
        if s["votes"]:
            tally.add(s["key"], s["answer"])
    return tally


def held_out(path: Path, orders: int) -> None:
    """The run's answer (16 texts + 8 programs, plain vote) against SC@16 over its own texts, paired."""
    runs = [r for r in read_lines(path) if r["run"] == "hybrid16+8-off"]
    texts = {r["id"]: [s for s in r["samples"] if s["kind"] == "text"] for r in runs}
    k = len(runs)
    base = [is_right(r, plain(texts[r["id"]])) for r in runs]
    mine = [bool(r["correct"]) for r in runs]
    again = sum(is_right(r, plain(r["samples"])) != r["correct"] for r in runs)  # re-voted as run: 0
    only_mine, only_base = (
        sum(a and not b for a, b in zip(mine, base, strict=True)),
        sum(b and not a for a, b in zip(mine, base, strict=True)),
    )
    # two-sided sign test over the questions only one side got right (McNemar's exact form)
    m = only_mine + only_base
    tail = sum(math.comb(m, i) for i in range(min(only_mine, only_base) + 1)) / 2**m if m else 1.0
    rng = random.Random(0)
    diffs = sorted(
        sum(mine[i] - base[i] for i in (rng.randrange(k) for _ in range(k))) / k for _ in range(2000)
    )
    shuffled = []
    for _ in range(orders):
        for r in runs:
            pool, own = r["samples"], texts[r["id"]]
            shuffled.append(
                (
                    is_right(r, plain(rng.sample(pool, len(pool)))),
                    is_right(r, plain(rng.sample(own, len(own)))),
                )
            )
    passed = sum(
        any(s["votes"] and answers_equal(s["answer"], r["gold"]) for s in r["samples"]) for r in runs
    )
    programs = [s for r in runs for s in r["samples"] if s["kind"] == "program"]
    tokens = sum(r["tokens"] for r in runs) / k
    text_tokens = sum(s["tokens"] for t in texts.values() for s in t) / k
    print(f"{k} questions ({runs[0]['id']} on), host {runs[0]['host']}, re-voted differently: {again}")
    print(f"16 + 8, as run:      {sum(mine) / k:.3f}   SC@16 (its own texts): {sum(base) / k:.3f}")
    print(
        f"difference: {(sum(mine) - sum(base)) / k:+.3f} (bootstrap 5–95 %: {diffs[100]:+.3f} to "
        f"{diffs[-101]:+.3f}); only 16 + 8 right {only_mine}, only SC@16 right {only_base}, "
        f"sign test p = {min(1.0, 2 * tail):.3f}"
    )
    mean_mine = sum(a for a, _ in shuffled) / len(shuffled)
    mean_base = sum(b for _, b in shuffled) / len(shuffled)
    print(
        f"over {orders} random vote orders: {mean_mine:.3f} vs {mean_base:.3f}, {mean_mine - mean_base:+.3f}"
    )
    print(
        f"tokens/q {tokens:,.0f} (texts {text_tokens:,.0f}: {tokens / text_tokens:.0%} of SC@16's), "
        f"s/q {sum(r['seconds'] for r in runs) / k:.1f} live, programs that ran "
        f"{sum(s['exec'] == 'ok' for s in programs) / len(programs):.0%}, pass@24 {passed / k:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--held-out", type=Path, help="live hybrid16+8-off runs: the pre-registered test")
    ap.add_argument("--cot", type=Path)
    ap.add_argument("--pot", type=Path, nargs="+")
    ap.add_argument("--orders", type=int, default=100, help="random sample orders per row")
    ap.add_argument("--halves", type=int, default=200, help="random splits for the selection check")
    args = ap.parse_args()
    if args.held_out:
        held_out(args.held_out, args.orders)
        return
    if not (args.cot and args.pot):
        ap.error("--cot and --pot are required (or --held-out)")

    cot = {r["id"]: r for r in read_lines(args.cot)}
    pot = joined([{r["id"]: r for r in read_lines(path)} for path in args.pot])
    ids = [i for i in cot if i in pot]
    for s in (s for i in ids for r in (cot[i], pot[i]) for s in r["samples"]):
        s["group_conf"] = lowest_group_confidence(s["conf"], 16)
    pools = {n: {i: (cot[i], pool(cot[i], pot[i], *n)) for i in ids} for n in SPLITS}
    tokens = {n: sum(s["tokens"] for _, p in pools[n].values() for s in p) / len(ids) for n in SPLITS}
    print(f"{len(ids)} questions; every sample runs to its end; {args.orders} random orders per row\n")
    print("| pool (text + programs) | rule | tokens/q | accuracy, mean over orders (5–95 %) | as they end |")
    print("|---|---|---|---|---|")
    for n in SPLITS:
        recs = list(pools[n].values())
        for name, rule in RULES.items():
            if name != "plain vote" and 0 in n:
                continue
            rng = random.Random(0)
            accs = sorted(accuracy(recs, rule, rng) for _ in range(args.orders))
            lo, hi = accs[len(accs) // 20], accs[-1 - len(accs) // 20]
            mean = sum(accs) / len(accs)
            cells = [f"{n[0]} + {n[1]}", name, f"{tokens[n]:,.0f}", f"{mean:.3f} ({lo:.2f}–{hi:.2f})"]
            print("| " + " | ".join(cells) + f" | {accuracy(recs, rule, None):.2f} |")

    candidates = [(n, name) for n in SPLITS for name in RULES if name == "plain vote" or 0 not in n]
    # without shuffling a question's outcome is fixed: score each candidate on each question once
    right = {c: {q: accuracy([pools[c[0]][q]], RULES[c[1]], None) for q in ids} for c in candidates}

    def score(n: tuple[int, int], name: str, qs: list[str]) -> float:
        return sum(right[n, name][q] for q in qs) / len(qs)

    rng, gains, picked = random.Random(0), [], {}
    for _ in range(args.halves):
        qs = rng.sample(ids, len(ids))
        seen, unseen = qs[: len(qs) // 2], qs[len(qs) // 2 :]
        best = max(candidates, key=lambda c: score(*c, seen))
        picked[best] = picked.get(best, 0) + 1
        gains.append(score(*best, unseen) - score((16, 0), "plain vote", unseen))
    gains.sort()
    lo, hi = gains[len(gains) // 20], gains[-1 - len(gains) // 20]
    print(
        f"\nPicked on one half, scored on the other ({args.halves} random halves): "
        f"{sum(gains) / len(gains):+.3f} over SC@16 chain-of-thought ({lo:+.2f} to {hi:+.2f})"
    )
    common = sorted(picked.items(), key=lambda kv: -kv[1])[:3]
    print("most often picked: " + "; ".join(f"{a} + {b}, {name} ({k}×)" for ((a, b), name), k in common))


if __name__ == "__main__":
    main()
