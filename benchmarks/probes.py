"""Answer probes on GSM8K: do votes read from running chains end self-consistency sooner, at its accuracy?

record  Runs SC@N for real (the engine, the runner's context, the production sampler) with answer probes
        every `--every` tokens and nothing allowed to stop: every chain runs to its end, and every probe
        round, decode step and finished chain is logged with its wall-clock time. One JSON line per
        question, resumably. The chains' final votes are SC@N's answer; the log minus its probe rounds is
        SC@N's time, in the same process.
replay  Replays probe settings over the recordings with the production objects (`ProbeBook`, `VoteStop`):
        a setting probes at multiples of its interval (a subset of the recorded rounds), ends a chain whose
        probes agree, and stops the run when the stop rule, fed finished votes and settled probes, says
        so. Its time is the recorded decode steps up to the stop plus the recorded probe rounds it used
        (chains it ended early still count in the steps' time: an upper bound). Printed against SC@N.

    python benchmarks/probes.py record -m ~/.cache/ttc-bench-models/qwen2.5-coder-0.5b-instruct.gguf \
        --range 1-15 --out benchmarks/results/gsm8k-qwen0.5b-probes.jsonl
    python benchmarks/probes.py replay benchmarks/results/gsm8k-qwen0.5b-probes.jsonl

The live check of the chosen default against SC@16 is `early_stop.py live --runs sc16-off sc16-probe`.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from early_stop import question_span
from gsm8k import DATA, append_jsonl, read_jsonl

from ttc_cli.answers.extract import answers_equal
from ttc_cli.answers.probing import ProbeBook, Probing
from ttc_cli.answers.stopping import VoteStop
from ttc_cli.answers.voting import VoteTally


# ---- record ------------------------------------------------------------------------------------------
def record(args: argparse.Namespace) -> None:
    from ttc_cli.engine.host import cpu_signature
    from ttc_cli.engine.llama import LlamaEngine
    from ttc_cli.events import CandidateFinished, Probed, TokensGenerated
    from ttc_cli.models.files import resolve_model_path
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build
    from ttc_cli.runner import prepare
    from ttc_cli.strategies.sampling import Sampled, sample

    lo, hi = args.span
    rows = read_jsonl(args.data)[lo - 1 : hi]
    done = {r["id"] for r in read_jsonl(args.out)} if args.out.exists() else set()
    engine = LlamaEngine(resolve_model_path(args.model), n_ctx=256, n_seq_max=2, threads=args.threads)
    for qi, row in enumerate(rows, start=lo - 1):
        if row["id"] in done:
            continue
        opts = PlanOptions(
            budget=str(args.n * (args.max_tokens + 4 * args.max_tokens // args.every * 10)),
            samples=args.n,
            max_tokens=args.max_tokens,
            temperature=0.7,
            seed=args.seed + 100 * qi,
            task="math",
            stop_rule="beta",  # no trace filter: every chain runs to its end
            probe=True,
            probe_every=args.every,
        )
        p = build(row["question"], "self-consistency", opts)
        ctx = prepare(p, engine)
        out = Sampled(tally=VoteTally())
        steps: list[list[float]] = []  # [seconds since start, chains decoding]
        rounds: list[dict[str, Any]] = []
        finished: list[dict[str, Any]] = []
        start = last = time.perf_counter()
        for event in sample(ctx, args.n, out, stopper=lambda *_: None):
            now = time.perf_counter()
            if isinstance(event, TokensGenerated) and event.progress:
                steps.append([round(now - start, 4), len(event.progress)])
            elif isinstance(event, Probed):
                rounds.append(
                    {
                        "step": len(steps),
                        "seconds": round(now - last, 4),  # the probe call ran between the two events
                        "tokens": event.tokens,
                        "readings": [[r.index, r.position, r.answer] for r in event.readings],
                    }
                )
            elif isinstance(event, CandidateFinished):
                c = event.candidate
                finished.append(
                    {
                        "i": c.index,
                        "step": len(steps),
                        "tokens": c.tokens,
                        "finish": c.finish_reason,
                        "answer": c.answer,
                    }
                )
            last = now
        line = {
            "id": row["id"],
            "gold": row["answer"],
            "every": args.every,
            "seconds": round(time.perf_counter() - start, 2),
            "steps": steps,
            "rounds": rounds,
            "finished": finished,
            "host": cpu_signature(),
        }
        append_jsonl(args.out, line)
        sc = sc_outcome(line)
        probe_s = sum(r["seconds"] for r in rounds)
        print(
            f"[{qi + 1}/{hi}] {row['id']}: SC@{args.n} {'right' if sc.correct else 'wrong'}, "
            f"{line['seconds']:.0f} s ({probe_s:.0f} s of it probing, {len(rounds)} rounds)",
            flush=True,
        )


# ---- replay --------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    correct: bool
    seconds: float
    tokens: int  # chain tokens + probe tokens
    stopped_at: int  # decode step the run ended at


def _key(answer: str | None) -> str | None:
    from ttc_cli.answers.extract import extract_answer

    if answer is None:
        return None
    found = extract_answer(f"The answer is {answer}", ())
    return found.key if found else None


def decode_seconds(rec: dict[str, Any], upto: int) -> float:
    """Seconds the decode steps 1..upto took, probe rounds between them taken out."""
    steps, rounds = rec["steps"], rec["rounds"]
    if upto <= 0:
        return 0.0
    end = steps[min(upto, len(steps)) - 1][0]
    return end - sum(r["seconds"] for r in rounds if r["step"] < upto)


def sc_outcome(rec: dict[str, Any]) -> Outcome:
    tally = VoteTally()
    for f in rec["finished"]:
        if f["finish"] == "stop" and (key := _key(f["answer"])) is not None:
            tally.add(key, f["answer"])
    lead = tally.leader()
    correct = lead is not None and answers_equal(lead.answer, rec["gold"])
    steps = len(rec["steps"])
    return Outcome(correct, decode_seconds(rec, steps), sum(f["tokens"] for f in rec["finished"]), steps)


@dataclass(frozen=True)
class Setting:
    every: int
    settle: int
    agree: int
    weight: float
    confidence: float

    @property
    def name(self) -> str:
        s = self
        return f"every {s.every}, settle {s.settle}, agree {s.agree}, w {s.weight:g}, conf {s.confidence:g}"


def replay_one(rec: dict[str, Any], s: Setting, n: int) -> Outcome:
    """One question under one setting, event by event in the recorded order."""
    book = ProbeBook(Probing(s.every, 10, s.settle, s.agree, s.weight))
    rule = VoteStop("beta", s.confidence)
    tally = VoteTally()
    ended: dict[int, int] = {}  # chain -> tokens when it ended (finished, or ended by its probes)
    probe_s, probe_tokens = 0.0, 0
    # Events by decode step: chains finishing after step k, probe rounds after step k.
    finishes: dict[int, list[dict[str, Any]]] = {}
    for f in rec["finished"]:
        finishes.setdefault(f["step"], []).append(f)
    rounds = {r["step"]: r for r in rec["rounds"]}

    def with_settled() -> VoteTally:
        full = copy.deepcopy(tally)
        for i in range(n):
            if i not in ended and (got := book.settled(i)) is not None:
                full.add(got[0], got[1], s.weight)
        return full

    def decide() -> bool:
        return rule.check([v.weight for v in with_settled().snapshot()], len(ended), n) is not None

    def answer() -> bool:
        """What the run answers when it ends: the vote, with the settled probes of chains it cancels."""
        lead = with_settled().leader()
        return lead is not None and answers_equal(lead.answer, rec["gold"])

    last = len(rec["steps"])
    for step in range(1, last + 1):
        stop = False
        for f in finishes.get(step, []):
            if f["i"] in ended:
                continue
            ended[f["i"]] = f["tokens"]
            if f["finish"] == "stop" and (key := _key(f["answer"])) is not None:
                tally.add(key, f["answer"])
            stop = stop or decide()
        r = rounds.get(step)
        if not stop and r is not None:
            probed = [(i, pos, a) for i, pos, a in r["readings"] if i not in ended and pos % s.every == 0]
            if probed:
                probe_s += r["seconds"] * len(probed) / len(r["readings"])
                probe_tokens += round(r["tokens"] * len(probed) / len(r["readings"]))
                for i, pos, a in probed:
                    book.record(i, pos, _key(a), a)
                for i, pos, _ in probed:
                    if s.agree and (got := book.may_end(i)) is not None:
                        ended[i] = pos
                        tally.add(got[0], got[1])
                stop = decide()
        if stop:
            chain_tokens = sum(ended.values()) + sum(
                min(step, _length(rec, i)) for i in range(n) if i not in ended
            )
            return Outcome(answer(), decode_seconds(rec, step) + probe_s, chain_tokens + probe_tokens, step)
    return Outcome(answer(), decode_seconds(rec, last) + probe_s, sum(ended.values()) + probe_tokens, last)


def _length(rec: dict[str, Any], i: int) -> int:
    return next(f["tokens"] for f in rec["finished"] if f["i"] == i)


def where_the_time_goes(recs: list[dict[str, Any]]) -> None:
    """When a chain's probed answer becomes its final one, what a probe round costs, and the tail."""
    agree: dict[int, list[bool]] = {}
    for rec in recs:
        final = {
            f["i"]: (_key(f["answer"]) if f["finish"] == "stop" else None, f["tokens"])
            for f in rec["finished"]
        }
        for r in rec["rounds"]:
            for i, pos, a in r["readings"]:
                key, length = final[i]
                if key is not None:
                    agree.setdefault(min(9, 10 * pos // length), []).append(_key(a) == key)
    print("\nprobed answer = the chain's final answer, by how far the chain had got (chains with one):")
    for decile, hits in sorted(agree.items()):
        print(
            f"  {10 * decile:>3}-{10 * decile + 10:>3} % of the chain: "
            f"{sum(hits) / len(hits):.2f} of {len(hits)} probes"
        )
    rounds = [r["seconds"] for rec in recs for r in rec["rounds"]]
    steps = [decode_seconds(rec, len(rec["steps"])) / len(rec["steps"]) for rec in recs]
    per = [r["tokens"] / len(r["readings"]) for rec in recs for r in rec["rounds"]]
    print(
        f"a probe round: {sum(rounds) / len(rounds):.3f} s ({sum(per) / len(per):.1f} tokens per probe), "
        f"a decode step of the chains: {sum(steps) / len(steps):.3f} s"
    )
    longest = sum(len(rec["steps"]) for rec in recs) / len(recs)
    median = sum(sorted(f["tokens"] for f in rec["finished"])[len(rec["finished"]) // 2] for rec in recs)
    print(
        f"steps to the longest chain's end: {longest:.0f}; "
        f"the median chain ends at {median / len(recs):.0f}\n"
    )


def replay(path: Path, n: int) -> None:
    recs = read_jsonl(path)
    base = [sc_outcome(r) for r in recs]
    sc_acc = sum(o.correct for o in base) / len(base)
    sc_s = sum(o.seconds for o in base)
    sc_tok = sum(o.tokens for o in base)
    probe_share = sum(sum(r["seconds"] for r in rec["rounds"]) for rec in recs) / sum(
        rec["seconds"] for rec in recs
    )
    print(
        f"{len(recs)} questions, host {recs[0]['host']}; recorded with probes every {recs[0]['every']} tokens"
    )
    print(
        f"SC@{n}: accuracy {sc_acc:.3f}, {sc_s / len(recs):.1f} s/q decoding, {sc_tok / len(recs):,.0f} tok/q"
    )
    print(f"probe rounds took {probe_share:.1%} of the recording's wall time")
    where_the_time_goes(recs)
    grain = recs[0]["every"]
    settings = [
        Setting(every, settle, agree, weight, conf)
        for every, settle, agree, weight, conf in itertools.product(
            [grain * k for k in (1, 2, 3, 4)],
            [1, 2, 3, 4],
            [0, 3, 4, 6],
            [0.5, 1.0],
            [0.7, 0.8, 0.9, 0.95, 0.99],
        )
        if not agree or agree > settle
    ]
    print(f"{len(settings)} settings replayed")
    rows = []
    for s in settings:
        outs = [replay_one(rec, s, n) for rec in recs]
        acc = sum(o.correct for o in outs) / len(outs)
        rows.append((s, acc, sum(o.seconds for o in outs) / sc_s, sum(o.tokens for o in outs) / sc_tok))
    print(
        "by probe interval: the fastest setting at SC's accuracy, and the most accurate within half its time"
    )
    for every in sorted({r[0].every for r in rows}):
        mine = [r for r in rows if r[0].every == every]
        level = [r for r in mine if r[1] >= sc_acc - 1e-9]
        half = [r for r in mine if r[2] <= 0.5]
        for label, pick in (
            ("at SC's accuracy", min(level, key=lambda r: r[2]) if level else None),
            ("within half its time", max(half, key=lambda r: (r[1], -r[2])) if half else None),
        ):
            if pick is not None:
                s, acc, t, tok = pick
                print(f"  {label:<22} {s.name:<62} {acc:>6.3f} {t:>7.1%} {tok:>7.1%}")
    print(f"\n{'setting':<62} {'accuracy':>8} {'time vs SC':>10} {'tokens vs SC':>12}")
    # The settings on the accuracy-time frontier, then the default's row.
    rows.sort(key=lambda r: (r[2], -r[1]))
    best_acc = -1.0
    for s, acc, t, tok in rows:
        if acc > best_acc:
            best_acc = acc
            print(f"{s.name:<62} {acc:>8.3f} {t:>10.1%} {tok:>12.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--model", "-m", default=None)
    rec.add_argument("--data", type=Path, default=DATA)
    rec.add_argument("--range", dest="span", type=question_span, default=(1, 15), metavar="FIRST-LAST")
    rec.add_argument("-n", type=int, default=16)
    rec.add_argument("--max-tokens", type=int, default=400)
    rec.add_argument("--every", type=int, default=16)
    rec.add_argument("--seed", type=int, default=1000)
    rec.add_argument("--threads", type=int, default=None)
    rec.add_argument("--out", type=Path, required=True)
    rp = sub.add_parser("replay")
    rp.add_argument("recorded", type=Path)
    rp.add_argument("-n", type=int, default=16)
    args = ap.parse_args()
    if args.cmd == "record":
        record(args)
    else:
        replay(args.recorded, args.n)


if __name__ == "__main__":
    main()
