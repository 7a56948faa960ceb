"""What every strategy receives: the question, the engine, the budget and the knobs, in one object."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ttc_cli.budget import TokenBudget
from ttc_cli.engine.base import Engine, SamplingParams


@dataclass
class RunContext:
    question: str
    engine: Engine
    budget: TokenBudget
    prompt_tokens: list[int]
    samples: int
    sampling: SamplingParams  # temperature, seed (candidate i uses seed + i), max_tokens, stop
    choices: tuple[str, ...] = ()  # multiple-choice letters found in the question
    vote: str = "majority"  # or "weighted"
    scorer: str = "mean-logprob"
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def interrupted(self) -> bool:
        return self.stop.is_set()
