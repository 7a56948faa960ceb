"""Running code a model wrote, contained: one command (`run_isolated`) or many at once (`ExecutionPool`).

What is and is not isolated on a given host is in `sandbox`'s docstring; `isolation()` says it in one line.
"""

from ttc_cli.execution.pool import ExecutionPool
from ttc_cli.execution.sandbox import Limits, Outcome, isolation, run_isolated

__all__ = ["ExecutionPool", "Limits", "Outcome", "isolation", "run_isolated"]
