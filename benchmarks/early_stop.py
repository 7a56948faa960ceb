"""Early stopping on GSM8K: accuracy and generated tokens of SC@N against each stopping rule.

Two parts, both printed as tables:

replay  Reads samples recorded by `benchmarks/record_samples.py` (N per question, every token's
        confidence) and replays each rule over them with the production objects (`VoteStop`,
        `TraceFilter`) in a step-by-step simulation of `sample()`: `width` samples decode at once, a new
        one starts as one finishes, a stop cancels the ones in flight, and a sample's tokens count up to
        the step it ended or was cancelled at. Every rule sees the same samples, so they compare fairly.
live    Runs `auto` and self-consistency with `--stop-rule deepconf` for real (the engine, the runner, the
        strategies, as `ttc ask` does) on the first questions (or `--range`), appending one JSON line per
        run, resumably; `hybrid16+8-off` is the held-out test of 16 texts + 8 programs (vote_rules.py).
orders  Replays the default rule, `auto` and SC@N/2 over shuffled sample orders: the spread of one replay.

    python benchmarks/early_stop.py replay benchmarks/results/gsm8k-qwen0.5b-sc16.jsonl
    python benchmarks/early_stop.py live --model ~/.cache/ttc-bench-models/qwen2.5-coder-0.5b-instruct.gguf \
        --questions 30 --out benchmarks/results/gsm8k-qwen0.5b-live.jsonl
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gsm8k import DATA, append_jsonl, read_jsonl

from ttc_cli.answers.confidence import lowest_group_confidence
from ttc_cli.answers.extract import answers_equal
from ttc_cli.answers.stopping import StopDecision, TraceFilter, VoteStop
from ttc_cli.answers.voting import VoteTally
from ttc_cli.engine.throughput import Curve
from ttc_cli.strategies.auto import PROBE, classify
from ttc_cli.strategies.width import NO_CURVE_WIDTH, choose_width, votes_to_stop


@dataclass(frozen=True)
class Rule:
    name: str
    width: int  # samples decoding at once; 0: ttc's width policy over the --curve (NO_CURVE_WIDTH without)
    vote: VoteStop | None = None
    deepconf: tuple[int, int, float] | None = None  # warmup, window, keep
    offline_keep: float | None = None  # vote among only this most confident fraction (all N run)
    auto: bool = False  # `auto`'s probe-and-route (replayed here for tuning; the live figure is below)
    samples: int | None = None  # run only the first this many of the recorded samples


@dataclass
class Outcome:
    correct: bool
    tokens: int
    samples: int  # samples started
    tally: VoteTally | None = None  # the votes the answer was chosen by
    ended: int = 0  # samples that ended on their own (not cancelled by a stop or the filter)
    seconds: float = 0.0  # wall time by the --curve: a step with k samples decoding takes k / rate(k)
    widths: tuple[int, ...] = ()  # the policy's widths, in order (width 0 only)


def simulate(rec: dict[str, Any], rule: Rule, curve: Curve | None = None) -> Outcome:
    """One question under one rule, step by step as `sample()` runs it (with `curve`, timed by it)."""
    samples = rec["samples"]
    n = len(samples)
    traces = TraceFilter(*rule.deepconf) if rule.deepconf else None
    tally = VoteTally()
    live: dict[int, int] = {}  # sample -> tokens so far, in start order
    spent: dict[int, int] = {}
    finished = natural = 0
    started = 0
    stopped: StopDecision | None = None
    n = min(n, rule.samples or n)
    limit = PROBE if rule.auto else n
    routed = False

    def check() -> StopDecision | None:
        nonlocal limit, routed
        if rule.auto and not routed:
            if finished < PROBE:
                return None
            route = classify(tally, PROBE, n)
            routed, limit = True, route.samples
            return StopDecision("auto", route.reason) if route.difficulty == "easy" else None
        if rule.vote is None:
            return None
        return rule.vote.check([v.weight for v in tally.snapshot()], finished, limit)

    width, widths, seen, seconds = rule.width or NO_CURVE_WIDTH, [], -1, 0.0

    def choose() -> None:
        """The sampler's `choose_width`, over the same objects."""
        nonlocal width, seen
        left = limit - finished
        if rule.width or curve is None or rule.vote is None or finished == seen or left <= 0:
            return
        seen = finished
        counts = [v.weight for v in tally.snapshot()]
        to_stop = votes_to_stop(rule.vote, counts, finished, limit)
        chosen = choose_width(curve, left, to_stop, max(counts, default=0.0), finished).width
        chosen = n if chosen >= left else chosen
        if min(chosen, left) != min(width, left) or not widths:
            width = chosen
            widths.append(chosen)

    def start_more() -> None:
        nonlocal started
        choose()
        while started < limit and len(live) < width and stopped is None:
            live[started] = 0
            if traces is not None:
                traces.start(started)
            started += 1

    start_more()
    while live:
        if curve is not None:
            seconds += len(live) / curve.rate(len(live))
        ended: list[tuple[int, bool]] = []  # (sample, cancelled)
        for i in list(live):
            live[i] += 1
            s = samples[i]
            if live[i] >= s["tokens"]:
                ended.append((i, False))
            elif traces is not None and traces.observe(i, s["conf"][live[i] - 1]) is not None:
                ended.append((i, True))
        ended.sort(key=lambda e: e[1])  # natural finishes first, then cancellations, as `sample()` does
        for i, cancelled in ended:
            spent[i] = live.pop(i)
            finished += 1
            natural += not cancelled
            if traces is not None:
                traces.finish(i, counted=not cancelled and samples[i]["finish"] in ("stop", "length"))
            if not cancelled and samples[i]["finish"] == "stop" and samples[i]["key"] is not None:
                tally.add(samples[i]["key"], samples[i]["answer"])
            if stopped is None:
                stopped = check()
        if stopped is not None:
            for i in list(live):
                spent[i] = live.pop(i)
        start_more()

    if rule.offline_keep is not None:
        tally = offline_filtered(samples, rule.offline_keep)
    return Outcome(is_right(rec, tally), sum(spent.values()), started, tally, natural, seconds, tuple(widths))


def offline_filtered(samples: list[dict[str, Any]], keep: float, window: int = 16) -> VoteTally:
    voters = [s for s in samples if s["finish"] == "stop" and s["key"] is not None]
    voters.sort(key=lambda s: lowest_group_confidence(s["conf"], window), reverse=True)
    tally = VoteTally()
    for s in voters[: max(1, round(len(voters) * keep))]:
        tally.add(s["key"], s["answer"])
    return tally


def is_right(rec: dict[str, Any], tally: VoteTally) -> bool:
    lead = tally.leader()
    return lead is not None and answers_equal(lead.answer, rec["gold"])


# The shipped defaults (`EarlyStopping`, profiles/default.yaml), as replay and orders both report them.
DEFAULTS = Rule("deepconf online (warmup 4, keep 0.3) + beta 0.70", 0, VoteStop("beta", 0.70), (4, 16, 0.3))


def rules(n: int) -> list[Rule]:
    beta95 = VoteStop("beta", 0.95)
    beta70 = DEFAULTS.vote
    return [
        Rule(f"SC@{n}, no early stop (all {n} at once)", n),
        Rule("decided (winner cannot change)", 1, VoteStop("decided", 1.0)),
        Rule("decided (winner cannot change)", 4, VoteStop("decided", 1.0)),
        Rule("decided (winner cannot change)", n, VoteStop("decided", 1.0)),
        Rule("beta 0.95", 1, beta95),
        Rule("beta 0.95 (the default until 2026-11-27)", 4, beta95),
        Rule("beta 0.95", 8, beta95),
        Rule("beta 0.95", n, beta95),
        Rule("beta 0.90", 4, VoteStop("beta", 0.90)),
        Rule("beta 0.80", 4, VoteStop("beta", 0.80)),
        Rule("deepconf online (warmup 4, keep 0.9) + beta 0.95", 4, beta95, (4, 16, 0.9)),
        Rule("deepconf online (warmup 4, keep 0.5) + beta 0.95", 4, beta95, (4, 16, 0.5)),
        Rule("deepconf online (warmup 8, keep 0.1) + beta 0.95", 8, beta95, (8, 16, 0.1)),
        Rule("deepconf online (warmup 4, keep 0.5) + beta 0.80", 4, VoteStop("beta", 0.80), (4, 16, 0.5)),
        Rule("deepconf offline: vote among the top 50% (all run)", n, None, None, 0.5),
        Rule("SC@8, no early stop (the first 8 at once)", 8, samples=8),
        Rule("beta 0.70 *", 2, beta70),
        Rule("beta 0.70, measured width", 0, beta70),
        replace(DEFAULTS, name=f"{DEFAULTS.name} * (the default until 2026-12-01)", width=2),
        replace(DEFAULTS, name=f"{DEFAULTS.name}, measured width (default)"),
        Rule("deepconf online (warmup 2, keep 0.5) + beta 0.70 *", 2, beta70, (2, 16, 0.5)),
        replace(DEFAULTS, name="auto (replayed), width 2 *", auto=True, width=2),
        replace(DEFAULTS, name="auto (replayed), default settings", auto=True),
        Rule("auto (replayed), beta 0.95", 4, beta95, auto=True),
    ]


def read_lines(path: Path) -> list[dict[str, Any]]:
    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def question_span(text: str) -> tuple[int, int | None]:
    """'48-100' or '48-' as 1-based inclusive bounds."""
    first, dash, last = text.partition("-")
    try:
        lo, hi = int(first), int(last) if last else None
    except ValueError:
        lo = hi = 0
    if not dash or lo < 1 or (hi is not None and hi < lo):
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST questions such as 48-100, got {text!r}")
    return lo, hi


def curve_spec(text: str) -> Curve:
    try:
        return Curve.from_json(dict(part.split(":") for part in text.split(",")))  # type: ignore[arg-type]
    except ValueError:
        msg = f"expected WIDTH:TOKENS_PER_S,... such as 1:15,16:31, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def load_recorded(path: Path, span: tuple[int, int | None] | None) -> list[dict[str, Any]]:
    recs = read_lines(path)
    if span:  # only those questions, to check rules tuned on others
        recs = recs[span[0] - 1 : span[1]]
        print(f"questions {span[0]}-{span[1] or ''} of {path.name}")
    if not recs:
        print(f"error: no questions of {path} in that range", file=sys.stderr)
        sys.exit(2)
    return recs


def replay(path: Path, span: tuple[int, int | None] | None = None, curve: Curve | None = None) -> None:
    recs = load_recorded(path, span)
    n = len(recs[0]["samples"])
    base = [simulate(r, Rule("base", n), curve) for r in recs]
    base_tokens, base_s = sum(o.tokens for o in base), sum(o.seconds for o in base)
    greedy_like = sum(r["samples"][0]["correct"] for r in recs) / len(recs)
    print(f"{len(recs)} questions · {n} samples each · one sample alone is right {greedy_like:.3f}")
    print("* tuned on questions 1-47 of the committed recording: only figures over 48-100 test them")
    if curve is not None:
        print(f"time by the throughput curve {curve.to_json()} tokens/s; width 0: the measured policy")
    timed = f" {'time vs SC':>10}" if curve is not None else ""
    print(f"{'rule':<62} {'width':>5} {'accuracy':>8} {'tokens/q':>8} {'vs SC':>6} {'samples/q':>9}{timed}")
    for rule in rules(n):
        out = [simulate(r, rule, curve) for r in recs]
        acc = sum(o.correct for o in out) / len(out)
        tokens = sum(o.tokens for o in out)
        time_share = f" {sum(o.seconds for o in out) / base_s:>10.1%}" if curve is not None else ""
        print(
            f"{rule.name:<62} {rule.width:>5} {acc:>8.3f} {tokens / len(out):>8.0f} "
            f"{tokens / base_tokens:>6.1%} {sum(o.samples for o in out) / len(out):>9.1f}{time_share}"
        )


def reorder(path: Path, orders: int, span: tuple[int, int | None] | None = None) -> None:
    """A replay is one draw of sample order, and a rule's figures move with it: replay the rules that count
    over `orders` seeded shuffles of each question's samples (the first is the recorded order)."""
    recs = load_recorded(path, span)
    n = len(recs[0]["samples"])
    chosen = [
        Rule(f"SC@{n}, no early stop", n),
        replace(DEFAULTS, name=f"default: {DEFAULTS.name}"),
        replace(DEFAULTS, name="auto (replayed), default settings", auto=True),
        Rule(f"SC@{n // 2}, no early stop", n // 2, samples=n // 2),
    ]
    figures: dict[str, list[tuple[float, int]]] = {rule.name: [] for rule in chosen}
    for k in range(orders):
        rng = random.Random(k)
        shuffled = [dict(r, samples=rng.sample(r["samples"], n) if k else r["samples"]) for r in recs]
        for rule in chosen:
            out = [simulate(r, rule) for r in shuffled]
            figures[rule.name].append((sum(o.correct for o in out) / len(out), sum(o.tokens for o in out)))
    print(f"{len(recs)} questions · {orders} orders of their {n} samples (the first is the recorded one)")
    print(f"{'rule':<62} {'accuracy: mean':>14} {'min-max':>11} {'vs SC: mean':>11} {'max':>6}")
    base = figures[chosen[0].name]
    for rule in chosen:
        accs = [a for a, _ in figures[rule.name]]
        shares = [t / b for (_, t), (_, b) in zip(figures[rule.name], base, strict=True)]
        print(
            f"{rule.name:<62} {sum(accs) / orders:>14.3f} {min(accs):>5.3f}-{max(accs):.3f} "
            f"{sum(shares) / orders:>11.1%} {max(shares):>6.1%}"
        )


# ---- live ------------------------------------------------------------------------------------------
LIVE_RUNS: dict[str, dict[str, Any]] = {
    # answer probes arrived on 2026-12-04; the runs before them keep their meaning with probe=False
    "auto": {"strategy": "auto", "probe": False},
    "sc16-deepconf": {"strategy": "self-consistency", "stop_rule": "deepconf", "probe": False},
    "sc16-beta": {"strategy": "self-consistency", "probe": False},
    "sc16-off": {"strategy": "self-consistency", "early_stop": False},
    "sc16-w2": {"strategy": "self-consistency", "width": 2, "probe": False},  # the width before 2026-12-01
    # answer probes with the profile's probe settings, as benchmarks/probes.py replay chose them (beta 0.8)
    "sc16-probe": {"strategy": "self-consistency", "probe": True, "stop_rule": "beta", "confidence": 0.8},
    "auto-probe": {"strategy": "auto", "probe": True},
    # 16 chain-of-thought samples and 8 programs in one pool, every one run to its end; its 16 texts
    # alone are an SC@16 of their own, so one run answers both sides of the comparison, paired
    "hybrid16+8-off": {
        "strategy": "self-consistency",
        "early_stop": False,
        "task": "hybrid",
        "samples": 24,
        "profile": "hybrid-16-8",
    },
}
# A profile in a scratch app dir: 8 of 24 samples write a program (is_program spreads them evenly).
PROFILES = {"hybrid-16-8": "execution:\n  hybrid_share: 0.34\n"}


def vote_order(events: list[Any]) -> list[dict[str, Any]]:
    """Each sample as it cast its vote (or could not): a text when it ended, a program when it ran."""
    from ttc_cli.events import CandidateExecuted, CandidateFinished

    out = []
    for e in events:
        c = getattr(e, "candidate", None)
        if isinstance(e, CandidateExecuted) or (isinstance(e, CandidateFinished) and c.kind == "text"):
            status = c.execution.status if c.execution is not None else None
            out.append(
                {
                    "i": c.index,
                    "kind": c.kind,
                    "tokens": c.tokens,
                    "finish": c.finish_reason,
                    "votes": c.votes,
                    "key": c.answer_key,
                    "answer": c.answer,
                    "mean_logprob": round(c.mean_logprob, 4),
                    "exec": status,
                }
            )
    return out


def live(args: argparse.Namespace) -> None:
    from ttc_cli.engine.host import cpu_signature
    from ttc_cli.engine.llama import LlamaEngine
    from ttc_cli.models.files import resolve_model_path
    from ttc_cli.options import PlanOptions
    from ttc_cli.plan import build
    from ttc_cli.runner import execute, prepare

    lo, hi = args.span or (1, args.questions)
    rows = read_jsonl(args.data)[lo - 1 : hi]
    if any(LIVE_RUNS[name].get("profile") for name in args.runs):
        scratch = Path(tempfile.mkdtemp(prefix="ttc-bench-"))
        (scratch / "profiles").mkdir()
        for name, text in PROFILES.items():
            (scratch / "profiles" / f"{name}.yaml").write_text(text)
        os.environ["TTC_USER_PATH"] = str(scratch)
    done = set()
    if args.out.exists():
        done = {(r["run"], r["id"]) for r in read_jsonl(args.out)}
    engine = LlamaEngine(resolve_model_path(args.model), n_ctx=256, n_seq_max=2, threads=args.threads)
    for qi, row in enumerate(rows, start=lo - 1):
        for name in args.runs:
            if (name, row["id"]) in done:
                continue
            run = {"samples": args.n, "task": "math"} | LIVE_RUNS[name]
            strategy = run.pop("strategy")
            opts = PlanOptions(
                budget=str(run["samples"] * args.max_tokens),
                max_tokens=args.max_tokens,
                temperature=0.7,
                seed=args.seed + 100 * qi,
                **run,
            )
            p = build(row["question"], strategy, opts)
            ctx = prepare(p, engine)
            events: list[Any] = []
            start = time.perf_counter()
            data = execute(p, ctx, events.append).to_json()
            line = {
                "run": name,
                "id": row["id"],
                "correct": answers_equal(data["answer"], row["answer"]),
                "tokens": data["budget"]["spent"],
                "seconds": round(time.perf_counter() - start, 2),
                "samples_run": len(data["candidates"]),
                "cancelled": sum(c["finish_reason"] == "cancelled" for c in data["candidates"]),
                "early_stop": data["early_stop"],
                "route": data["route"],
                "widths": [w["width"] for w in (data["width"] or {}).get("chosen", [])],
                "probes": {k: v for k, v in (data.get("probes") or {}).items() if k != "readings"} or None,
                "host": cpu_signature(),
                "gold": row["answer"],
                "samples": vote_order(events),
            }
            append_jsonl(args.out, line)
            tally = f"{line['correct']} {line['tokens']} tok {line['seconds']}s"
            print(f"[{qi + 1}/{lo - 1 + len(rows)}] {name}: {tally}")
    summarize_live(args.out)


def summarize_live(path: Path, recorded: Path | None = None) -> None:
    """One row per run, over the questions it has run; with `recorded`, SC@16 on those same questions."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for line in read_jsonl(path):
        by_run.setdefault(line["run"], []).append(line)
    recs = read_lines(recorded) if recorded else []
    sc = {r["id"]: simulate(r, Rule("SC", len(r["samples"]))) for r in recs}
    head = f"{'run':<16} {'q':>3} {'accuracy':>8} {'SC@16':>6} {'tokens/q':>8} {'vs SC':>6} {'s/q':>6}"
    print(f"{head} {'samples/q':>9} {'routes':>20} {'live SC@16 on them: tokens, time':>34}")
    off = {r["id"]: r for r in by_run.get("sc16-off", [])}  # SC@16 run live in the same process
    for name, runs in by_run.items():
        routes: dict[str, int] = {}
        for r in runs:
            if r["route"]:
                routes[r["route"]["difficulty"]] = routes.get(r["route"]["difficulty"], 0) + 1
        k = len(runs)
        acc, tokens = sum(r["correct"] for r in runs) / k, sum(r["tokens"] for r in runs) / k
        base = [sc[r["id"]] for r in runs if r["id"] in sc]
        sc_acc = ratio = "-"
        if len(base) == k:  # every question of the run was recorded
            sc_acc, ratio = (
                f"{sum(o.correct for o in base) / k:.3f}",
                f"{tokens * k / sum(o.tokens for o in base):.1%}",
            )
        print(
            f"{name:<16} {k:>3} {acc:>8.3f} {sc_acc:>6} {tokens:>8.0f} {ratio:>6} "
            f"{sum(r['seconds'] for r in runs) / k:>6.1f} {sum(r['samples_run'] for r in runs) / k:>9.1f} "
            f"{' '.join(f'{a}:{b}' for a, b in sorted(routes.items())):>20} {live_share(runs, off):>34}"
        )


def live_share(runs: list[dict[str, Any]], off: dict[str, dict[str, Any]]) -> str:
    """Tokens and seconds of `runs` as shares of SC@16's, run live, on the questions both ran."""
    both = [r for r in runs if r["id"] in off]
    if not both:
        return "-"
    tokens = sum(r["tokens"] for r in both) / sum(off[r["id"]]["tokens"] for r in both)
    seconds = sum(r["seconds"] for r in both) / sum(off[r["id"]]["seconds"] for r in both)
    acc = sum(off[r["id"]]["correct"] for r in both) / len(both)
    return f"{tokens:.1%}, {seconds:.1%} (acc {acc:.2f}, {len(both)} q)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("replay")
    rp.add_argument("recorded", type=Path)
    ro = sub.add_parser("orders", help="the key rules over shuffled sample orders")
    ro.add_argument("recorded", type=Path)
    ro.add_argument("--orders", type=at_least_one, default=20)
    for parser in (rp, ro):
        parser.add_argument(
            "--range",
            dest="span",
            type=question_span,
            metavar="FIRST-LAST",
            help="only questions FIRST-LAST (1-based), e.g. 48-100",
        )
    rp.add_argument(
        "--curve",
        type=curve_spec,
        help="time the replay by a throughput curve, '1:15,2:20,4:27,8:26,16:31' (tokens/s per width), "
        "as `ttc doctor` prints it; adds a time column and the measured width policy",
    )
    lv = sub.add_parser("live")
    lv.add_argument("--model", "-m", default=None)
    lv.add_argument("--data", type=Path, default=DATA)
    lv.add_argument("--questions", type=int, default=30)
    lv.add_argument(
        "--range", dest="span", type=question_span, metavar="FIRST-LAST", help="questions FIRST-LAST instead"
    )
    lv.add_argument("-n", type=int, default=16)
    lv.add_argument("--max-tokens", type=int, default=400)
    lv.add_argument("--seed", type=int, default=1000)
    lv.add_argument("--runs", nargs="+", default=["auto", "sc16-deepconf"], choices=list(LIVE_RUNS))
    lv.add_argument("--threads", type=int, default=None)
    lv.add_argument("--out", type=Path, required=True)
    sm = sub.add_parser("summary")
    sm.add_argument("live_results", type=Path)
    sm.add_argument("--recorded", type=Path, help="record_samples.py's file: SC@16 on the same q")
    args = ap.parse_args()
    if args.cmd == "replay":
        replay(args.recorded, args.span, args.curve)
    elif args.cmd == "orders":
        reorder(args.recorded, args.orders, args.span)
    elif args.cmd == "live":
        live(args)
    else:
        summarize_live(args.live_results, args.recorded)


if __name__ == "__main__":
    main()
