"""The closing lines `ttc ask` writes on stderr once the answer is on stdout, from the run's JSON."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.text import Text

from ttc_cli.ui.widgets import clip, confidence_note


def summary(result_json: dict[str, Any]) -> RenderableType:
    """The closing lines on stderr, after the answer went to stdout."""
    r, b = result_json, result_json["budget"]
    text = Text.assemble(
        ("answer ", "bold"),
        (clip(r["answer"], 60), "bold green"),
        f" · {r['strategy']} · {r['selection']}",
        f" · {b['spent']:,}/{b['limit']:,} tokens · {r['timing']['total_s']:.1f}s",
    )
    if (confidence := r.get("confidence")) is not None:
        text.append(*confidence_note(confidence))
    early = r.get("early_stop")
    if early is not None:
        text.append(
            f" · stopped early ({early['rule']}) after {early['samples_finished']}/{early['samples']} "
            f"samples, ~{early['saved_tokens']:,} tokens saved",
            style="bold cyan",
        )
    elif r["stopped_because"] == "deadline":
        what = f"the {b['deadline_s']:g}s deadline" if b.get("deadline_s") is not None else "the deadline"
        had = "answered with what had finished" if b["spent"] else "before a token was sampled: no answer"
        text.append(f" · stopped: {what} passed; {had}", style="bold yellow")
    elif r["stopped_because"] != "completed":
        text.append(f" · stopped: {r['stopped_because']}", style="bold yellow")
    return text
