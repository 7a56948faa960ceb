"""refine: self-refine. Draft a solution, critique it, revise it; stop when the critique finds no error.

The whole exchange is one conversation, so every turn continues the previous turn's KV cache: the next
user turn (critique or revise request, prompts/refine.yaml) is rendered with the chat template and only
the tokens past what is already cached are evaluated. The turns are tree nodes (a chain: draft, critique,
revision, critique, ...). The answer is the last complete solution; a revision cut off by the budget does
not replace the solution it was revising. `--refine-rounds` caps the critique-and-revise rounds.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import replace

from ttc_cli.answers.extract import extract_answer
from ttc_cli.engine.sequence import FINISH_LENGTH, FINISH_STOP, KvNeeds, common_prefix
from ttc_cli.engine.sequence import Sequence as KvSeq
from ttc_cli.events import Event, Final, NodeCreated, NodeExpanded, NodeFinished, NodeStep, TokensGenerated
from ttc_cli.strategies.candidates import from_steps, shown_answer, stopped_because
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.nodes import EXPANDED, FINISHED, OPEN, Node
from ttc_cli.strategies.tree import Tree
from ttc_cli.task_prompts import load_aux_prompt
from ttc_cli.verifiers.base import Verifier

DESCRIPTION = "self-refine: draft, critique, revise until the critique finds no error"
PROMPT_KEYS = ("critique", "revise", "no_error")


def needs(ctx: RunContext) -> KvNeeds:
    """The whole conversation as the template renders it (its own text and the user's prompts, from their
    real tokens), the replies re-rendered into it (at most twice their sampled length), the reply being
    written and the one before, still held: the root, the previous turn and the current one."""
    prompts = load_aux_prompt("refine", PROMPT_KEYS)
    rounds = min(ctx.search.refine_rounds, ctx.budget.limit // 2)  # a round writes two replies at least
    opening = list(ctx.messages) or [{"role": "user", "content": ctx.question}]
    one_round = [_assistant(""), _user(prompts["critique"]), _assistant(""), _user(prompts["revise"])]
    sizes = [len(ctx.engine.chat_tokens(opening + one_round * k)) for k in (0, 1, 2)]
    # Every round after the first renders alike; the first may differ (a template's own first-turn text).
    template = sizes[0] + (sizes[1] - sizes[0]) + max(0, rounds - 1) * (sizes[2] - sizes[1])
    replies = 1 + 2 * rounds
    longest = ctx.sampling.max_tokens * (1 + rounds) + 2 * ctx.search.step_tokens * rounds
    generated = min(ctx.budget.limit, longest)
    return KvNeeds(template + 3 * generated + 8 * replies + 16, 3)


def run(ctx: RunContext) -> Iterator[Event]:
    prompts = load_aux_prompt("refine", PROMPT_KEYS)
    tree = Tree(ctx, Verifier())
    messages = list(ctx.messages) or [{"role": "user", "content": ctx.question}]
    solutions: list[Node] = []
    settled = False
    try:
        yield from tree.start()
        draft = yield from _turn(ctx, tree, tree.root, None, ctx.sampling.max_tokens)
        if _complete(draft):
            solutions.append(draft)
        last = draft
        for _ in range(ctx.search.refine_rounds):
            if not _complete(last) or ctx.budget.remaining <= 0 or ctx.interrupted:
                break
            messages += [_assistant(last.text)]
            asked = messages + [_user(prompts["critique"])]
            critique = yield from _turn(ctx, tree, last, asked, ctx.search.step_tokens * 2, free=True)
            if not _complete(critique):
                break
            if prompts["no_error"].lower() in critique.text.lower():
                settled = True
                break
            messages += [_user(prompts["critique"]), _assistant(critique.text)]
            revision = yield from _turn(
                ctx, tree, critique, messages + [_user(prompts["revise"])], ctx.sampling.max_tokens
            )
            messages.append(_user(prompts["revise"]))
            last = revision
            if _complete(revision):
                solutions.append(revision)
        yield from _conclude(ctx, tree, solutions, settled)
    finally:
        tree.close()


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text.strip()}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text.strip()}


def _complete(node: Node) -> bool:
    return node.finish in (FINISH_STOP, FINISH_LENGTH) and bool(node.text.strip())


def _turn(
    ctx: RunContext,
    tree: Tree,
    parent: Node,
    messages: list[dict[str, str]] | None,
    max_tokens: int,
    free: bool = False,
) -> Generator[Event, None, Node]:
    """Generate one assistant turn after `parent`'s, continuing its cache (`messages` None: the draft).

    A critique is `free` text: the prompt's grammar shapes solutions, not what is said about them."""
    engine = ctx.engine
    assert parent.seq is not None
    seq = engine.fork(parent.seq) if messages is None else _continue(ctx, parent.seq, messages)
    node = tree.add(parent)
    node.seq = seq
    yield NodeCreated(node.id, parent.id, node.depth)
    decoder = engine.decoder(ctx.budget, ctx.stop)
    params = replace(ctx.sampling, seed=ctx.sampling.seed + node.id, max_tokens=max_tokens)
    decoder.add(seq, replace(params, grammar="") if free else params)
    for step in decoder:
        if step.sampled:
            yield _progress(ctx)
    node.take(seq)
    node.path_tokens = len(node.tokens)
    found = extract_answer(node.text, ctx.choices) if node.text.strip() else None
    node.answer = found.text if found else None
    node.status = OPEN
    yield NodeStep(node.id, node.text, len(node.tokens), False)
    if parent.status != EXPANDED:
        parent.status = EXPANDED
        yield NodeExpanded(parent.id)
    if parent.seq is not None and parent is not tree.root:
        engine.release(parent.seq)  # the child's cache shares everything it needs
        parent.seq = None
    return node


def _continue(ctx: RunContext, seq: KvSeq, messages: list[dict[str, str]]) -> KvSeq:
    """A fork of `seq` extended to the conversation `messages`, re-evaluating only what differs."""
    full = ctx.engine.chat_tokens(messages)
    n = max(1, common_prefix(seq.tokens, full))
    child = ctx.engine.fork(seq, at=min(n, len(seq.tokens)))
    child.tokens += full[len(child.tokens) :]
    return child


def _progress(ctx: RunContext) -> Event:
    return TokensGenerated(ctx.budget.spent, ())


def _conclude(ctx: RunContext, tree: Tree, solutions: list[Node], settled: bool) -> Iterator[Event]:
    cands = [
        from_steps(n.steps()[-1:], i, ctx.choices, n.finish or FINISH_STOP) for i, n in enumerate(solutions)
    ]
    if solutions:
        best = solutions[-1]
        best.status = FINISHED
        yield NodeFinished(best.id, best.answer)
    rounds = max(0, len(solutions) - 1)
    if not cands:
        partial = next((n for n in reversed(tree.nodes) if n.text.strip()), None)
        text = partial.text.strip() if partial else ""
        yield Final(
            answer=text,
            response=text,
            selection="no complete draft within the budget; the partial text is shown",
            stopped_because=stopped_because(ctx, False),
            tree=tree.to_json(),
            usage=tree.usage(),
        )
        return
    why = "the critique found no error" if settled else f"after {rounds} revision(s)"
    done = settled or len(solutions) - 1 >= ctx.search.refine_rounds
    yield Final(
        answer=shown_answer(cands[-1]),
        response=cands[-1].text,
        selection=f"self-refine: the {'draft' if not rounds else 'last revision'}, {why}",
        stopped_because=stopped_because(ctx, done or ctx.budget.remaining > 0),
        candidates=tuple(cands),
        chosen=cands[-1].index,
        tree=tree.to_json(),
        usage=tree.usage(),
    )
