"""What every strategy receives: the question, the engine, the budget and the knobs, in one object.

`runner.prepare` builds it from the plan fitted to the loaded model (the prompt as this model's tokens, the
length cap and KV cache the budget leaves, a server's prefill dropped), plus what exists only at run time
(the engine, the budget, the stop flag, the throughput curve). Strategies never see the `Plan` itself:
plan.py reads the strategy registry, so a strategy reading plan.py would close a circle."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from ttc_cli.answers.probing import Probing
from ttc_cli.answers.stopping import EarlyStopping
from ttc_cli.budget import TokenBudget
from ttc_cli.engine.base import Engine
from ttc_cli.engine.forcing import Thinking
from ttc_cli.engine.sequence import SamplingParams
from ttc_cli.engine.throughput import Curve
from ttc_cli.execution import Limits
from ttc_cli.strategies.code import CodeTesting
from ttc_cli.strategies.search_params import SearchParams
from ttc_cli.verifiers import make_verifier
from ttc_cli.verifiers.base import Verifier, VerifierContext


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
    routes: dict[str, int] = field(default_factory=dict)  # auto: samples per difficulty (the profile's)
    greedy_confidence: tuple[float, float] | None = None  # greedy's fitted calibration (the profile's)
    thinking: Thinking | None = None  # budget forcing (--think-budget, --min-think)
    search: SearchParams = field(default_factory=SearchParams)  # tree searches' knobs
    verifier_engine: Engine | None = None  # --verifier-model's engine; None: the policy judges itself
    messages: tuple[dict[str, str], ...] = ()  # the chat the prompt was rendered from (refine continues it)
    program_tokens: list[int] | None = None  # the program prompt (--task hybrid); prompt_tokens otherwise
    program_grammar: str = ""  # the program prompt's GBNF (hybrid: its samples follow it, not the math one)
    program_share: float = 0.0  # of the samples, those that answer with a program (1: --task program)
    program_limits: Limits | None = None  # the sandbox's limits per program
    code: CodeTesting | None = None  # --task code, --check: how every sample's code is tested
    test_tokens: list[int] | None = None  # the prompt asking the model for tests (a code question)
    throughput: Curve | None = None  # the engine's measured tokens/s per width (the width policy's input)
    probing: Probing | None = None  # answer probes of running chains (needs the prompt's answer cue)
    probe_cue: list[int] = field(default_factory=list)  # the prompt's answer cue as this model's tokens

    @property
    def interrupted(self) -> bool:
        return self.stop.is_set()

    def open_verifier(self) -> Verifier:
        """The run's verifier (`--verifier`), judging on --verifier-model's engine or the policy's own."""
        engine = self.verifier_engine or self.engine
        vctx = VerifierContext(self.question, engine, engine is self.engine, self.budget, self.stop)
        return make_verifier(self.search.verifier, vctx)
