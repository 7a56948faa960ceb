"""Many runs in one process, as `compare` and `bench` make them: nothing may accumulate between runs."""

from __future__ import annotations

import itertools
from pathlib import Path

from conftest import write_prompt

from ttc_cli.engine.llama import LlamaEngine
from ttc_cli.models.files import default_model_path
from ttc_cli.options import PlanOptions
from ttc_cli.plan import build
from ttc_cli.runner import execute, prepare
from ttc_cli.strategies import STRATEGIES


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def test_200_runs_leave_no_sequence_cell_or_memory_behind(user_path):
    """An engine of its own (not the session's `engine` fixture), so the second CI pass, which reruns the
    model tests with other kernels, does not repeat this one: leaks do not depend on kernels."""
    import llama_cpp

    engine = LlamaEngine(default_model_path(), n_ctx=2048, n_seq_max=64)
    strategies = itertools.cycle(STRATEGIES)  # every strategy, the judged searches included
    bare = write_prompt(user_path, "bare", "", system="", template="{question}")  # short prompts: fast runs
    opts = {"budget": "24", "samples": 3, "max_tokens": 8, "beams": 2, "expansions": 2, "step_tokens": 4}
    rss = {}
    try:
        for i in range(200):
            p = build("What is 3 + 4?", next(strategies), PlanOptions(seed=i, task=bare, **opts))
            execute(p, prepare(p, engine))
            # Every sequence (samples, tree nodes, the judge's prompt heads and per-node states) released,
            # and with them their KV cells.
            assert len(engine._free_slots) == engine.n_seq_max, (i, p.strategy.name)
            slots = range(engine.n_seq_max)
            held = [s for s in slots if llama_cpp.llama_memory_seq_pos_max(engine._mem, s) >= 0]
            assert not held, (i, p.strategy.name, held)
            if i + 1 in (20, 200):
                rss[i + 1] = rss_kib()
    finally:
        engine.close()
    assert rss[200] <= 1.05 * rss[20], rss
