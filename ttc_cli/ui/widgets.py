"""Renderables drawn from a `RunState` or from finished results: plain functions, no state of their own.

Every widget bounds its own height: rows beyond a limit are summarised in one line, and each line is cut
with "…" rather than wrapped, so the live region stays the same size whether a run has 4 candidates or 64
and 2 distinct answers or 30. Widgets copy what they need from the state when called and lay it out when
drawn (`_Fit`), once the width is known: the same table serves a full terminal and a narrow compare panel,
and the live view can draw on its own thread while events keep updating the state.

Lines of `Text` rather than rich `Table`s for the live parts: a Table measures every cell on each redraw.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text, TextType

from ttc_cli.ui.state import GENERATING, CandidateView, RunState

STATUS_STYLE = {
    GENERATING: "cyan",
    "finished": "green",
    "cancelled": "dim",
    "interrupted": "red",
    "open": "cyan",
    "expanded": "blue",
    "pruned": "dim",
    "running": "magenta",  # a program candidate's run
    "ran": "green",
    "tested": "green",
    **dict.fromkeys(("error", "failed", "timeout", "killed", "no program", "no output"), "red"),
}
LEADER = "★"  # the leading answer in a tally
CHOSEN = "→"  # the candidate whose response is the result
PANEL_WIDTH = 32  # narrowest compare panel worth drawing; more runs than fit side by side wrap to a new row


class _Fit:
    """A renderable laid out at draw time, when the width it gets is known."""

    def __init__(self, build: Callable[[int], RenderableType]) -> None:
        self._build = build

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self._build(options.max_width)


def _line(*parts: str | tuple[str, str]) -> Text:
    return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")


def clip(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _bar(fraction: float, width: int) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def header(state: RunState) -> RenderableType:
    preset = f"{state.budget_preset} · " if state.budget_preset else ""
    n = f" · N={state.samples}" if state.samples > 1 else ""
    deadline = f" · {state.deadline_s:g}s deadline" if state.deadline_s is not None else ""
    rest = f" · {state.model} · budget {preset}{state.budget_limit:,} tokens{deadline}{n} · {state.device}"
    return _line(("ttc ", "bold"), (state.strategy, "bold cyan"), rest)


def budget_bar(state: RunState, width: int = 40) -> RenderableType:
    fraction = state.spent / state.budget_limit if state.budget_limit else 0.0
    # In the first moments the rate is noise (a few tokens over a few milliseconds), so it waits.
    rate = f"{state.tokens_per_s:,.0f}" if state.elapsed >= 0.5 else "–"
    deadline = f"/{state.deadline_s:g}" if state.deadline_s is not None else ""
    clock = f"{state.elapsed:.1f}{deadline}s"
    figures = [f"{state.spent:,}/{state.budget_limit:,} tokens", clock, f"{rate} tok/s"]
    if state.samples and not state.tree:  # a search counts its nodes in the tree view instead
        figures.append(f"{state.n_finished}/{state.samples} done")
        if state.width is not None and state.final is None:
            figures.append(f"{min(state.width, state.samples)} at once")
    if state.phase and state.final is None:
        figures.append(state.phase)

    def build(avail: int) -> RenderableType:
        everything = " · ".join(figures)
        if width + 1 + len(everything) <= avail:
            return _line((_bar(fraction, width), "magenta"), " " + everything)
        shown = figures[0]
        for part in figures[1:]:  # in order of importance; what does not fit is left out, not cut
            if len(shown) + 3 + len(part) <= avail:
                shown += " · " + part
        return Group(_line((_bar(fraction, min(width, avail)), "magenta")), _line(shown))

    return _Fit(build)


def _shown_candidates(state: RunState, max_rows: int) -> list[CandidateView]:
    """The chosen candidate, then the ones still generating, then the most recently finished."""
    chosen = state.final.chosen if state.final else None
    ranked = sorted(
        state.candidates.values(),
        key=lambda c: (c.index != chosen, c.status != GENERATING, -c.finished_order, c.index),
    )
    return sorted(ranked[:max_rows], key=lambda c: c.index)


# The candidates' column is their mean token probability, headed "tok p": "confidence" is the answer's
# alone (its probability of being right), shown in the summary line.
TOKEN_PROB = "tok p"


def _prob(c: CandidateView) -> str:
    return f"{c.token_prob:.2f}" if c.token_prob is not None else ""


def _answer(c: CandidateView) -> str | None:
    """A finished candidate's answer; a running one's latest probe, marked as a probe ("7?", or "7?✓"
    once settled)."""
    if c.status == GENERATING and c.probed is not None:
        return f"{c.probed}?{'✓' if c.settled else ''}"
    return c.answer


def candidates_table(state: RunState, max_rows: int = 8) -> RenderableType:
    chosen = state.final.chosen if state.final else None
    rows = [
        (f"{CHOSEN if c.index == chosen else ''}{c.index}", c.status, f"{c.tokens:,}", _prob(c), _answer(c))
        for c in _shown_candidates(state, max_rows)
    ]
    hidden = len(state.candidates) - len(rows)

    def build(avail: int) -> RenderableType:
        iw = max([2] + [len(r[0]) for r in rows])
        sw = max([6] + [len(r[1]) for r in rows])
        tw = max([6] + [len(r[2]) for r in rows])
        gap = "  " if avail >= 40 else " "  # a narrow compare panel needs every column it can get
        answer_w = avail - (iw + sw + tw + 1 + 2 * len(gap))
        pw = len(TOKEN_PROB)
        prob_w = pw + len(gap) if answer_w >= 8 + pw + len(gap) else 0  # else the answer is worth more
        answer_w -= prob_w
        prob_h = f"{TOKEN_PROB}{gap}" if prob_w else ""
        lines = [_line((f"{'#':>{iw}}{gap}{'status':<{sw}} {'tokens':>{tw}}{gap}{prob_h}answer", "bold"))]
        for index, status, tokens, prob, answer in rows:
            status_cell = (f"{status:<{sw}}", STATUS_STYLE.get(status, "yellow"))
            prob = f"{prob:>{pw}}{gap}" if prob_w else ""
            rest = f" {tokens:>{tw}}{gap}{prob}{clip(answer, answer_w)}"
            lines.append(_line(f"{index:>{iw}}{gap}", status_cell, rest))
        if hidden > 0:
            lines.append(_line((f"{'':>{iw}}{gap}… {hidden} more", "dim")))
        return Group(*lines)

    return _Fit(build)


def vote_tally(state: RunState, width: int = 30, max_rows: int = 6) -> RenderableType:
    """One row per answer, leader first (votes arrive ranked); bars scale with weight when it differs."""
    votes = state.votes
    if not votes:
        return _line(("no votes yet", "dim"))
    weighted = any(abs(v.weight - v.count) > 1e-9 for v in votes)
    top = max(v.weight if weighted else v.count for v in votes) or 1.0
    shown, rest, counted = votes[:max_rows], votes[max_rows:], sum(v.count for v in votes)
    answers = [clip(v.answer, 16) for v in shown]
    fractions = [(v.weight if weighted else v.count) / top for v in shown]
    figures = [f"{v.count} ({v.weight:.2f})" if weighted else str(v.count) for v in shown]
    # The same measure as the answer's confidence (answers.confidence.vote_confidence), on the samples that
    # ended on their own (a sample an early stop cancelled is no evidence); the answer's own once it is in.
    ended = sum(c.ended for c in state.candidates.values())
    if state.final is not None and state.final.confidence is not None:
        weak = state.final.confidence < LOW_CONFIDENCE
    else:
        weak = ended > 1 and (votes[0].count + 1) / (ended + 2) < LOW_CONFIDENCE

    def build(avail: int) -> RenderableType:
        fig_w, ans_w = max(map(len, figures)), max(map(len, answers))
        bar_w = min(width, avail - ans_w - fig_w - 4)
        if bar_w < 6:  # narrow: give the bar some room at the answer's expense
            ans_w = max(4, ans_w - (6 - bar_w))
            bar_w = max(1, min(width, avail - ans_w - fig_w - 4))
        head: list[str | tuple[str, str]] = [("votes", "bold"), f" · {counted} counted"]
        if weak:
            head.append((f" · {votes[0].count} of {ended} for the leader: low confidence", "yellow"))
        lines = [_line(*head)]
        for i, (answer, fraction, figure) in enumerate(zip(answers, fractions, figures, strict=True)):
            mark, style = (LEADER, "bold green") if i == 0 else (" ", "")
            cells = (f"{mark} {clip(answer, ans_w):<{ans_w}} ", style), (_bar(fraction, bar_w), "green")
            lines.append(_line(*cells, f" {figure:>{fig_w}}"))
        if rest:
            more = f"{_count(len(rest), 'more answer')} ({_count(sum(v.count for v in rest), 'vote')})"
            lines.append(_line((f"  … {more}", "dim")))
        return Group(*lines)

    return _Fit(build)


def tree_view(state: RunState, max_rows: int = 8) -> RenderableType:
    """A search tree in bounded height: counts by status, then the live frontier and finished paths,
    best first, each indented by depth (capped, so a deep path stays readable)."""
    nodes = list(state.tree.values())
    counts = Counter(n.status for n in nodes)
    figures = [_count(len(nodes), "node")] + [
        f"{counts[s]} {s}" for s in ("generating", "open", "finished", "pruned") if counts[s]
    ]
    live = [n for n in nodes if n.status in (GENERATING, "open", "finished")]
    ranked = sorted(live, key=lambda n: (n.status != "finished", -(n.value or 0.0), -n.id))[:max_rows]
    rows = [
        (n.depth, f"#{n.id}", n.status, "" if n.value is None else f"{n.value:.2f}", n.text) for n in ranked
    ]

    def build(avail: int) -> RenderableType:
        lines = [_line(("tree", "bold"), " · " + " · ".join(figures))]
        for depth, ident, status, value, text in rows:
            indent = "  " * min(depth, 6)
            head = f"{indent}{ident:>4} "
            rest = f" {value:>4} "
            width = avail - len(head) - 9 - len(rest)
            cell = (f"{status:<9}", STATUS_STYLE.get(status, "yellow"))
            lines.append(_line(head, cell, rest, clip(text, width)))
        if len(live) > len(rows):
            lines.append(_line((f"     … {len(live) - len(rows)} more", "dim")))
        return Group(*lines)

    return _Fit(build)


def banners(state: RunState) -> RenderableType | None:
    notes = [n for n in (state.probe_note, state.cancel_note) if n]
    lines = notes + state.banners[-3:]
    return Group(*(_line((f"▶ {b}", "bold yellow")) for b in lines)) if lines else None


def run_view(state: RunState, compact: bool = False) -> RenderableType:
    """The whole live region; `compact` (a compare panel) drops the header and shows fewer rows."""
    if compact and state.started is None and not state.candidates:
        return _line(("waiting", "dim"))
    parts: list[RenderableType] = [] if compact else [header(state)]
    parts.append(budget_bar(state, width=20 if compact else 40))
    if state.tree:  # a search: its tree says more than its few finished candidates
        parts.append(tree_view(state, max_rows=4 if compact else 8))
    else:
        parts.append(candidates_table(state, max_rows=4 if compact else 8))
    if state.votes:
        parts.append(vote_tally(state, width=12 if compact else 30, max_rows=3 if compact else 6))
    if (extra := banners(state)) is not None:
        parts.append(extra)
    if compact and state.final is not None:  # `ask` prints the same line as its summary under the view
        answer, selection = clip(state.final.answer, 60), state.final.selection
        sure = confidence_note(state.final.confidence) if state.final.confidence is not None else ("", "")
        parts.append(_line(("answer ", "bold"), (answer, "bold green"), f" · {selection}", sure))
    return Group(*parts)


LOW_CONFIDENCE = 0.5  # below it a calibrated answer is more likely wrong than right


def confidence_note(confidence: float) -> tuple[str, str]:
    """The summary line's confidence, and its style: low ones are called a guess."""
    if confidence < LOW_CONFIDENCE:
        return f" · confidence {confidence:.2f}: low, treat this answer as a guess", "bold yellow"
    return f" · confidence {confidence:.2f}", ""


def compare_panels(states: list[RunState]) -> RenderableType:
    panels: list[TextType | Panel] = [
        Panel(
            run_view(s, compact=True),
            title=f"{s.strategy} · {s.model}",
            title_align="left",
            border_style="cyan" if s.started is not None and s.final is None else "dim",
        )
        for s in states
    ]

    def build(avail: int) -> RenderableType:
        per_row = max(1, min(len(panels), avail // PANEL_WIDTH))
        grid = Table.grid(padding=(0, 1), expand=True)
        for _ in range(per_row):
            grid.add_column(ratio=1)
        for start in range(0, len(panels), per_row):
            row = panels[start : start + per_row]
            grid.add_row(*row, *[""] * (per_row - len(row)))
        return grid

    return _Fit(build)
