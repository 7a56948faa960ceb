"""`logprob`: the policy's own confidence in a path's latest step. It costs nothing: the log-probabilities
were recorded while the step was sampled."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ttc_cli.verifiers.base import Path, Verifier


class LogprobVerifier(Verifier):
    """The latest step's geometric-mean token probability."""

    name = "logprob"

    def score(self, paths: Sequence[Path]) -> list[float | None]:
        return [math.exp(p.steps[-1].mean_logprob) if p.steps else None for p in paths]
