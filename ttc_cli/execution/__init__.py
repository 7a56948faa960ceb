"""Running code a model wrote, contained: one command (`run_isolated`) or many at once (`ExecutionPool`).

What is and is not isolated on a given host is in `sandbox`'s docstring; `isolation()` says it in one line.
Where runs work and how what they leave is removed is `scratch`'s; the pids cgroup that caps and ends a
run's processes is `cgroup`'s.
"""

from ttc_cli.execution.pool import ExecutionPool
from ttc_cli.execution.sandbox import Limits, Outcome, isolation, run_isolated

__all__ = ["ExecutionPool", "Limits", "Outcome", "isolation", "run_isolated"]
