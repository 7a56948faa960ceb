"""What a bench reports per configuration, from each question's `--json` result and whether it was right.

- accuracy with a 95 % Wilson interval (honest at small n and near 0 or 1, where the normal one is not);
- tokens and seconds per question, and the tokens early stopping saved;
- pass@N: some candidate's answer was right, the ceiling a perfect chooser would reach;
- the AUROC of each candidate score (mean log-probability, DeepConf's trace confidence, and the strategy's own
  score: the judge's in a search) at telling right candidates from wrong ones: 0.5 is no signal.
  Together with pass@N it says whether drawing more or choosing better is the bottleneck;
- the expected calibration error of the answer's `confidence`: how far, on average, what ttc says about
  how sure it is lies from how often it is right (0 is perfectly calibrated);
- where candidates run (programs, code): the share of them whose run ended normally.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ttc_cli.answers.extract import answers_equal

Z95 = 1.959964


def wilson(right: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = right / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(a right candidate scores above a wrong one), ties counting half (Mann-Whitney); None without both."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    ranked = sorted((s, i) for i, s in enumerate(scores))
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[ranked[k][1]] = (i + j) / 2 + 1
        i = j + 1
    pos_rank = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return (pos_rank - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def calibration_error(confidence: Sequence[float], right: Sequence[bool], bins: int = 10) -> float | None:
    """Expected calibration error: |accuracy - mean confidence| per equal-width bin, weighted by its
    share of the answers; None without answers."""
    if not confidence:
        return None
    total = 0.0
    for b in range(bins):
        idx = [i for i, c in enumerate(confidence) if min(int(c * bins), bins - 1) == b]
        if idx:
            accuracy = sum(right[i] for i in idx) / len(idx)
            total += len(idx) * abs(accuracy - sum(confidence[i] for i in idx) / len(idx))
    return total / len(confidence)


SCORERS: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "mean_logprob": lambda c: c.get("mean_logprob"),
    # Results of schema 1 (a bench resumed from an older log) named it `confidence`.
    "trace_confidence": lambda c: c.get("trace_confidence", c.get("confidence")),
    # What the strategy itself ranked candidates by: a search's verifier (the judge by default) on the
    # path, the sampling strategies' --scorer (mean log-probability by default).
    "score": lambda c: c.get("score"),
}


def candidate_right(candidate: dict[str, Any], gold: str) -> bool:
    if "hidden_pass" in candidate:  # code scored by hidden tests (bench.hidden)
        return bool(candidate["hidden_pass"])
    answer = candidate.get("answer")
    return answer is not None and answers_equal(str(answer), gold)


@dataclass(frozen=True)
class Summary:
    config: str
    model: str
    strategy: str
    budget: str
    questions: int
    right: int
    tokens: float  # generated per question
    seconds: float  # per question, the model load left out
    saved: float  # tokens early stopping saved per question
    pass_at_n: float | None  # sampling strategies only
    aurocs: dict[str, float | None]
    calibration: float | None  # ECE of the answers' confidence (None: greedy and searches state none)
    ran: float | None = None  # of the candidates executed, the share whose run ended normally

    @property
    def accuracy(self) -> float:
        return self.right / self.questions if self.questions else 0.0

    def to_json(self) -> dict[str, Any]:
        low, high = wilson(self.right, self.questions)
        return {
            "config": self.config,
            "model": self.model,
            "strategy": self.strategy,
            "budget": self.budget,
            "questions": self.questions,
            "right": self.right,
            "accuracy": round(self.accuracy, 4),
            "accuracy_95": [round(low, 4), round(high, 4)],
            "tokens_per_question": round(self.tokens, 1),
            "seconds_per_question": round(self.seconds, 2),
            "early_stop_saved_per_question": round(self.saved, 1),
            "pass_at_n": None if self.pass_at_n is None else round(self.pass_at_n, 4),
            "auroc": {k: None if v is None else round(v, 4) for k, v in self.aurocs.items()},
            "calibration_error": None if self.calibration is None else round(self.calibration, 4),
            "ran": None if self.ran is None else round(self.ran, 4),
        }


def summarise(config: tuple[str, str, str], results: Sequence[tuple[dict[str, Any], bool, str]]) -> Summary:
    """One configuration's figures from its questions' (result JSON, right?, gold answer)."""
    model, strategy, budget = config
    n = len(results)
    right = sum(ok for _, ok, _ in results)
    tokens = sum(r["budget"]["spent"] for r, _, _ in results) / n if n else 0.0
    seconds = sum(r["timing"]["total_s"] - r["timing"]["load_s"] for r, _, _ in results) / n if n else 0.0
    saved = sum((r.get("early_stop") or {}).get("saved_tokens", 0) for r, _, _ in results) / n if n else 0.0
    # A sampling run's pool, however small: one that stopped early after its first sample counts too.
    sampled = [
        (r, gold) for r, _, gold in results if len(r.get("candidates") or []) > 1 or r.get("early_stop")
    ]
    pass_at_n = (
        sum(any(candidate_right(c, gold) for c in r["candidates"]) for r, gold in sampled) / len(sampled)
        if sampled
        else None
    )
    aurocs: dict[str, float | None] = {}
    for name, score in SCORERS.items():
        pairs = [
            (s, candidate_right(c, gold))
            for r, gold in sampled
            for c in r["candidates"]
            if c.get("answer") is not None and (s := score(c)) is not None
        ]
        aurocs[name] = auroc([s for s, _ in pairs], [y for _, y in pairs]) if pairs else None
    stated = [(r["confidence"], ok) for r, ok, _ in results if r.get("confidence") is not None]
    calibration = calibration_error([c for c, _ in stated], [ok for _, ok in stated])
    runs = [c["execution"]["status"] for r, _, _ in results for c in r["candidates"] if c.get("execution")]
    ran = sum(s == "ok" for s in runs) / len(runs) if runs else None
    name = f"{strategy} · {budget}" + (f" · {model}" if model else "")
    return Summary(
        name, model, strategy, budget, n, right, tokens, seconds, saved, pass_at_n, aurocs, calibration, ran
    )
