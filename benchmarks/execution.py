"""Execution as the chooser: chain-of-thought, program-of-thought and hybrid pools on GSM8K, compared.

Replays recorded samples (`benchmarks/record_samples.py`: 16 chain-of-thought samples per question with
`--task math`, program samples with `--task program -n 8` and, continuing their seeds, `--first 8`, each
program run in the sandbox), so every configuration sees the same samples and the comparison is paired:

    python benchmarks/execution.py --cot benchmarks/results/gsm8k-qwen0.5b-sc16.jsonl.gz \
        --pot benchmarks/results/gsm8k-qwen0.5b-pot8.jsonl.gz \
              benchmarks/results/gsm8k-qwen0.5b-pot8b.jsonl.gz \
        --greedy benchmarks/results/greedy-qwen0.5b.jsonl

Each configuration runs step by step as the sampler does (`early_stop.simulate`: the shipped early-stop
rule, the DeepConf filter, 2 samples in flight, or with `--curve` the shipped width policy over that
curve), or all at once without early stopping. With 16 program samples per question it adds program
SC@16 and a hybrid pool of 16 + 16 (what `--task hybrid -n 32` draws; `--budget high` affords it). A
hybrid pool alternates a chain-of-thought sample and a program sample, as `--task hybrid` does. A
program's vote is cast when its sample ends (a program runs in well under a second while the others
decode) and only when it ran and printed an answer. Reported per configuration: accuracy with a 95 %
interval, generated tokens per question, the share of programs that ran, pass@N (some sample right) and
the expected calibration error of each confidence definition
(`ttc_cli.answers.confidence.answer_confidence` ships the best). Greedy rows come from
`benchmarks/prompts.py` runs of `ttc ask --strategy greedy` (live, measured, with seconds per question).
Replayed rows have no time of their own: the recordings may come from different hosts, so the script
prints each recording's decode speed, and with `--curve` (one host's measured tokens/s per width, as
`ttc doctor` shows it) it times every replayed row by that one curve: a step with k samples decoding
takes k / rate(k) seconds, the way `early_stop.py replay --curve` does. That is decoding alone,
modelled, not live: prefill and program runs (about 0.1 s each, overlapping the decoding) are left out.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from early_stop import DEFAULTS, Rule, curve_spec, read_lines, simulate

from ttc_cli.answers.confidence import vote_confidence
from ttc_cli.answers.stopping import leader_probability
from ttc_cli.answers.voting import VoteTally
from ttc_cli.bench.metrics import calibration_error, wilson
from ttc_cli.engine.throughput import Curve


def ece(conf: list[float], right: list[bool]) -> float:
    return calibration_error(conf, right) or 0.0


Record = dict[str, Any]


def as_votes(rec: Record) -> Record:
    """A program sample votes when its program ran and printed an answer (even when the length cap cut
    the text: the program may be whole, and it ran); the replay counts votes of samples that "stop"."""
    samples = []
    for s in rec["samples"]:
        ran = s.get("execution", {}).get("status") == "ok" and s["key"] is not None
        samples.append({**s, "finish": "stop"} if ran else s)
    return {**rec, "samples": samples}


def hybrid(cot: Record, pot: Record, each: int) -> Record:
    """`each` chain-of-thought and `each` program samples, alternating as `--task hybrid` starts them."""
    mixed = [s for pair in zip(cot["samples"][:each], pot["samples"][:each], strict=True) for s in pair]
    decode_s = cot["decode_s"] * each / len(cot["samples"]) + pot["decode_s"] * each / len(pot["samples"])
    return {**cot, "samples": mixed, "decode_s": decode_s}


def joined(files: list[dict[str, Record]]) -> dict[str, Record]:
    """Questions recorded in every file, each with the samples of all of them in sample order (a second
    file from `record_samples.py --first 8` continues the first's seeds), ready to vote."""
    out = {}
    for qid, first in files[0].items():
        if all(qid in f for f in files[1:]):
            recs = [f[qid] for f in files]
            samples = sorted((s for r in recs for s in r["samples"]), key=lambda s: s["i"])
            out[qid] = as_votes({**first, "samples": samples, "decode_s": sum(r["decode_s"] for r in recs)})
    return out


@dataclass
class Row:
    name: str
    right: list[bool]
    tokens: list[int]
    ran: tuple[int, int]  # programs that ran and printed an answer, programs written
    passed: list[bool]  # some sample (among those drawn) right
    conf: dict[str, list[float]]  # confidence definition -> per question
    seconds: list[float] = field(default_factory=list)  # decoding, timed by --curve


CONFIDENCES: dict[str, Callable[[VoteTally, int], float]] = {
    "(winner's votes + 1) / (samples that ended + 2) (shipped)": lambda t, n: vote_confidence(t, n),
    "winner's votes / samples that ended": lambda t, n: t.leader().count / n if n else 0.0,
    "winner's votes / votes cast": lambda t, n: (t.leader().count / t.total) if t.total else 0.0,
    "Beta posterior P(winner beats runner-up)": lambda t, n: _posterior(t),
}


def _posterior(t: VoteTally) -> float:
    votes = t.snapshot()
    if not votes:
        return 0.0
    return leader_probability(votes[0].count, votes[1].count if len(votes) > 1 else 0)


def replay(name: str, recs: list[Record], rule: Rule, curve: Curve | None) -> Row:
    row = Row(name, [], [], (0, 0), [], {k: [] for k in CONFIDENCES})
    ran = written = 0
    for rec in recs:
        out = simulate(rec, rule, curve)
        row.seconds.append(out.seconds)
        drawn, tally = rec["samples"][: out.samples], out.tally
        assert tally is not None
        row.right.append(out.correct)
        row.tokens.append(out.tokens)
        row.passed.append(any(s["correct"] for s in drawn))
        for key, fn in CONFIDENCES.items():
            row.conf[key].append(fn(tally, out.ended) if tally.total else 0.0)
        programs = [s for s in drawn if "execution" in s]
        written += len(programs)
        ran += sum(s["execution"]["status"] == "ok" and s["key"] is not None for s in programs)
    row.ran = (ran, written)
    return row


def greedy_rows(path: Path, ids: list[str]) -> list[tuple[str, float, int, float, float, str]]:
    rows = []
    by_prompt: dict[str, dict[str, Record]] = {}
    for r in read_lines(path):
        by_prompt.setdefault(r["prompt"], {})[r["id"]] = r
    for prompt, got in by_prompt.items():
        have = [got[i] for i in ids if i in got]
        if len(have) < len(ids):
            print(f"note: greedy {prompt}: {len(have)} of {len(ids)} questions", file=sys.stderr)
        if not have:
            continue
        k = sum(r["correct"] for r in have)
        lo, hi = wilson(k, len(have))
        tokens = sum(r["tokens"] for r in have) / len(have)
        secs = sum(r["seconds"] for r in have) / len(have)
        rows.append(
            (
                f"greedy ({prompt}, {path.stem}), live",
                k / len(have),
                round(tokens),
                secs,
                lo,
                f"{lo:.2f}-{hi:.2f}",
            )
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cot", type=Path, required=True, help="recorded chain-of-thought samples")
    ap.add_argument(
        "--pot",
        type=Path,
        nargs="+",
        required=True,
        help="recorded program samples (--task program); several files of one question's samples join",
    )
    ap.add_argument(
        "--greedy",
        type=Path,
        nargs="+",
        default=[],
        help="benchmarks/prompts.py rows of greedy runs, same questions (one file per model)",
    )
    ap.add_argument(
        "--questions", type=int, help="only the first K recorded questions (those a greedy run reached)"
    )
    ap.add_argument(
        "--width",
        type=int,
        default=0,
        help="samples in flight while early stopping (0: the shipped policy over --curve, 2 without one)",
    )
    ap.add_argument(
        "--curve",
        type=curve_spec,
        help="time replayed rows by one host's tokens/s per width, e.g. '1:34.5,2:34.4,4:45.7,8:46.7'",
    )
    args = ap.parse_args()

    cot = {r["id"]: r for r in read_lines(args.cot)}
    files = [{r["id"]: r for r in read_lines(path)} for path in args.pot]
    pot = joined(files)
    ids = [i for i in cot if i in pot][: args.questions]
    names = ", ".join(p.name for p in [args.cot, *args.pot])
    print(f"{len(ids)} questions recorded both ways ({names})\n")
    cots, pots = [cot[i] for i in ids], [pot[i] for i in ids]
    programs = min(len(r["samples"]) for r in pots)
    hyb8, hyb16 = [hybrid(cot[i], pot[i], 4) for i in ids], [hybrid(cot[i], pot[i], 8) for i in ids]
    every = Rule("all at once", 16)
    early = replace(DEFAULTS, width=args.width)
    configs = [
        ("SC@16 chain-of-thought", cots, every),
        ("SC@16 chain-of-thought, early stop", cots, early),
        ("SC@8 chain-of-thought", cots, replace(every, width=8, samples=8)),
        ("SC@8 program", pots, replace(every, width=8, samples=8)),
        ("SC@8 program, early stop", pots, replace(early, samples=8)),
        ("hybrid 4+4", hyb8, replace(every, width=8)),
        ("hybrid 4+4, early stop", hyb8, early),
        ("hybrid 8+8", hyb16, every),
        ("hybrid 8+8, early stop", hyb16, early),
    ]
    if programs >= 16:  # --first 8 recorded the second eight
        hyb32 = [hybrid(cot[i], pot[i], 16) for i in ids]
        configs[5:5] = [
            ("SC@16 program", pots, replace(every, samples=16)),
            ("SC@16 program, early stop", pots, replace(early, samples=16)),
        ]
        configs += [
            ("hybrid 16+16", hyb32, replace(every, width=32, samples=32)),
            ("hybrid 16+16, early stop", hyb32, replace(early, samples=32)),
        ]
    print(
        "| configuration | accuracy (95 % interval) | tokens/q | of SC@16 CoT | s/q | programs ran "
        "| pass@N | ECE |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for path in args.greedy:
        for name, acc, tokens, secs, _, interval in greedy_rows(path, ids):
            print(f"| {name} | {acc:.2f} ({interval}) | {tokens:,} | | {secs:.1f} | | | |")
    rows = [replay(name, recs, rule, args.curve) for name, recs, rule in configs]
    base = sum(rows[0].tokens)
    shipped = next(iter(CONFIDENCES))
    for r in rows:
        n, k = len(r.right), sum(r.right)
        lo, hi = wilson(k, n)
        ran = f"{r.ran[0] / r.ran[1]:.0%}" if r.ran[1] else ""
        cells = [
            r.name,
            f"{k / n:.2f} ({lo:.2f}-{hi:.2f})",
            f"{sum(r.tokens) / n:,.0f}",
            f"{sum(r.tokens) / base:.0%}",
            f"{sum(r.seconds) / n:.1f}" if args.curve else "",
            ran,
            f"{sum(r.passed) / n:.2f}",
            f"{ece(r.conf[shipped], r.right):.3f}",
        ]
        print("| " + " | ".join(cells) + " |")
    if args.curve:
        print(f"\ns/q: decoding timed by the curve {args.curve.to_json()} (tokens/s per width)", end="")
    print("\nMost tokens one question took, per row: " + ", ".join(str(max(r.tokens)) for r in rows))
    print()
    for path, by_id in zip([args.cot, *args.pot], [cot, *files], strict=True):
        # each file is one batch per question, maybe on its own host
        recs = [by_id[qid] for qid in ids]
        speed = sum(sum(x["tokens"] for x in r["samples"]) for r in recs) / sum(r["decode_s"] for r in recs)
        print(f"{path.name}: {speed:.1f} tok/s ({len(recs[0]['samples'])} samples per batch)")
    print("\nCalibration error (ECE, 10 bins; lower is better) of each confidence definition, per row:")
    for key in CONFIDENCES:
        cells = "  ".join(f"{ece(r.conf[key], r.right):.3f}" for r in rows)
        print(f"  {key:<48} {cells}")
    print("  (columns in the order of the table's rows)")


if __name__ == "__main__":
    main()
