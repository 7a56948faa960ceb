"""The strategy registry: every `--strategy` choice, `ttc strategies` and the tests read it.

A strategy is a module with `DESCRIPTION`, `needs(ctx) -> KvNeeds` (the most KV cells and sequences it
holds at once, so the context is sized once before decoding) and `run(ctx) -> Iterator[Event]`; it never
prints and never imports rich or llama_cpp. Add one by writing the module and listing it here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType

from ttc_cli.engine.sequence import KvNeeds
from ttc_cli.errors import UsageError
from ttc_cli.events import Event
from ttc_cli.strategies import (
    auto,
    beam,
    best_of_n,
    greedy,
    lookahead,
    mcts,
    refine,
    sampling,
    self_consistency,
)
from ttc_cli.strategies.context import RunContext


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    run: Callable[[RunContext], Iterator[Event]]
    needs: Callable[[RunContext], KvNeeds]
    takes_samples: bool  # whether -n/--samples means anything to it
    is_search: bool = False  # a tree search: spends on steps and judgements, reports its tree


def _entry(name: str, module: ModuleType, samples: bool, search: bool = False) -> Strategy:
    # The sampling strategies all hold what `sampling.sample` holds; the searches size themselves.
    needs = module.needs if search else sampling.needs
    return Strategy(name, module.DESCRIPTION, module.run, needs, samples, search)


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        _entry("greedy", greedy, samples=False),
        _entry("best-of-n", best_of_n, samples=True),
        _entry("self-consistency", self_consistency, samples=True),
        _entry("auto", auto, samples=True),
        _entry("beam", beam, samples=False, search=True),
        _entry("lookahead", lookahead, samples=False, search=True),
        _entry("mcts", mcts, samples=False, search=True),
        _entry("refine", refine, samples=False, search=True),
    )
}


def sampling_names(*extra: str) -> str:
    """The sampling strategies (and `extra` others), as a hint lists them: "greedy, best-of-n, ... or x"."""
    names = [s.name for s in STRATEGIES.values() if not s.is_search] + list(extra)
    return f"{', '.join(names[:-1])} or {names[-1]}"


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UsageError(f"unknown strategy '{name}'", f"choose one of: {', '.join(STRATEGIES)}") from None
