"""Answer probes: ask running chains what they would answer now, without disturbing them.

A probe forks each chain at its current end (the fork shares the chain's cached cells: nothing is
re-evaluated), appends a short answer cue ("The answer is"), decodes a few tokens greedily, reads the
text and frees the fork. All chains of one round are probed in one batched decode, so a round costs the
cue and a few tokens per chain. The chain itself is left as it was: its cells, tokens, sampler and
pending tail are untouched, since a fork has its own slot and sampler (Dynasor's "probe-in-the-middle",
Fu et al. 2024, arXiv 2412.20993).

Probe tokens are sampled, so the budget is charged for them like any other; the cue is evaluated, not
sampled, and counts as prompt evaluation. `ProbeCost` keeps both apart so a run can report them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence as Seq
from dataclasses import dataclass

from ttc_cli.budget import TokenBudget
from ttc_cli.engine.base import Engine
from ttc_cli.engine.sequence import SamplingParams, Sequence

# An answer cue asks for one line; ". " ends a stated answer early ("18. So ...") and keeps decimals whole.
PROBE_STOP = ("\n", ". ")


@dataclass
class ProbeCost:
    """What probing has cost a run so far: rounds, chains probed, sampled tokens and cue tokens."""

    rounds: int = 0
    probes: int = 0
    tokens: int = 0  # sampled, so charged to the budget
    cue_tokens: int = 0  # evaluated, not sampled


def probe(
    engine: Engine,
    budget: TokenBudget,
    chains: Seq[Sequence],
    cue: Seq[int],
    max_tokens: int,
    cost: ProbeCost,
    stop: threading.Event | None = None,
) -> list[str]:
    """The text each chain's probe wrote after `cue` (greedy, at most `max_tokens`, up to a newline);
    "" for a chain the budget or Ctrl-C left unprobed."""
    forks: list[Sequence] = []
    try:
        decoder = engine.decoder(budget, stop)
        params = SamplingParams(temperature=0.0, max_tokens=max_tokens, stop=PROBE_STOP, top_logprobs=0)
        for chain in chains:
            fork = engine.fork(chain)
            engine.append(fork, cue)
            decoder.add(fork, params)
            forks.append(fork)
        for _ in decoder:
            pass
        cost.rounds += 1
        cost.probes += len(forks)
        cost.tokens += sum(f.n_generated for f in forks)
        cost.cue_tokens += len(cue) * len(forks)
        return [f.text for f in forks]
    finally:
        for fork in forks:
            engine.release(fork)
