"""`ttc bench --fit NAME`: auto's samples per difficulty, fitted to the user's own model and questions.

The difficulty is what `auto` observes online: how many of the first 4 samples (its probe) agree. From a
self-consistency configuration of the bench (best with --no-early-stop, so every question has all N
samples; a question that stopped early counts as decided), self-consistency with its first n samples is
replayed for every n in 4, 8, 12, ... N: its accuracy and tokens per question. The questions are split in
two halves (seeded). On the first, each difficulty gets the n with the best accuracy whose mean tokens
stay under the cap (ties: the fewer tokens). On the second, the fitted routes are compared with the best
fixed choice at no more tokens: every plain self-consistency n replayed, and every configuration the
bench ran. Both figures are replays of recorded samples (the fitted `auto` would also stop early inside
a route), and say so.

Where the bench ran greedy, its confidence is calibrated on the same split: a logistic map from the
answer's mean log-probability to the chance it is right (answers.calibration), fitted on the first half
and scored on the second. `fit_outcomes` does both from a bench's outcomes and writes the profile.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ttc_cli.answers.calibration import platt, platt_fit
from ttc_cli.answers.extract import answer_key, answers_equal
from ttc_cli.bench.metrics import auroc, calibration_error
from ttc_cli.bench.run import Outcome
from ttc_cli.errors import UsageError
from ttc_cli.profile import DIFFICULTIES

PROBE = 4


@dataclass(frozen=True)
class Recorded:
    """One question's samples from the source configuration, in the order they were drawn."""

    id: str
    gold: str
    answers: tuple[str | None, ...]
    tokens: tuple[int, ...]

    @property
    def difficulty(self) -> str:
        probe = [a for a in self.answers[:PROBE] if a is not None]
        leader = Counter(answer_key(a) for a in probe).most_common(1)[0][1] if probe else 0
        return "easy" if leader == min(PROBE, len(self.answers)) else "medium" if leader >= 2 else "hard"

    def replay(self, n: int) -> tuple[bool, int]:
        """(right?, tokens) of self-consistency over the first n samples: a plurality, ties to the first."""
        first = self.answers[:n]
        counts = Counter(answer_key(a) for a in first if a is not None)
        if not counts:
            return False, sum(self.tokens[:n])
        best = max(counts.values())
        winner = next(a for a in first if a is not None and counts[answer_key(a)] == best)
        return answers_equal(winner, self.gold), sum(self.tokens[:n])


def recorded(results: Sequence[tuple[str, str, dict[str, Any]]]) -> list[Recorded]:
    """(id, gold, result JSON) of the source configuration's runs, as replayable samples."""
    out = []
    for qid, gold, r in results:
        cands = sorted(r.get("candidates") or [], key=lambda c: c["index"])
        out.append(
            Recorded(qid, gold, tuple(c.get("answer") for c in cands), tuple(int(c["tokens"]) for c in cands))
        )
    return out


def sizes(questions: Sequence[Recorded]) -> list[int]:
    """The sample counts to try: 4, 8, ... up to the most any question drew. A question that stopped
    early has fewer; replaying n past its end counts what it has, as its early stop decided."""
    most = max(len(q.answers) for q in questions)
    return sorted({n for n in range(PROBE, most + 1, PROBE)} | {most}) if most >= PROBE else [most]


def score(questions: Sequence[Recorded], n_of: dict[str, int] | int) -> tuple[float, float]:
    """(accuracy, mean tokens) of replaying n samples per question (one n, or one per difficulty)."""
    if not questions:
        return 0.0, 0.0
    runs = [q.replay(n_of if isinstance(n_of, int) else n_of[q.difficulty]) for q in questions]
    return sum(ok for ok, _ in runs) / len(runs), sum(t for _, t in runs) / len(runs)


def halves(ids: Sequence[str], seed: int) -> tuple[set[str], set[str]]:
    """The questions split in two (seeded): fit on the first, report on the second."""
    order = sorted(set(ids))
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    return set(order[:half]), set(order[half:])


def calibrate_greedy(runs: Sequence[tuple[str, bool, float, bool]], seed: int) -> dict[str, Any] | None:
    """Greedy's confidence map fitted on one half of the questions, its calibration error and AUROC on the
    other. `runs`: (question id, right?, mean log-prob, stated an answer?). A run without an answer says
    0 and is left out of the fit. None when the fit half has fewer than 2 answers."""
    first, _ = halves([r[0] for r in runs], seed)
    train = [r for r in runs if r[0] in first and r[3]]
    test = [r for r in runs if r[0] not in first]
    if len(train) < 2:
        return None
    slope, intercept = platt_fit([r[2] for r in train], [r[1] for r in train])
    said = [platt(slope, intercept, r[2]) if r[3] else 0.0 for r in test]
    right = [r[1] for r in test]
    return {
        "slope": round(slope, 4),
        "intercept": round(intercept, 4),
        "fit_runs": len(train),
        "test_runs": len(test),
        "test_accuracy": round(sum(right) / len(right), 4) if right else None,
        "test_mean_confidence": round(sum(said) / len(said), 4) if said else None,
        "test_calibration_error": _round(calibration_error(said, right)),
        "test_auroc": _round(auroc(said, right)),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def fit(
    questions: Sequence[Recorded],
    cap: float | None,
    seed: int,
    fixed: dict[str, dict[str, tuple[bool, int]]] | None = None,
) -> dict[str, Any]:
    """Fit routes on one half, report on the other. `fixed`: the bench's other configurations, by name,
    each question id's (right?, tokens), for the comparison at equal tokens."""
    first, _ = halves([q.id for q in questions], seed)
    train = [q for q in questions if q.id in first]
    test = [q for q in questions if q.id not in first]
    options = sizes(questions)
    routes: dict[str, int] = {}
    per_bin: dict[str, Any] = {}
    for d in DIFFICULTIES:
        group = [q for q in train if q.difficulty == d]
        if not group:
            routes[d] = {"easy": options[0], "medium": options[len(options) // 2], "hard": options[-1]}[d]
            per_bin[d] = {"questions": 0, "samples": routes[d], "note": "no question of this kind: default"}
            continue
        scored = [(n, *score(group, n)) for n in options]
        allowed = [s for s in scored if cap is None or s[2] <= cap] or [min(scored, key=lambda s: s[2])]
        n, acc, tokens = max(allowed, key=lambda s: (s[1], -s[2]))
        routes[d] = n
        per_bin[d] = {
            "questions": len(group),
            "samples": n,
            "accuracy": round(acc, 4),
            "tokens": round(tokens),
        }
    acc, tokens = score(test, routes)
    rivals = {f"self-consistency@{n} (replayed)": score(test, n) for n in options}
    for name, by_id in (fixed or {}).items():
        runs = [by_id[q.id] for q in test if q.id in by_id]
        if len(runs) == len(test) and runs:
            rivals[name] = (sum(ok for ok, _ in runs) / len(runs), sum(t for _, t in runs) / len(runs))
    affordable = {k: v for k, v in rivals.items() if v[1] <= tokens * 1.0001}
    best = max(affordable.items(), key=lambda kv: (kv[1][0], -kv[1][1])) if affordable else None
    return {
        "routes": routes,
        "fit_questions": len(train),
        "test_questions": len(test),
        "bins": per_bin,
        "fitted_auto": {"accuracy": round(acc, 4), "tokens": round(tokens)},
        "best_fixed_at_no_more_tokens": (
            {"name": best[0], "accuracy": round(best[1][0], 4), "tokens": round(best[1][1])} if best else None
        ),
        "all_fixed": {k: {"accuracy": round(a, 4), "tokens": round(t)} for k, (a, t) in rivals.items()},
    }


def fit_outcomes(
    name: str, outcomes: list[Outcome], cap: int | None, seed: int, source: str
) -> dict[str, Any]:
    """`ttc bench --fit NAME`: auto's routes replayed from self-consistency's samples and greedy's confidence
    calibrated, from a bench's outcomes, written as the user's profile NAME; returns what was fitted."""
    from ttc_cli.bench.profile_file import write_profile

    configs = list(dict.fromkeys(o.config for o in outcomes))
    sampled = [c for c in configs if c.strategy == "self-consistency"]
    greedy = [c for c in configs if c.strategy == "greedy"]
    if not sampled and not greedy:
        raise UsageError(
            "--fit replays self-consistency's samples (auto's routes) and calibrates greedy's confidence",
            "add -s self-consistency (with --no-early-stop), -s greedy, or both",
        )
    if (count := len({o.item.id for o in outcomes})) < 4:
        raise UsageError(f"--fit needs at least 4 questions, this bench has {count}", "raise --limit")
    result: dict[str, Any] = {}
    model = greedy[0].model if greedy else None
    if sampled:
        source_config = max(
            sampled, key=lambda c: sum(len(o.result["candidates"]) for o in outcomes if o.config == c)
        )
        mine = [o for o in outcomes if o.config == source_config]
        fixed: dict[str, dict[str, tuple[bool, int]]] = {}
        for o in outcomes:
            fixed.setdefault(o.config.label(True), {})[o.item.id] = (o.right, o.result["budget"]["spent"])
        result = fit(recorded([(o.item.id, o.item.answer, o.result) for o in mine]), cap, seed, fixed)
        result["source"] = source_config.label(True)
        model = source_config.model if any(c.model == source_config.model for c in greedy) else model
    if greedy:
        mine = [o for o in outcomes if o.config in greedy and o.config.model == model]
        chosen = [_greedy_run(o) for o in mine if o.result.get("chosen") is not None]
        calibrated = calibrate_greedy(chosen, seed)
        result["greedy_confidence"] = {"model": model or "default", **calibrated} if calibrated else None
    if "routes" not in result and not result.get("greedy_confidence"):
        raise UsageError("greedy stated under 2 answers in --fit's half of the questions", "raise --limit")
    result["profile"] = str(write_profile(name, result, source))
    return result


def _greedy_run(o: Outcome) -> tuple[str, bool, float, bool]:
    """(question id, right?, mean log-prob, stated an answer?) of a greedy run, for its calibration."""
    chosen = next(c for c in o.result["candidates"] if c["index"] == o.result["chosen"])
    return o.item.id, o.right, float(chosen["mean_logprob"]), chosen["answer"] is not None
