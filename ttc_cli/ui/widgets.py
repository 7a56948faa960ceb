"""Renderables drawn from a `RunState` or from finished results: plain functions, no state of their own.

Every widget bounds its own height (rows beyond a limit are summarised in one line), so the live region
stays the same size whether a run has 4 candidates or 64 and 2 distinct answers or 30.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ttc_cli.ui.state import CandidateView, RunState

STATUS_STYLE = {"generating": "cyan", "finished": "green", "cancelled": "dim", "interrupted": "yellow"}
LEADER = "★"


def _bar(fraction: float, width: int) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def _clip(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def header(state: RunState) -> RenderableType:
    budget = (
        f"{state.budget_preset} ({state.budget_limit:,})"
        if state.budget_preset
        else f"{state.budget_limit:,}"
    )
    return Text.assemble(
        ("ttc ", "bold"),
        (state.strategy, "bold cyan"),
        f" · {state.model} · budget {budget} tokens · {state.device}",
    )


def budget_bar(state: RunState, width: int = 40) -> RenderableType:
    fraction = state.spent / state.budget_limit if state.budget_limit else 0.0
    text = Text(_bar(fraction, width), style="magenta")
    text.append(f" {state.spent:,}/{state.budget_limit:,} tokens")
    text.append(f" · {state.tokens_per_s:,.0f} tok/s · {state.elapsed:.1f}s")
    if state.samples:
        text.append(f" · {state.n_finished}/{state.samples} done")
    return text


def _shown_candidates(state: RunState, max_rows: int) -> list[CandidateView]:
    live = [c for c in state.candidates.values() if c.status == "generating"]
    done = sorted(
        (c for c in state.candidates.values() if c.status != "generating"),
        key=lambda c: -(c.finished_order or 0),
    )
    return sorted((live + done)[:max_rows], key=lambda c: c.index)


def candidates_table(state: RunState, max_rows: int = 8) -> RenderableType:
    # Fixed-width lines rather than a rich Table: a Table measures every cell on each redraw, which cost
    # ~9 ms a frame for 16 candidates, a visible share of a 2-core machine that is busy decoding.
    out = Text(f"{'#':>4}  {'status':<11} {'tokens':>6}  {'answer':<24} {'conf':>5}\n", style="bold")
    chosen = state.final.chosen if state.final else None
    for c in _shown_candidates(state, max_rows):
        mark = f"{LEADER}{c.index}" if c.index == chosen else str(c.index)
        conf = f"{c.confidence:.2f}" if c.confidence is not None else ""
        out.append(f"{mark:>4}  ")
        out.append(f"{c.status:<11}", style=STATUS_STYLE.get(c.status, "yellow"))
        out.append(f" {c.tokens:>6,}  {_clip(c.answer, 24):<24} {conf:>5}\n")
    hidden = len(state.candidates) - min(len(state.candidates), max_rows)
    if hidden:
        out.append(f"{'':>4}  … {hidden} more\n", style="dim")
    out.rstrip()
    return out


def vote_tally(state: RunState, width: int = 30, max_rows: int = 6) -> RenderableType:
    if not state.votes:
        return Text("votes: none yet", style="dim")
    weighted = any(abs(v.weight - v.count) > 1e-9 for v in state.votes)
    top = max((v.weight if weighted else v.count) for v in state.votes) or 1
    out = Text()
    for i, v in enumerate(state.votes[:max_rows]):
        amount = v.weight if weighted else v.count
        figure = f"{v.count} ({v.weight:.2f})" if weighted else str(v.count)
        label = f"{LEADER if i == 0 else ' '} {_clip(v.answer, 16):<16} "
        out.append(label, style="bold green" if i == 0 else "")
        out.append(_bar(amount / top, width), style="green")
        out.append(f" {figure}\n")
    rest = state.votes[max_rows:]
    if rest:
        out.append(f"  … {len(rest)} more answers ({sum(v.count for v in rest)} votes)\n", style="dim")
    out.rstrip()
    return out


def banners(state: RunState) -> RenderableType | None:
    if not state.banners:
        return None
    return Group(*(Text(f"▶ {b}", style="bold yellow") for b in state.banners[-2:]))


def run_view(state: RunState, compact: bool = False) -> RenderableType:
    rows = 4 if compact else 8
    parts: list[RenderableType] = [] if compact else [header(state)]
    parts += [budget_bar(state, width=20 if compact else 40), candidates_table(state, max_rows=rows)]
    parts.append(vote_tally(state, width=12 if compact else 30, max_rows=3 if compact else 6))
    extra = banners(state)
    if extra is not None:
        parts.append(extra)
    return Group(*parts)


def summary(result: dict[str, Any]) -> RenderableType:
    b, t = result["budget"], result["timing"]
    text = Text.assemble(
        ("answer ", "bold"),
        (_clip(result["answer"], 40), "bold green"),
        f" · {result['strategy']} · {result['selection']} · {b['spent']:,}/{b['limit']:,} tokens",
        f" · {t['total_s']:.1f}s",
    )
    if result["stopped_because"] != "completed":
        text.append(f" · stopped: {result['stopped_because']}", style="yellow")
    return text


def compare_panels(states: list[RunState]) -> RenderableType:
    table = Table.grid(padding=(0, 1), expand=True)
    for _ in states:
        table.add_column(ratio=1)
    table.add_row(
        *(
            Panel(run_view(s, compact=True), title=f"{s.strategy} · {s.model}", title_align="left")
            for s in states
        )
    )
    return table


def _top_score(result: dict[str, Any]) -> str:
    scores = [c["score"] for c in result["candidates"] if c.get("score") is not None]
    return f"{max(scores):.3f}" if scores else "-"


def compare_table(results: list[dict[str, Any]]) -> RenderableType:
    from ttc_cli.verifiers.answers import answer_key

    keys = [answer_key(r["answer"]) for r in results]
    majority = Counter(keys).most_common(1)[0][0] if keys else None
    table = Table(header_style="bold", show_lines=False)
    for name in ("strategy", "model", "answer", "agrees", "tokens", "time", "stopped", "top score"):
        table.add_column(name, justify="right" if name in ("tokens", "time", "top score") else "left")
    for r, key in zip(results, keys, strict=True):
        b = r["budget"]
        table.add_row(
            r["strategy"],
            r["model"],
            _clip(r["answer"], 30),
            "✓" if key == majority else "✗",
            f"{b['spent']:,}/{b['limit']:,}",
            f"{r['timing']['total_s']:.1f}s",
            r["stopped_because"],
            _top_score(r),
        )
    return table
