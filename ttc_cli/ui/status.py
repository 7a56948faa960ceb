"""A one-line live status and a closing summary on stderr, for a person at a terminal.

Events update a small state object; Rich redraws it at a fixed rate (never per token), so the status costs
nothing measurable. Nothing is drawn when stderr is not a terminal, and Rich honours NO_COLOR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ttc_cli.events import CandidateFinished, CandidateStarted, Event, Final, TokensGenerated, VotesUpdated


@dataclass
class StatusState:
    strategy: str
    limit: int
    started: float = field(default_factory=time.perf_counter)
    spent: int = 0
    candidates: int = 0
    finished: int = 0
    leader: str | None = None
    leader_votes: int = 0

    def update(self, event: Event) -> None:
        if isinstance(event, CandidateStarted):
            self.candidates += 1
        elif isinstance(event, TokensGenerated):
            self.spent = event.spent
        elif isinstance(event, CandidateFinished):
            self.finished += 1
        elif isinstance(event, VotesUpdated) and event.votes:
            self.leader, self.leader_votes = event.votes[0].answer, event.votes[0].count

    def line(self) -> Text:
        elapsed = time.perf_counter() - self.started
        rate = self.spent / elapsed if elapsed > 0 else 0.0
        text = Text.assemble(
            (f"{self.strategy} ", "bold cyan"),
            f"· {self.spent:,}/{self.limit:,} tokens · {rate:,.0f} tok/s · ",
            f"{self.finished}/{self.candidates} candidates done · {elapsed:.1f}s",
        )
        if self.leader is not None:
            text.append(f" · leader {self.leader[:24]} ({self.leader_votes})", style="green")
        return text


class StatusLine:
    """Consumes events; shows a live status line while the run lasts."""

    def __init__(self, console: Console, strategy: str, limit: int) -> None:
        self.state = StatusState(strategy, limit)
        self._live = Live(
            console=console, refresh_per_second=8, transient=True, get_renderable=self.state.line
        )

    def __enter__(self) -> StatusLine:
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    def __call__(self, event: Event) -> None:
        self.state.update(event)
        if isinstance(event, Final):
            self._live.stop()


def summary_line(result_json: dict) -> Text:
    """`selection · spent/limit tokens · seconds`, the closing line on stderr."""
    b, t = result_json["budget"], result_json["timing"]
    text = Text.assemble(
        (f"{result_json['strategy']}", "bold cyan"),
        f" · {result_json['selection']} · {b['spent']:,}/{b['limit']:,} tokens",
        f" · {t['total_s']:.1f}s",
    )
    if result_json["stopped_because"] != "completed":
        text.append(f" · stopped: {result_json['stopped_because']}", style="yellow")
    return text
