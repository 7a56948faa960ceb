"""Regenerate README's screenshots, docs/ask.svg and docs/compare.svg, from real runs of the installed CLI.

Each picture is one real `ttc ask` / `ttc compare` run, started as a user starts it (the `ttc` command,
`--json`, a run log of its own in a scratch `TTC_USER_PATH`). The live view on a terminal is a Rich `Live`
region redrawn in place, which a file cannot hold; so, as `ttc replay` does, this script feeds the run's
logged events through the same view (`ttc_cli.ui`: RunState, run_view, compare_panels) and records the
final frame, the closing summary line and (compare) the table with Rich's `Console(record=True)`, then
`save_svg`. What the SVG shows is what the terminal showed when the run ended, at the width given here.

    python scripts/screenshots.py                 # both pictures, with the bench model (below)
    python scripts/screenshots.py --only ask      # one of them
    python scripts/screenshots.py --model PATH    # another model (the questions are the defaults' own)

The default model is Qwen2.5-Coder-0.5B-Instruct (`~/.cache/ttc-bench-models/`, as docs/benchmarks.md
uses it): the questions are GSM8K training questions it gets right by voting (in the recorded SC@16 run
of docs/benchmarks.md, 6 and 8 of the first 8 samples were right; on the second its recorded greedy answer
was wrong, 63). The two runs take about a minute together on 2 idle CPU cores; the pictures show seconds
and tokens/s, so run it on an idle host. Sampling is seeded, but llama.cpp's kernels differ
by CPU, so another host may draw other samples: look at the pictures before committing them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

DOCS = Path(__file__).resolve().parent.parent / "docs"
MODEL = "~/.cache/ttc-bench-models/qwen2.5-coder-0.5b-instruct.gguf"
ASK_Q = (
    "Penny has $20. Penny buys 4 pairs of socks for $2 a pair and a hat for $7. "
    "How much money does Penny have left?"
)
COMPARE_Q = (
    "Gracie was 7 inches shorter than Grayson. Grayson was 2 inches taller than Griffin. "
    "Griffin is 61 inches tall. How many inches tall is Gracie?"
)


def ttc(args: list[str], env: dict[str, str]) -> Any:
    """Run the installed `ttc` as a pipeline would (stdout a pipe, so --json and no live view); its JSON."""
    print("$ ttc " + shlex.join(args), file=sys.stderr)
    out = subprocess.run(["ttc", *args], env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def replayed(run_id: int) -> Any:
    """The view state of logged run `run_id` after its last event, as `ttc replay` rebuilds it."""
    from ttc_cli import runlog
    from ttc_cli.cli_runs import replay_state

    run = runlog.get(run_id)
    assert run is not None, run_id
    state = replay_state(run.data)
    clock = [0.0]
    state.clock = lambda: clock[0]
    for offset, event in runlog.events_of(run_id):
        clock[0] = offset
        state.update(event)
    return state


def recorder(width: int) -> Console:
    return Console(
        record=True, file=io.StringIO(), width=width, force_terminal=True, color_system="truecolor"
    )


def prompt(shown: list[str]) -> Text:
    words = [w if w.startswith("~/") and shlex.quote(w[1:]) == w[1:] else shlex.quote(w) for w in shown]
    return Text.assemble(("$ ", "bold green"), "ttc " + " ".join(words))


def shown_model(model: str) -> str:
    home = str(Path.home())
    return "~" + model[len(home) :] if model.startswith(home) else model


def ask(model: str, env: dict[str, str]) -> None:
    from ttc_cli import runlog
    from ttc_cli.ui.summary import summary
    from ttc_cli.ui.widgets import run_view

    args = ["ask", ASK_Q, "-m", model, "-s", "self-consistency", "-n", "8", "--seed", "1"]
    data = ttc([*args, "--json"], env)
    state = replayed(runlog.recent(1)[0].id)
    console = recorder(110)
    shown = ["ask", ASK_Q, "-m", shown_model(model), "-s", "self-consistency", "-n", "8", "--seed", "1"]
    console.print(prompt(shown))
    # As a terminal shows it: the live view's last frame (stderr), the answer alone (stdout), the summary.
    console.print(run_view(state))
    console.print(Text(str(data["answer"])))
    console.print(summary(data))
    print(console.export_text(clear=False), file=sys.stderr)  # what the picture shows, to look at
    console.save_svg(str(DOCS / "ask.svg"), title="ttc ask")
    note = f"ask: {data['answer']!r} · {data['selection']} · confidence {data.get('confidence')}"
    print(note, file=sys.stderr)


def compare(model: str, env: dict[str, str]) -> None:
    from ttc_cli import runlog
    from ttc_cli.ui.compare_table import compare_table
    from ttc_cli.ui.widgets import compare_panels

    strategies = ["greedy", "best-of-n", "self-consistency"]
    picked = [x for s in strategies for x in ("-s", s)]
    args = ["compare", COMPARE_Q, "-m", model, *picked, "-n", "8", "--seed", "1"]
    data = ttc([*args, "--json"], env)
    runs = runlog.recent(len(strategies))[::-1]  # compare logs each of its runs, in order
    states = [replayed(r.id) for r in runs]
    console = recorder(150)
    shown = ["compare", COMPARE_Q, "-m", shown_model(model), *args[4:]]
    console.print(prompt(shown))
    console.print(compare_panels(states))  # stderr: the panels as the runs ended
    console.print(compare_table(data))  # stdout: the table
    print(console.export_text(clear=False), file=sys.stderr)
    console.save_svg(str(DOCS / "compare.svg"), title="ttc compare")
    for d in data:
        print(f"compare: {d['strategy']}: {d['answer']!r} · {d['selection']}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, help="GGUF file or a name -m takes (default: %(default)s)")
    parser.add_argument("--only", choices=["ask", "compare"], help="regenerate one picture only")
    args = parser.parse_args()
    model = os.path.expanduser(args.model)
    scratch = tempfile.mkdtemp(prefix="ttc-screenshots-")
    # A run log (and config) of its own, so the runs are the only ones in it and no user default applies.
    os.environ["TTC_USER_PATH"] = scratch
    env = {**os.environ, "TTC_LOG": "1"}
    DOCS.mkdir(exist_ok=True)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores / 2:  # the pictures show seconds and tokens/s: a busy host makes them misleading
        warning = f"warning: load average {load:.1f} on {cores} cores; the timings shown will be slow"
        print(warning, file=sys.stderr)
    if args.only in (None, "ask"):
        ask(model, env)
    if args.only in (None, "compare"):
        compare(model, env)
    print(f"wrote {DOCS}/{'*' if args.only is None else args.only}.svg (run log: {scratch})", file=sys.stderr)


if __name__ == "__main__":
    main()
