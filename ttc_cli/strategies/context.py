"""What every strategy receives: the question, the engine, the budget and the knobs, in one object."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ttc_cli.budget import TokenBudget
from ttc_cli.engine.base import Engine, SamplingParams
from ttc_cli.engine.forcing import Thinking
from ttc_cli.strategies.search_params import SearchParams


@dataclass(frozen=True)
class EarlyStopping:
    """How sampling strategies may stop before N (see `verifiers/early_stop.py`)."""

    rule: str = "deepconf"  # beta | decided | deepconf
    confidence: float = 0.70  # posterior probability the leader must reach (beta, deepconf)
    width: int = 2  # samples decoding at once: fewer in flight means less spent when the vote settles
    warmup: int = 4  # deepconf: completed traces that set the confidence threshold
    window: int = 16  # deepconf: tokens per sliding confidence group
    keep: float = 0.3  # deepconf: later traces must stay above the (1 - keep) quantile of the warm-up's


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
    early: EarlyStopping | None = None  # None: every sample runs (--no-early-stop)
    thinking: Thinking | None = None  # budget forcing (--think-budget, --min-think)
    search: SearchParams = field(default_factory=SearchParams)  # tree searches' knobs
    verifier_engine: Engine | None = None  # --verifier-model's engine; None: the policy judges itself
    messages: tuple[dict[str, str], ...] = ()  # the chat the prompt was rendered from (refine continues it)

    @property
    def interrupted(self) -> bool:
        return self.stop.is_set()
