"""lookahead: beam search where a step's score is that of a short greedy rollout from it.

Each candidate step is continued greedily for k more steps (`--lookahead k`, batched, forked from the
step's cache and released afterwards), and the verifier scores the rollout's last step in the context of
the whole path. A step that leads somewhere sensible scores well even when it looks unremarkable itself.
Rollout tokens are spent from the budget but are not tree nodes; `usage.rollout_tokens` counts them.
"""

from __future__ import annotations

from collections.abc import Iterator

from ttc_cli.events import Event
from ttc_cli.strategies.beam import needs, search
from ttc_cli.strategies.context import RunContext

DESCRIPTION = "beam search scoring each step by a k-step greedy rollout (--lookahead k)"
__all__ = ["DESCRIPTION", "needs", "run"]  # beam's sizing counts its rollouts


def run(ctx: RunContext) -> Iterator[Event]:
    yield from search(ctx, lookahead=max(1, ctx.search.lookahead))
