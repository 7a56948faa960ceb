"""Code candidates (`--task code`): tested in the sandbox while the other samples decode, then chosen by
what their code does.

A finished candidate's code block runs against the run's test cases (`execution.harness`): the examples the
question states and, once the model has written them, its own tests; with `--check` the user's command
runs too. The sampling loop keeps decoding and, between steps, takes back the candidates whose runs have
ended, now carrying a `CodeReport` and, as their vote, a key of their behaviour (equal outputs on every
case: `answers.behaviour.signature`). When new tests arrive, every candidate already tested runs them
too and comes back again. A candidate that passes every test the run has may end the run.

`choose_code` is every sampling strategy's choice among code candidates (`answers.behaviour`): best-of-n by
examples then dual execution agreement, self-consistency by the largest group of equal behaviour.
It is a little longer than most modules: the runner's bookkeeping (what ran against which tests, what
is still out) and the choice read the same records, and split they would pass them back and forth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ttc_cli.answers.behaviour import (
    SIGNALS,
    code_confidence,
    dual_agreement,
    output_groups,
    rank_key,
    signature,
    uses_examples,
    uses_generated,
)
from ttc_cli.answers.examples import Case, entry_point, extract_examples, question_code
from ttc_cli.answers.program import extract_program
from ttc_cli.errors import UsageError
from ttc_cli.events import Candidate, CodeReport, EarlyStop, Execution, Final, GeneratedTests, Vote
from ttc_cli.execution import ExecutionPool, Outcome
from ttc_cli.execution.check import Check
from ttc_cli.task_prompts import load_aux_prompt

WORKERS = 2  # runs at once: they are short, and more would take cores from decoding
# Why a run ended without results for all its cases, worst first: it says what went wrong.
_WORST = ("killed", "timeout", "error")


@dataclass(frozen=True)
class CodeTesting:
    """How a run tests code candidates (resolved by `plan.build`)."""

    signals: str = "both"  # whose expected values choose: both, examples, generated, none
    examples: tuple[Case, ...] = ()  # the question's own, as extracted
    context: str = ""  # the question's own code (imports, helpers, the stub), run before a candidate's
    entry: str | None = None  # the function the question asks for
    test_samples: int = 0  # test sets the model writes (0: none)
    write_tests: str = "always"  # always, or without-examples: only for a question that states none
    test_max_tokens: int = 256
    test_messages: tuple[dict[str, str], ...] = ()  # the chat asking for tests
    test_prefill: str = ""  # the start of a test writer's reply (e.g. its first assert's head)
    per_case_s: float = 1.0
    check: Check | None = None  # --check: the user's command, which outranks every test
    # Samples decoding at once while early stopping can end the run on a pass: a number, "grow" (1, 2, 4,
    # ...: each wave twice the last, so an easy question costs one sample and a hard one still gets
    # many at once), or None (the sampler's vote-based policy).
    width: int | str | None = "grow"
    greedy_first: bool = True  # sample 0 decodes greedily: the model's best guess, tested first
    prefill: str = ""  # the reply's start the prompt gave (e.g. the stub): part of every candidate's code
    rates: tuple[float, float] = (0.9, 0.1)  # P(right | passes every example), P(right | fails one)

    @property
    def run_examples(self) -> tuple[Case, ...]:
        """The examples every candidate runs: all of them, unless only generated tests choose, and then
        their inputs still feed the vote over outputs (as cases with no expected value)."""
        if uses_examples(self.signals):
            return self.examples
        return tuple(replace(c, expected=None, raises=None) for c in self.examples)

    @property
    def writes_tests(self) -> bool:
        wanted = self.write_tests == "always" or not self.examples
        return wanted and uses_generated(self.signals) and self.test_samples > 0 and self.entry is not None

    def to_json(self, written: Sequence[GeneratedTests]) -> dict[str, Any]:
        """--json's `code`: the function asked for, the examples found, the tests the model wrote."""
        return {
            "entry_point": self.entry,
            "tests": self.signals,
            "examples": [dict(c.to_json(), text=c.text) for c in self.examples],
            "generated": [case for w in written for case in w.cases],
            "test_sets": [{"index": w.index, "tokens": w.tokens, "cases": len(w.cases)} for w in written],
            "check": self.check.command if self.check is not None else None,
        }


def code_testing(
    question: str, conf: dict[str, Any], signals: str | None, check: Check | None
) -> CodeTesting:
    """How a code question's candidates are tested: the examples it states, the tests the model writes
    (the profile's `code:` section, `conf`), --code-tests (`signals`) and --check."""
    signals = signals if signals is not None else str(conf["tests"])
    if signals not in SIGNALS:
        raise UsageError(f"unknown --code-tests '{signals}'", f"choose one of: {', '.join(SIGNALS)}")
    entry = entry_point(question)
    messages: tuple[dict[str, str], ...] = ()
    prefill = ""
    if entry is not None:
        tests = load_aux_prompt("tests", ("system", "template"), optional=("prefill",))
        user = tests["template"].replace("{question}", question).replace("{entry}", entry)
        messages = ({"role": "system", "content": tests["system"].strip()}, {"role": "user", "content": user})
        prefill = tests["prefill"].replace("{entry}", entry)
    width = conf["width"]
    return CodeTesting(
        signals=signals,
        examples=tuple(extract_examples(question, entry)),
        context=question_code(question),
        entry=entry,
        test_samples=int(conf["test_samples"]),
        write_tests=str(conf["write_tests"]),
        test_max_tokens=int(conf["test_max_tokens"]),
        test_messages=messages,
        test_prefill=prefill,
        per_case_s=float(conf["case_timeout_s"]),
        check=check,
        width=None if width == "auto" else width if width == "grow" else int(width),
        greedy_first=bool(conf["greedy_first"]),
        rates=(float(conf["confidence"]["examples_pass"]), float(conf["confidence"]["examples_fail"])),
    )


@dataclass
class _Tested:
    """One candidate's runs so far: the report they make, and how many of its runs are still going."""

    candidate: Candidate
    report: CodeReport = field(default_factory=CodeReport)
    running: int = 0
    worst: str = "ok"


class CodeRunner:
    """Runs code candidates against the run's cases (and --check) on a small pool of sandboxed runs."""

    def __init__(self, testing: CodeTesting) -> None:
        self.testing = testing
        self.examples: list[Case] = list(testing.run_examples)
        self.generated: list[Case] = []
        self.pool: ExecutionPool[tuple[int, str, int, int]] = ExecutionPool(WORKERS)
        self.jobs: dict[tuple[int, str, int, int], Any] = {}  # harness jobs, by pool key
        self.tested: dict[int, _Tested] = {}  # by candidate index: every candidate that had code
        self.pending: dict[int, Candidate] = {}  # by candidate index, while a run of it goes on

    def submit(self, c: Candidate) -> Candidate:
        """Start testing `c`; returns it as it stands meanwhile (or, without code, for good)."""
        code = extract_program(c.text)
        if code is None:
            return replace(c, kind="code", execution=Execution("no program"))
        c = replace(c, kind="code", answer=code, execution=Execution("running"))
        entry = self.tested[c.index] = _Tested(c)
        self._run(entry, "examples", self.examples, 0)
        self._run(entry, "generated", self.generated, 0)
        if self.testing.check is not None:
            argv, kwargs = self.testing.check.job(c.text)
            self.pool.submit((c.index, "check", 0, 0), argv, **kwargs)
            entry.running += 1
        if not entry.running:  # nothing to run it against (yet): tested, with no result
            return self._settled(entry)
        self.pending[c.index] = c
        return c

    def add_generated(self, cases: Sequence[Case]) -> None:
        """The model wrote more tests: every candidate with code runs them too."""
        start = len(self.generated)
        self.generated.extend(cases)
        for entry in self.tested.values():
            self._run(entry, "generated", self.generated[start:], start)
            self.pending[entry.candidate.index] = replace(entry.candidate, execution=Execution("running"))

    def _run(self, entry: _Tested, kind: str, cases: Sequence[Case], start: int) -> None:
        from ttc_cli.execution import harness

        if not cases:
            return
        code = entry.candidate.answer or ""
        t = self.testing
        job = harness.job(code, cases, context=t.context, per_case_s=t.per_case_s, entry=t.entry)
        key = (entry.candidate.index, kind, start, start + len(cases))
        self.jobs[key] = job
        self.pool.submit(key, job.argv, **job.kwargs)
        entry.running += 1

    def ready(self, wait: float = 0.0) -> list[Candidate]:
        """Candidates whose runs have all ended since the last call (waiting up to `wait` s for one)."""
        ended = self.pool.wait(wait) if wait > 0 else self.pool.done()
        out = []
        for key, outcome in ended:
            entry = self.tested[key[0]]
            self._merge(entry, key, outcome)
            entry.running -= 1
            if entry.running == 0:
                self.pending.pop(key[0], None)
                out.append(self._settled(entry))
        return out

    def _merge(self, entry: _Tested, key: tuple[int, str, int, int], outcome: Outcome) -> None:
        _, kind, start, end = key
        r = entry.report
        if kind == "check":
            entry.report = replace(
                r, check=outcome.status, check_output=(outcome.stdout + outcome.stderr)[-2000:]
            )
            return
        job = self.jobs.pop(key)
        got = tuple((x.status, x.output) for x in job.results(outcome))
        if outcome.status in _WORST and _WORST.index(outcome.status) < _rank(entry.worst):
            entry.worst = outcome.status
        if kind == "examples":
            entry.report = replace(r, examples=got)
        else:  # in the order the tests arrived, whatever order their runs end in
            have = list(r.generated) + [("not run", "")] * max(0, end - len(r.generated))
            have[start:end] = got
            entry.report = replace(r, generated=tuple(have))

    def _settled(self, entry: _Tested) -> Candidate:
        r = entry.report
        # Code that fails the question's own examples is wrong whatever else agrees with it: it casts no
        # vote, so agreement among wrong candidates never ends a run nor outvotes a right one.
        trusted = uses_examples(self.testing.signals) and r.examples
        key = signature(r) if not trusted or r.examples_passed == len(r.examples) else None
        entry.candidate = replace(
            entry.candidate,
            tests=r,
            answer_key=key,
            execution=Execution(entry.worst, r.summary()),
        )
        return entry.candidate

    def cancel(self) -> list[Candidate]:
        """Kill every run still going; a candidate tested before keeps what it had, the rest are cancelled."""
        self.pool.close(cancel=True)
        out = []
        for index in list(self.pending):
            entry = self.tested[index]
            had = entry.report.examples or entry.report.generated or entry.report.check is not None
            out.append(
                self._settled(entry) if had else replace(entry.candidate, execution=Execution("cancelled"))
            )
        self.pending.clear()
        return out

    def close(self) -> None:
        self.pool.close(cancel=True)


def _rank(status: str) -> int:
    return _WORST.index(status) if status in _WORST else len(_WORST)


def choose_code(
    cands: list[Candidate],
    testing: CodeTesting,
    by: str,
    drawn: str,
    stopped_because: str,
    early_stop: EarlyStop | None,
    votes: tuple[Vote, ...] = (),
) -> Final:
    """The code to answer with. `by`: "agreement" (best-of-n: the examples passed, then CodeT's dual
    agreement) or "vote" (self-consistency: the examples passed, then the largest group of equal
    behaviour); `drawn` says how the candidates were drawn."""
    agreement, groups = dual_agreement(cands), output_groups(cands)
    tested = [c for c in cands if c.tests is not None]
    with_code = [c for c in cands if c.answer is not None] or [c for c in cands if c.text] or cands
    best = max(with_code, key=lambda c: (rank_key(c, testing.signals, by, agreement, groups), -c.index))
    return Final(
        answer=best.answer if best.answer is not None else best.text,
        response=best.text,
        selection=f"{drawn}: {_verdict(best, testing, by, agreement, groups, len(tested))}",
        stopped_because=stopped_because,
        candidates=tuple(cands),
        chosen=best.index,
        early_stop=early_stop,
        votes=votes,
        confidence=code_confidence(best, testing.signals, groups, len(tested), testing.rates)
        if tested
        else None,
    )


def _verdict(
    c: Candidate, t: CodeTesting, by: str, agreement: dict[int, float], groups: dict[int, int], tested: int
) -> str:
    """Why `c` was chosen, in words and figures."""
    r = c.tests
    if r is None:
        return "no candidate's code could be tested; the most likely one, untested"
    said = []
    if r.check is not None:
        said.append("it passed --check" if r.check == "ok" else f"--check: {r.check} (none passed)")
    if uses_examples(t.signals) and r.examples:
        said.append(f"{r.examples_passed}/{len(r.examples)} of the question's examples")
    if by == "agreement" and uses_generated(t.signals) and r.generated:
        passed, score = len(r.generated_passed), agreement.get(c.index, 0.0)
        said.append(f"{passed}/{len(r.generated)} generated tests, dual agreement {score:g}")
    if groups.get(c.index):
        said.append(f"{groups[c.index]} of {tested} tested candidates behave the same")
    return "; ".join(said) if said else "no test to run it against; the most likely candidate"
