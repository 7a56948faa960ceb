"""best-of-n: sample N candidates and keep the one the scorer likes best.

The default scorer is the mean token log-probability (length-normalised likelihood); `--scorer confidence`
uses DeepConf's token confidence. Only candidates that finished on their own compete, unless none did.
With early stopping, sampling ends once the candidates' answers agree (the same rules as
self-consistency), and the best-scored of the candidates drawn so far is kept.
"""

from __future__ import annotations

from collections.abc import Iterator

from ttc_cli.events import Event, Final
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.sampling import Sampled, complete, sample, shown_answer, stopped_because

DESCRIPTION = "N samples, keep the one with the best score (mean log-prob by default)"


def run(ctx: RunContext) -> Iterator[Event]:
    out = Sampled()
    yield from sample(ctx, ctx.samples, out)
    cands = out.candidates
    pool = complete(cands)
    best = max(pool, key=lambda c: (c.score if c.score is not None else float("-inf"), -c.index))
    yield Final(
        answer=shown_answer(best),
        response=best.text,
        selection=f"best of {len(pool)} by {ctx.scorer} (score {best.score:.3f})",
        stopped_because=stopped_because(out, ctx),
        candidates=tuple(cands),
        chosen=best.index,
        early_stop=out.early_stop,
    )
