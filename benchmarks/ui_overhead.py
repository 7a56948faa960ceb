"""What the live view costs: the same seeded run with and without it, alternated, in one process.

The live view renders into an in-memory terminal (a Rich console with `force_terminal=True` writing to a
StringIO), so it does all the work of drawing a real terminal without depending on one being attached.

    python benchmarks/ui_overhead.py                 # self-consistency, N=16, 2,048-token budget
    python benchmarks/ui_overhead.py --strategy best-of-n -n 8 --budget 1000 --repeats 5
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

from rich.console import Console

from ttc_cli.engine.llama import LlamaEngine
from ttc_cli.models.files import resolve_model_path
from ttc_cli.options import PlanOptions
from ttc_cli.plan import build
from ttc_cli.runner import execute, prepare
from ttc_cli.ui.live import LiveView
from ttc_cli.ui.state import RunState

QUESTION = "A farmer has 17 sheep, buys 8 more and sells 5. How many sheep does he have now?"


def timed_run(engine: LlamaEngine, args: argparse.Namespace, live: bool) -> tuple[float, int]:
    opts = PlanOptions(budget=str(args.budget), samples=args.n, seed=args.seed, max_tokens=256)
    p = build(QUESTION, args.strategy, opts)
    ctx = prepare(p, engine)
    start = time.perf_counter()
    if live:
        console = Console(file=io.StringIO(), force_terminal=True, width=120)
        state = RunState(p.strategy.name, engine.model_name, engine.device, p.budget_limit, p.budget_preset)
        with LiveView(console, state) as view:
            result = execute(p, ctx, view)
    else:
        result = execute(p, ctx)
    return time.perf_counter() - start, result.budget.spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", "-m", default=None)
    ap.add_argument("--strategy", default="self-consistency")
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("--budget", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    engine = LlamaEngine(resolve_model_path(args.model))
    timed_run(engine, args, live=False)  # warm-up
    plain, live = [], []
    for _ in range(args.repeats):
        t, spent_plain = timed_run(engine, args, live=False)
        plain.append(t)
        t, spent_live = timed_run(engine, args, live=True)
        live.append(t)
        assert spent_plain == spent_live, "the seeded runs must do identical work"
    p, lv = statistics.median(plain), statistics.median(live)
    print(f"{args.strategy} · N={args.n} · budget {args.budget} · {spent_plain} tokens per run", end="")
    print(f" · {args.repeats} pairs")
    print(f"without live view: {p:.2f}s   with live view: {lv:.2f}s   overhead: {100 * (lv / p - 1):+.1f}%")


if __name__ == "__main__":
    main()
