"""Check that a refactoring changed no behaviour: seeded `ttc ask --json` runs, recorded before and after.

    python scripts/same_behaviour.py record before.jsonl     # on the old commit
    python scripts/same_behaviour.py record after.jsonl      # on the new one (same host: kernels differ)
    python scripts/same_behaviour.py diff before.jsonl after.jsonl

Every strategy runs at two budgets, plus the options that take other code paths (judge-scored best-of-n,
weighted and filtered votes, budget forcing, no early stop), each as a real `ttc ask` process with a fixed
seed. Timings are dropped; everything else in the JSON must be identical. The exit status of `diff` is the
number of runs that differ (0: the same behaviour).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"
BUDGETS = ("low", "300")
STRATEGIES = ("greedy", "best-of-n", "self-consistency", "auto", "beam", "lookahead", "mcts", "refine")
EXTRAS = (
    ("best-of-n", "-b", "300", "--verifier", "judge"),
    ("self-consistency", "-b", "low", "--vote", "weighted"),
    ("self-consistency", "-b", "low", "--vote", "filtered"),
    ("self-consistency", "-b", "low", "--no-early-stop", "--stop-rule", "beta"),
    ("greedy", "-b", "200", "--think-budget", "20", "--min-think", "5"),
    ("mcts", "-b", "300", "--rollouts", "2", "--pick", "vote"),
)


def runs() -> list[tuple[str, ...]]:
    plain = [(s, "-b", b) for s in STRATEGIES for b in BUDGETS]
    return plain + list(EXTRAS)


def record(out: Path) -> None:
    with out.open("w") as f:
        for args in runs():
            argv = [sys.executable, "-m", "ttc_cli", "ask", QUESTION, "-s", *args, "--seed", "5", "--json"]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
            data = json.loads(done.stdout) if done.returncode in (0, 130) else {"error": done.stderr}
            data.pop("timing", None)
            f.write(json.dumps({"args": list(args), "exit": done.returncode, "result": data}) + "\n")
            print(" ".join(args), "->", done.returncode, file=sys.stderr)


def diff(before: Path, after: Path) -> int:
    old = [json.loads(line) for line in before.read_text().splitlines()]
    new = [json.loads(line) for line in after.read_text().splitlines()]
    changed = 0
    for a, b in zip(old, new, strict=True):
        if a != b:
            changed += 1
            keys = sorted(
                k for k in set(a["result"]) | set(b["result"]) if a["result"].get(k) != b["result"].get(k)
            )
            print(f"DIFFERS: {' '.join(a['args'])}: {', '.join(keys) or 'exit status'}")
    print(f"{len(old) - changed} of {len(old)} runs identical (timings aside)")
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("record").add_argument("out", type=Path)
    d = sub.add_parser("diff")
    d.add_argument("before", type=Path)
    d.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        record(args.out)
    else:
        sys.exit(min(diff(args.before, args.after), 125))


if __name__ == "__main__":
    main()
