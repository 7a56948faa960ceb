"""The knobs of the tree searches, as `plan.search_params` resolves them from the profile and options.

The defaults below equal the built-in profile's `medium` preset (a test keeps them so) for code that builds
a `SearchParams` directly; a run always takes them from the profile.
"""

from __future__ import annotations

from dataclasses import dataclass

PICKS = ("score", "vote")
MCTS_MAX_OPEN = 32  # open MCTS leaves that keep their KV cache; the least promising beyond it are closed


@dataclass(frozen=True)
class SearchParams:
    verifier: str = "judge"
    aggregate: str = "min"
    pick: str = "score"
    exploration: float = 1.0
    beams: int = 3  # beams kept per step (W)
    expansions: int = 3
    step_tokens: int = 96
    lookahead: int = 1
    rollouts: int = 1
    refine_rounds: int = 2
    delimiter: str = "\n\n"
    verify_samples: bool = False  # best-of-n scores its samples with the verifier (an explicit --verifier)

    @property
    def max_open(self) -> int:
        return MCTS_MAX_OPEN
