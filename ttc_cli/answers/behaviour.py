"""Choosing among code candidates by what their code does: the tests it passes and the behaviour it shares.

Every candidate that ran has a result per test case (`events.CodeReport`): the question's own examples,
whose expected values the user wrote, and the tests the model wrote, whose expected values are often
wrong. Three signals come from them, and `rank_key` orders candidates by the ones a run uses:
- examples: how many of the question's examples a candidate passes (trusted, so they come first);
- dual execution agreement (CodeT, Chen et al. 2022): candidates that pass the same set of generated
  tests form a group, scored (candidates in it) x (tests it passes): a test that many candidates agree
  with is likely right, and code that many likely-right tests pass is likely right;
- agreement over outputs: candidates that return the same value on every test input behave the same;
  the largest such group is the plain vote (MBR-exec, AlphaCode's clustering), the expected values unused.
`--check` (the user's own tests) outranks all three. The model's likelihood breaks what is left tied.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from ttc_cli.events import Candidate, CodeReport

SIGNALS = ("both", "examples", "generated", "none")  # --code-tests: whose expected values choose


def uses_examples(signals: str) -> bool:
    return signals in ("both", "examples")


def uses_generated(signals: str) -> bool:
    return signals in ("both", "generated")


def signature(report: CodeReport) -> str | None:
    """What the code did on every case, as a key equal for equal behaviour; None when no case ran."""
    outputs = [f"{status if status in ('error', 'timeout') else 'value'}:{output}"
               for status, output in report.examples + report.generated if status != "not run"]  # fmt: skip
    return hashlib.sha256("\n".join(outputs).encode()).hexdigest()[:16] if outputs else None


def dual_agreement(cands: Sequence[Candidate]) -> dict[int, float]:
    """CodeT's score of each tested candidate: (candidates passing the same generated tests) x (how many)."""
    sets = {c.index: c.tests.generated_passed for c in cands if c.tests is not None}
    size = Counter(sets.values())
    return {i: float(size[s] * len(s)) for i, s in sets.items()}


def output_groups(cands: Sequence[Candidate]) -> dict[int, int]:
    """Each tested candidate's group size: the candidates whose outputs equal its own on every case."""
    keys = {c.index: c.answer_key for c in cands if c.tests is not None and c.answer_key is not None}
    size = Counter(keys.values())
    return {i: size[k] for i, k in keys.items()}


def rank_key(
    c: Candidate, signals: str, by: str, agreement: dict[int, float], groups: dict[int, int]
) -> tuple[float, ...]:
    """Higher is better. `by`: "vote" (the largest group of equal outputs) or "agreement" (CodeT's
    score); the examples passed come first when `signals` trusts them, --check's verdict before all."""
    r = c.tests
    if r is None:
        return (-1.0,)  # never tested (cut short, no code): behind every candidate that was
    check = float(r.check == "ok") if r.check is not None else 0.0
    examples = float(r.examples_passed) if uses_examples(signals) else 0.0
    codet = agreement.get(c.index, 0.0) if by == "agreement" and uses_generated(signals) else 0.0
    return (check, examples, codet, float(groups.get(c.index, 0)), c.mean_logprob)


def passes_everything(r: CodeReport, signals: str) -> bool:
    """Whether a candidate passed every test the run trusts (and there is at least one), so it may end the
    run: --check and the question's examples; the model's own tests only where there is neither, since
    a generated expected value is often wrong and a right candidate would then never end a run."""
    trusted = r.examples if uses_examples(signals) else ()
    if r.check is None and not trusted:
        trusted = r.generated if uses_generated(signals) else ()
    if r.check is None and not trusted:
        return False
    return (r.check in (None, "ok")) and all(status == "pass" for status, _ in trusted)


def code_confidence(
    c: Candidate, signals: str, groups: dict[int, int], tested: int, rates: tuple[float, float]
) -> float:
    """How likely the chosen code is right. Where the question states examples, what passing them (or
    not) has been worth, measured: `rates` = (P(right | passes every example), P(right | fails one)),
    the profile's `code.confidence`. Else the share of tested candidates that behave as it does,
    (agreeing + 1) / (tested + 2). A passed --check makes it 1, a failed one 0."""
    r = c.tests
    if r is None:
        return 0.0
    if r.check is not None:
        return 1.0 if r.check == "ok" else 0.0
    if uses_examples(signals) and r.examples:
        return rates[0] if r.examples_passed == len(r.examples) else rates[1]
    return (groups.get(c.index, 0) + 1) / (tested + 2)
