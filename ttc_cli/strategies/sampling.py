"""Shared by the sampling strategies: N candidates from one prefill, decoded in batches, stopped early.

The prompt is evaluated once; each candidate is a fork of it with its own seeded sampler, and all live
candidates advance together in one forward pass per step. Finished candidates release their cache at once.

With early stopping on, at most `width` candidates decode at once and a new one starts as one finishes:
a stop decided after the k-th sample then saves the tokens of every sample not yet started, whereas with
all N in flight it would save only their unfinished tails (samples also finish shortest-first in a batch,
which biases early votes). After each finished candidate the vote is checked (`VoteStop`); with the
`deepconf` rule every token of a live trace also updates its group confidence (`TraceFilter`), and a trace
that falls below the warm-up threshold is cancelled mid-way.

Candidates that answer with a program (`--task program`, every other one with `--task hybrid`, which
forks them from a second prompt root) or with code (`--task code`, `--check`) are handed to the sandbox the
moment they end (`programs.ProgramRunner`, `code.CodeRunner`) and decoding goes on; between steps the runs
that finished come back and only then vote, so the stop rule decides on executed answers, and a stop kills
the runs still going. A code question also has the model write tests: those samples start first, from a
third prompt root, and are not candidates; when one ends its tests are parsed and every candidate runs them.

This module is longer than most here: it is the one loop every sampling strategy runs, and
its steps (start, decode, filter, settle, execute, vote, decide, stop) share one state that reads best
in one place, each step a short method.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace

from ttc_cli.answers.behaviour import passes_everything
from ttc_cli.answers.confidence import token_confidence
from ttc_cli.answers.examples import extract_examples, parse_asserts
from ttc_cli.answers.extract import extract_answer
from ttc_cli.answers.probing import ProbeBook
from ttc_cli.answers.scoring import vote_weight
from ttc_cli.answers.stopping import RULE_DEEPCONF, StopDecision, TraceFilter, VoteStop
from ttc_cli.answers.voting import VoteTally
from ttc_cli.engine.answer_probe import ProbeCost, probe
from ttc_cli.engine.forcing import BudgetForcing, forced_cells, prompt_opens_thinking
from ttc_cli.engine.sequence import (
    FINISH_BUDGET,
    FINISH_CANCELLED,
    FINISH_INTERRUPTED,
    FINISH_LENGTH,
    FINISH_PROBED,
    FINISH_STOP,
    KvNeeds,
    Sequence,
)
from ttc_cli.events import (
    Candidate,
    CandidateExecuted,
    CandidateFinished,
    CandidateStarted,
    EarlyStop,
    Event,
    Execution,
    GeneratedTests,
    Phase,
    Probed,
    ProbeReading,
    ThinkingForced,
    TokensGenerated,
    TraceCancelled,
    VotesUpdated,
    WidthChosen,
)
from ttc_cli.strategies.candidates import from_sequence, stopped_because
from ttc_cli.strategies.code import CodeRunner
from ttc_cli.strategies.context import RunContext
from ttc_cli.strategies.programs import LIMITS, ProgramRunner
from ttc_cli.strategies.width import NO_CURVE_WIDTH, Width, choose_width, votes_to_stop

CUT_SHORT = (FINISH_BUDGET, FINISH_INTERRUPTED)
WRITER_SEED = 100_000  # test writer j samples with seed + WRITER_SEED + j, apart from every candidate's

# Decides after each finished candidate: (tally, finished, total) -> a decision to stop, or None.
Stopper = Callable[[VoteTally, int, int], StopDecision | None]


@dataclass
class Sampled:
    """What a `sample` run produced, filled in as it goes."""

    candidates: list[Candidate] = field(default_factory=list)
    tally: VoteTally = field(default_factory=VoteTally)
    early_stop: EarlyStop | None = None
    unstarted: int = 0  # samples never started because the budget ran out first
    limit: int | None = None  # a stopper may lower N while sampling runs (`auto` does)

    def target(self, n: int) -> int:
        return n if self.limit is None else min(n, self.limit)

    def stopped_because(self, ctx: RunContext) -> str:
        """A candidate cut by the budget, or a sample never started, means the budget ended the run."""
        cut = any(c.finish_reason == FINISH_BUDGET for c in self.candidates) or self.unstarted > 0
        return stopped_because(ctx, done=not cut, early_stop=self.early_stop is not None)


def needs(ctx: RunContext) -> KvNeeds:
    """What N samples hold at once at most: the shared prompt, each fork's copy of its last token, every
    token the budget lets them generate, and what budget forcing appends (from its texts' real tokens);
    best-of-n judged by a model adds its judgements."""
    n, max_tokens = ctx.samples, ctx.sampling.max_tokens
    generated = min(ctx.budget.limit, n * max_tokens)
    forced = forced_cells(ctx.engine, ctx.thinking, max_tokens) if ctx.thinking is not None else 0
    need = KvNeeds(len(ctx.prompt_tokens) + n * (1 + forced) + generated + 1, n + 1)
    if ctx.program_tokens is not None:  # hybrid: the program prompt is a second root
        need += KvNeeds(len(ctx.program_tokens), 1)
    if ctx.test_tokens is not None and ctx.code is not None:  # the test writers' root and forks
        writers = ctx.code.test_samples
        need += KvNeeds(len(ctx.test_tokens) + writers * (1 + ctx.code.test_max_tokens), 1 + writers)
    if ctx.probing is not None and probes_chains(ctx):  # a probe round forks every running chain
        need += KvNeeds(n * (1 + len(ctx.probe_cue) + ctx.probing.tokens), n)  # its tail, the cue, the probe
    if ctx.search.verify_samples and ctx.search.verifier == "judge":
        from ttc_cli.verifiers.judge import judge_needs

        need += judge_needs(ctx.verifier_engine or ctx.engine, ctx.question, n, generated)
    return need


def probes_chains(ctx: RunContext) -> bool:
    """Whether this run probes its running chains: probing is on, the prompt has an answer cue, early
    stopping could use what they say, a chain answers in text (not code: its tests decide), and the
    engine can continue a partial reply (a server needs --tokenizer: a chat request cannot)."""
    return (
        ctx.probing is not None
        and ctx.engine.continues_text
        and bool(ctx.probe_cue)
        and ctx.early is not None
        and ctx.samples > 1
        and ctx.code is None
        and ctx.program_share < 1
    )


def default_stopper(ctx: RunContext) -> Stopper | None:
    if ctx.early is None:
        return None
    rule = VoteStop(ctx.early.rule, ctx.early.confidence)
    return lambda tally, finished, total: rule.check([v.weight for v in tally.snapshot()], finished, total)


def sample(
    ctx: RunContext,
    samples: int,
    out: Sampled,
    temperature: float | None = None,
    show_votes: bool = False,
    stopper: Stopper | None = None,
) -> Iterator[Event]:
    """Generate up to `samples` candidates into `out` (the run's -n, or fewer: `auto`'s route), yielding
    progress, finished candidates and early stops.

    `stopper` defaults to the run's early-stopping rule; pass one to decide differently (`auto` does).
    """
    yield from Sampler(ctx, samples, out, temperature, show_votes, stopper or default_stopper(ctx)).run()


class Sampler:
    """Self-consistency's loop with DeepConf's online filter, one method per line of the pseudocode:

    start samples until `width` run at once                       start_more
    until no sample runs:
        decode one token of every running sample                  (the decoder)
        report it; cancel a trace whose confidence fell too low   on_tokens
        for every sample that ended: count its vote, ask the rule on_finished
            (a program's vote waits for its run in the sandbox)
        for every program that ran: count its vote, ask the rule  on_executed
        once the rule says stop, cancel the running ones          stop
        start more samples in the places that freed               start_more
    """

    def __init__(
        self,
        ctx: RunContext,
        samples: int,
        out: Sampled,
        temperature: float | None,
        show_votes: bool,
        stopper: Stopper | None,
    ) -> None:
        self.ctx, self.samples, self.out = ctx, samples, out
        self.show_votes, self.stopper = show_votes, stopper
        base = ctx.sampling
        self.params = base if temperature is None else replace(base, temperature=temperature)
        early = ctx.early
        # How many decode at once: all N without early stopping; with it, a width chosen from the engine's
        # measured throughput and the votes so far (width.py), or the one --width / the profile fixes.
        self.width = 0
        self.votes_seen = -1  # finished votes the width was last chosen from
        self.rule = VoteStop(early.rule, early.confidence) if early is not None else None
        deepconf = early is not None and early.rule == RULE_DEEPCONF and samples > 1
        self.traces = TraceFilter(early.warmup, early.window, early.keep) if early and deepconf else None
        self.index: dict[Sequence, int] = {}  # sequence -> candidate index (= its seed offset)
        self.started = 0
        self.stopping = False
        self.opens_thinking = ctx.thinking is not None and prompt_opens_thinking(
            ctx.engine, ctx.prompt_tokens, ctx.thinking
        )
        self.programs: ProgramRunner | CodeRunner | None = None
        if ctx.code is not None:
            self.programs = CodeRunner(ctx.code)
        elif ctx.program_share > 0:
            self.programs = ProgramRunner(ctx.program_limits or LIMITS)
        self.position: dict[int, int] = {}  # candidate index -> its place in out.candidates
        self.writers: dict[Sequence, int] = {}  # a code question's test-writing samples -> their number
        # Answer probes: what each running text chain would answer now, read every `every` tokens.
        self.book = ProbeBook(ctx.probing) if ctx.probing is not None and probes_chains(ctx) else None
        if self.book is not None:
            self.probe_cost = ProbeCost()
            self.cue_text = b"".join(ctx.engine.token_bytes(t) for t in ctx.probe_cue).decode(
                errors="replace"
            )

    def is_program(self, i: int) -> bool:
        """Whether sample i is run when it ends: all of them with --task program or code, every other one
        (or the profile's share, spread evenly) with --task hybrid."""
        share = self.ctx.program_share
        return self.ctx.code is not None or (share > 0 and int((i + 1) * share) > int(i * share))

    def run(self) -> Iterator[Event]:
        ctx, engine = self.ctx, self.ctx.engine
        prompts = {False: ctx.prompt_tokens, True: ctx.program_tokens or ctx.prompt_tokens}
        kinds = sorted({self.is_program(i) for i in range(self.samples)})
        self.roots: dict[bool | str, Sequence] = {}
        try:
            for kind in kinds:
                yield Phase("prefill", f"{len(prompts[kind])} prompt tokens")
                self.roots[kind] = engine.prefill(prompts[kind], ctx.stop)
            self.decoder = engine.decoder(ctx.budget, ctx.stop)
            yield from self.start_writers()
            yield from self.start_more()
            while self.decoder.live or self.running:
                if self.decoder.live:
                    step = self.decoder.step()
                    cancelled = yield from self.on_tokens(step.sampled)
                    for seq, low in [(seq, None) for seq in step.finished] + cancelled:
                        yield from (self.on_tests(seq) if seq in self.writers else self.on_finished(seq, low))
                    if self.book is not None and not self.stopping:
                        yield from self.probe_round()
                # Programs that ran while that step decoded vote now; with nothing left to decode, wait.
                yield from self.on_executed(wait=0.0 if self.decoder.live else 0.05)
                if self.stopping:
                    yield from self.stop()
                elif ctx.interrupted or ctx.budget.expired:
                    # Ctrl-C or the deadline: the decoder ended the samples; the programs that ran by now
                    # vote, and those still running end here.
                    yield from self.kill_programs()
                yield from self.start_more()
        finally:
            for root in self.roots.values():
                engine.release(root)
            for seq in [*self.index, *self.writers]:
                engine.release(seq)
            if self.programs is not None:
                self.programs.pool.close(cancel=True)
        yield from self.close()

    @property
    def running(self) -> int:
        return len(self.programs.pending) if self.programs is not None else 0

    def start_writers(self) -> Iterator[Event]:
        """A code question's test-writing samples, started before the candidates so their tests are
        there when the first candidates end."""
        ctx, code = self.ctx, self.ctx.code
        if code is None or ctx.test_tokens is None or not code.writes_tests or self.samples == 1:
            return  # one sample has nothing to be chosen from
        yield Phase("prefill", f"{len(ctx.test_tokens)} prompt tokens (tests)")
        root = self.roots["tests"] = ctx.engine.prefill(ctx.test_tokens, ctx.stop)
        for j in range(code.test_samples):
            if ctx.interrupted or ctx.budget.remaining <= 0:
                break
            seq = ctx.engine.fork(root)
            seed = self.params.seed + WRITER_SEED + j
            self.decoder.add(
                seq, replace(self.params, seed=seed, max_tokens=code.test_max_tokens, grammar="")
            )
            self.writers[seq] = j

    @property
    def in_flight(self) -> int:
        """Candidates decoding now (test writers are not candidates); for code, also those being tested,
        since a pass among them may end the run before a new one would get far."""
        decoding = len(self.decoder.live) - sum(s in self.writers for s in self.decoder.live)
        return decoding + (self.running if self.ctx.code is not None else 0)

    def start_more(self) -> Iterator[Event]:
        ctx, out = self.ctx, self.out
        yield from self.choose_width()
        while self.started < out.target(self.samples) and self.in_flight < self.width and not self.stopping:
            if ctx.interrupted or ctx.budget.remaining <= 0:
                break
            seq = ctx.engine.fork(self.roots[self.is_program(self.started)])
            params = self.params
            if self.started == 0 and ctx.code is not None and ctx.code.greedy_first:
                params = replace(params, temperature=0.0)  # the model's best guess, tested first
            if self.is_program(self.started) and ctx.program_tokens is not None:  # hybrid: its own grammar
                params = replace(params, grammar=ctx.program_grammar)
            self.decoder.add(seq, replace(params, seed=params.seed + self.started))
            self.index[seq] = self.started
            if ctx.thinking is not None:
                seq.forcing = BudgetForcing(ctx.thinking)
                if self.opens_thinking:
                    seq.forcing.starts_inside()
            if self.traces is not None:
                self.traces.start(self.started)
            yield CandidateStarted(self.started)
            self.started += 1

    def choose_width(self) -> Iterator[Event]:
        """Choose again how many samples decode at once, when a vote has come in since the last choice."""
        ctx, out, early = self.ctx, self.out, self.ctx.early
        known = len(out.candidates) - self.running
        left = out.target(self.samples) - len(out.candidates)  # still to decode, those decoding included
        if known == self.votes_seen or left <= 0:
            return
        self.votes_seen = known
        if early is None or self.samples == 1 or self.rule is None:
            choice, policy = Width(self.samples, "no early stop: every sample at once"), "all"
        elif early.width is None and ctx.code is not None and ctx.code.width == "grow":
            wave = 1 << (known + 1).bit_length() - 1  # 1, then 2, 4, 8: each wave twice the last
            choice, policy = Width(min(self.samples, wave), "code: each wave twice the last"), "grow"
        elif early.width is None and ctx.code is not None and isinstance(ctx.code.width, int):
            choice, policy = Width(min(self.samples, ctx.code.width), "the profile's code.width"), "fixed"
        elif early.width is not None:
            choice, policy = (
                Width(min(self.samples, early.width), "--width or the profile's early_stop.width"),
                "fixed",
            )
        elif self.book is not None:
            # Probes bring votes before chains end, so a stop needs no narrow width to save time, and every
            # sample at once decodes fastest; a server still serves only so many at once.
            most = min(self.samples, ctx.engine.parallel or self.samples)
            choice, policy = Width(most, "answer probes: every sample at once"), "probes"
        elif ctx.throughput is None:
            if ctx.engine.parallel is not None:
                served = f"the server serves {ctx.engine.parallel} at once"
                choice, policy = Width(min(self.samples, ctx.engine.parallel), served), "fixed"
            else:
                none = "the engine has no throughput curve"
                choice, policy = Width(min(self.samples, NO_CURVE_WIDTH), none), "fixed"
        else:
            counts = [v.weight for v in out.tally.snapshot()]
            to_stop = votes_to_stop(self.rule, counts, known, out.target(self.samples))
            choice = choose_width(ctx.throughput, left, to_stop, max(counts, default=0.0), known)
            policy = "measured"
            if choice.width >= left:  # all that is left at once: one width as the rest shrinks
                choice = Width(self.samples, f"all {left} left at once: {choice.detail.split(': ', 1)[-1]}")
        if min(choice.width, left) != min(self.width, left):  # a change that changes what may start
            self.width = choice.width
            yield WidthChosen(choice.width, policy, choice.detail, known)

    def on_tokens(
        self, sampled: tuple[tuple[Sequence, int], ...]
    ) -> Generator[Event, None, list[tuple[Sequence, float | None]]]:
        """Report one decoded token per running sample; returns the traces the filter cancelled."""
        cancelled: list[tuple[Sequence, float | None]] = []
        if not sampled:
            return cancelled
        sampled = tuple((s, t) for s, t in sampled if s not in self.writers)
        progress = tuple((self.index[s], s.n_generated) for s, _ in sampled)
        yield TokensGenerated(self.ctx.budget.spent, progress)
        for seq, _ in sampled:
            forcing = seq.forcing
            if forcing is not None and len(forcing.actions) > forcing.reported:
                for action, at in forcing.actions[forcing.reported :]:
                    yield ThinkingForced(self.index[seq], action, at)
                forcing.reported = len(forcing.actions)
        if self.traces is not None:
            for seq, _ in sampled:
                if seq.finish_reason is None and seq.top_logprobs:
                    low = self.traces.observe(self.index[seq], token_confidence(seq.top_logprobs[-1]))
                    if low is not None:
                        self.decoder.cancel(seq)
                        cancelled.append((seq, low))
        return cancelled

    def on_finished(self, seq: Sequence, low: float | None) -> Iterator[Event]:
        """A sample ended (or its trace was cancelled at confidence `low`): count it, then ask the rule."""
        if low is not None:
            assert self.traces is not None and self.traces.threshold is not None
            yield TraceCancelled(self.index[seq], seq.n_generated, low, self.traces.threshold)
        c = yield from self._settle(seq)
        # A sample cut by the budget or Ctrl-C says nothing about the answer: no decision on it. Nor does
        # a program that has not run yet: its decision waits for the run.
        if c.finish_reason not in CUT_SHORT and not self._is_running(c):
            yield from self.decide()

    def on_tests(self, seq: Sequence) -> Iterator[Event]:
        """A test-writing sample ended: its asserts become cases every candidate with code runs."""
        code, j = self.ctx.code, self.writers[seq]
        assert code is not None and code.entry is not None and isinstance(self.programs, CodeRunner)
        done = seq.finish_reason not in (*CUT_SHORT, FINISH_CANCELLED)
        text = (code.test_prefill if self.ctx.engine.continues_text else "") + seq.text
        if seq.finish_reason == FINISH_LENGTH:  # its last line may be cut mid-assert: a wrong test
            text = text[: text.rfind("\n") + 1]
        # Asserts, as asked; a model that writes doctest lines instead has written tests too.
        cases = parse_asserts(text, code.entry) if done else []
        if done and not cases:
            cases = [replace(c, source="generated") for c in extract_examples(text, code.entry)]
        self.ctx.engine.release(seq)
        # A test the run already has (the question's own examples, which models often copy) adds nothing.
        known = {c.key() for c in [*self.programs.examples, *self.programs.generated]}
        cases = [c for c in cases if c.key() not in known]
        yield GeneratedTests(j, tuple(c.text or c.call for c in cases), seq.n_generated)
        if cases and not self.stopping:
            self.programs.add_generated(cases)
            for index in self.programs.pending:  # back to running until they have run these too
                self.out.candidates[self.position[index]] = self.programs.pending[index]

    def on_executed(self, wait: float) -> Iterator[Event]:
        """Programs that have run: their candidates take their printed answers, vote, and the rule decides."""
        if self.programs is None:
            return
        for c in self.programs.ready(wait):
            self.out.candidates[self.position[c.index]] = c
            yield CandidateExecuted(c)
            if self.ctx.code is not None:  # its behaviour may have changed with new tests: count again
                yield from self._recount()
            else:
                yield from self._vote(c)
            yield from self.decide()
            code = self.ctx.code
            passed = code is not None and c.tests is not None and passes_everything(c.tests, code.signals)
            if passed and self.ctx.early is not None and not self.stopping:
                self.stopping = True
                what = c.tests.summary() if c.tests is not None else ""
                yield self._early_stop(
                    StopDecision("tests", f"candidate #{c.index} passed every test ({what})")
                )

    def decide(self) -> Iterator[Event]:
        """Ask the stop rule, counting as finished every sample whose vote is known."""
        out = self.out
        if self.stopping or self.stopper is None:
            return
        tally, finished, probed = out.tally, len(out.candidates) - self.running, 0
        if self.book is not None:
            tally, probed = self.with_probes(tally)
        # A probed vote is not a finished sample: the samples left still count as able to change the winner.
        decision = self.stopper(tally, finished, out.target(self.samples))
        if decision is not None:
            self.stopping = True
            if probed:
                detail = f"{decision.detail} ({probed} of the votes probed from running samples)"
                decision = replace(decision, detail=detail)
            yield self._early_stop(decision)

    def with_probes(self, tally: VoteTally) -> tuple[VoteTally, int]:
        """The tally with each running chain's settled probed answer added (weighted as the profile says),
        and how many were added."""
        assert self.book is not None
        votes = [self.book.settled(self.index[s]) for s in self.decoder.live if s in self.index]
        settled = [v for v in votes if v is not None]
        if not settled:
            return tally, 0
        out = copy.deepcopy(tally)
        for key, answer in settled:
            out.add(key, answer, self.book.probing.weight)
        return out, len(settled)

    def probe_round(self) -> Iterator[Event]:
        """Probe the running text chains that are due; end those whose probes agree enough, then ask the
        stop rule with the settled probes counted."""
        ctx, book = self.ctx, self.book
        assert book is not None
        due = [
            s
            for s in self.decoder.live
            if s in self.index
            and not self.is_program(self.index[s])
            and book.due(self.index[s], s.n_generated)
        ]
        if not due or ctx.interrupted or ctx.budget.remaining <= 0:
            return
        cost = self.probe_cost
        before = cost.tokens
        texts = probe(ctx.engine, ctx.budget, due, ctx.probe_cue, book.probing.tokens, cost, ctx.stop)
        readings = []
        for seq, text in zip(due, texts, strict=True):
            i = self.index[seq]
            found = extract_answer(self.cue_text + text, ctx.choices) if text.strip() else None
            book.record(i, seq.n_generated, found.key if found else None, found.text if found else None)
            readings.append(
                ProbeReading(i, seq.n_generated, found.text if found else None, bool(book.settled(i)))
            )
        yield Probed(tuple(readings), cost.tokens - before, ctx.budget.spent)
        ended = False
        for seq in due:
            if seq.finish_reason is None and book.may_end(self.index[seq]) is not None:
                self.decoder.cancel(seq, FINISH_PROBED)
                yield from self._settle(seq)
                ended = True
        if ended or any(r.settled for r in readings):
            yield from self.decide()

    def stop(self) -> Iterator[Event]:
        """The answer is settled: the samples still decoding are cancelled and count as they stand, the
        test writers are dropped, and the programs still running are killed."""
        for seq in list(self.decoder.live):
            probed = self.book is not None and seq in self.index and self.book.settled(self.index[seq])
            self.decoder.cancel(seq, FINISH_PROBED if probed else FINISH_CANCELLED)
            yield from (self.on_tests(seq) if seq in self.writers else self._settle(seq))
        yield from self.kill_programs()

    def kill_programs(self) -> Iterator[Event]:
        if self.programs is not None and self.programs.pending:
            for c in self.programs.cancel():
                self.out.candidates[self.position[c.index]] = c
                yield CandidateExecuted(c)

    def close(self) -> Iterator[Event]:
        ctx, out = self.ctx, self.out
        if not self.stopping and not ctx.interrupted and ctx.budget.remaining <= 0:
            out.unstarted = max(0, out.target(self.samples) - self.started)
        if not out.candidates:
            # Stopped before any sample started (Ctrl-C during the prefill): an empty candidate, so every
            # strategy still has one to report instead of special-casing an empty pool.
            reason = FINISH_INTERRUPTED if ctx.interrupted else FINISH_BUDGET
            empty = Candidate(index=0, text="", tokens=0, finish_reason=reason, mean_logprob=0.0)
            out.candidates.append(empty)
            yield CandidateFinished(empty)

    def _settle(self, seq: Sequence) -> Generator[Event, None, Candidate]:
        """Turn an ended sample into a candidate, free its cache, and count its vote (a program's once
        it has run)."""
        i, out = self.index[seq], self.out
        program = self.programs is not None and self.is_program(i)
        c = from_sequence(self.ctx, i, seq, program=program)
        if c.finish_reason == FINISH_PROBED and self.book is not None:
            key, answer = self.book.settled(i) or self.book.may_end(i) or (None, None)
            c = replace(c, answer=answer, answer_key=key)
        self.ctx.engine.release(seq)
        if self.programs is not None and program:
            # Only a program the model finished writing (or the length cap cut) runs; one cut by a stop,
            # the budget or Ctrl-C would answer nothing the run still asks.
            ran = seq.finish_reason in (FINISH_STOP, FINISH_LENGTH)
            unrun = replace(c, kind="code" if self.ctx.code else "program", execution=Execution("not run"))
            c = self.programs.submit(c) if ran else unrun
        self.position[i] = len(out.candidates)
        out.candidates.append(c)
        if self.traces is not None:
            # A trace cut by its length cap still shows how confident the model was: it warms up the filter.
            self.traces.finish(i, counted=c.finish_reason in (FINISH_STOP, FINISH_LENGTH))
        yield CandidateFinished(c)
        yield from self._vote(c)
        return c

    def _vote(self, c: Candidate) -> Iterator[Event]:
        if c.votes:
            weight = vote_weight(c.mean_logprob) if self.out.tally.weighted else 1.0
            self.out.tally.add(c.answer_key or "", c.answer or "", weight)
            if self.show_votes:
                yield VotesUpdated(self.out.tally.snapshot())

    def _recount(self) -> Iterator[Event]:
        """Count every vote again: code votes by behaviour, which new tests can split or join."""
        tally = self.out.tally = VoteTally(weighted=self.out.tally.weighted)
        for c in self.out.candidates:
            if c.votes:
                weight = vote_weight(c.mean_logprob) if tally.weighted else 1.0
                tally.add(c.answer_key or "", f"code like #{c.index}", weight)
        if self.show_votes:
            yield VotesUpdated(tally.snapshot())

    def _is_running(self, c: Candidate) -> bool:
        return c.execution is not None and c.execution.status == "running"

    def _early_stop(self, decision: StopDecision) -> EarlyStop:
        ctx, out, n = self.ctx, self.out, self.out.target(self.samples)
        done = [c.tokens for c in out.candidates if c.finish_reason == FINISH_STOP]
        typical = sum(done) / len(done) if done else ctx.sampling.max_tokens
        live = [s for s in self.decoder.live if s not in self.writers]
        in_flight = sum(max(0.0, typical - s.n_generated) for s in live)
        not_started = n - len(out.candidates) - len(live)
        # What the rest would have cost, capped by what the budget could still have paid for.
        saved = min(round(typical * not_started + in_flight), ctx.budget.remaining)
        finished = len(out.candidates)
        out.early_stop = EarlyStop(decision.rule, decision.detail, finished, n, ctx.budget.spent, saved)
        return out.early_stop
