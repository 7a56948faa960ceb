"""The knobs of the tree searches, declared once: `plan.search_params` resolves them from the profile and
options, `profile.py` checks the profile's `search:` section against `WORDS` and `PER_PRESET`, and each
knob is an option of the same name (`options.PlanOptions`; a test keeps the two in step).

The defaults below equal the built-in profile's `medium` preset (a test keeps them so) for code that builds
a `SearchParams` directly; a run always takes them from the profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

PICKS = ("score", "vote")
MCTS_MAX_OPEN = 32  # open MCTS leaves that keep their KV cache; the least promising beyond it are closed


@dataclass(frozen=True)
class SearchParams:
    verifier: str = "judge"
    aggregate: str = "min"
    pick: str = "score"
    exploration: float = 1.0
    # A preset's numbers (`search.low: {beams: 2, ...}`), each with the least value it may take.
    beams: int = field(default=3, metadata={"least": 1})  # beams kept per step (W)
    expansions: int = field(default=3, metadata={"least": 1})  # next steps sampled per beam (M)
    step_tokens: int = field(default=96, metadata={"least": 1})
    lookahead: int = field(default=1, metadata={"least": 0})
    rollouts: int = field(default=1, metadata={"least": 0})
    refine_rounds: int = field(default=2, metadata={"least": 1})
    delimiter: str = "\n\n"
    verify_samples: bool = False  # best-of-n scores its samples with the verifier (an explicit --verifier)

    @property
    def max_open(self) -> int:
        return MCTS_MAX_OPEN


WORDS = ("verifier", "aggregate", "pick", "exploration")  # the profile's `search:` keys for every preset
PER_PRESET = {f.name: f.metadata["least"] for f in fields(SearchParams) if "least" in f.metadata}
