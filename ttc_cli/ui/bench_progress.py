"""`ttc bench`'s progress on stderr while it runs: a bar per configuration with its ETA and running
accuracy; it also keeps the outcomes, from which the closing table is summarised."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ttc_cli.bench.metrics import Summary, summarise
from ttc_cli.bench.run import Config, Outcome


@dataclass
class BenchProgress:
    """The progress bar on stderr (ETA, and each configuration's running accuracy), and the outcomes."""

    configs: list[Config]
    total: int
    quiet: bool
    outcomes: list[Outcome] = field(default_factory=list)
    _bar: Any = None
    _tasks: dict[Config, Any] = field(default_factory=dict)

    @property
    def several(self) -> bool:
        """Whether the bench compares models (labels then name them)."""
        return len({c.model for c in self.configs}) > 1

    def __enter__(self) -> BenchProgress:
        from ttc_cli.ui.terminal import stderr_console

        console = stderr_console(self.quiet)
        if console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=console, transient=False,
            )  # fmt: skip
            for c in self.configs:
                self._tasks[c] = self._bar.add_task(c.label(self.several), total=self.total)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if self._bar is not None:
            mine = [o for o in self.outcomes if o.config == outcome.config]
            right = sum(o.right for o in mine)
            label = f"{outcome.config.label(self.several)}  {right}/{len(mine)} right"
            self._bar.update(self._tasks[outcome.config], advance=1, description=label)

    def summaries(self) -> list[Summary]:
        out = []
        for c in self.configs:
            mine = [(o.result, o.right, o.item.answer) for o in self.outcomes if o.config == c]
            if mine:
                s = summarise((c.model or "default" if self.several else "", c.strategy, c.budget), mine)
                out.append(s)
        return out
