"""From a question and the command line's options to a validated plan: the one place where flags, the
profile and its defaults meet.

`build` checks everything that needs no model (strategy, budget, N, sampling, early stopping, budget
forcing, search knobs, YAML) so a mistake fails fast, before a model loads. An option left out (None)
takes the profile's value; the profile holds every default (see `profile.py`), so nothing here has a
fallback of its own. `Plan` holds what was resolved, never the options or the profile it came from,
so each setting is read in one place. `runner.prepare` then fits the plan to a loaded model.

This module is longer than most because every setting of a run is resolved here, once, and
checked before a model loads; spread out, a setting would again be read in several places.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ttc_cli.answers.examples import stub_code
from ttc_cli.answers.probing import Probing
from ttc_cli.answers.scoring import SCORERS
from ttc_cli.answers.stopping import RULES, EarlyStopping
from ttc_cli.budget import TokenBudget, parse_seconds
from ttc_cli.engine.forcing import Thinking
from ttc_cli.engine.sequence import MAX_SEQUENCES, SamplingParams
from ttc_cli.errors import UsageError
from ttc_cli.execution import Limits
from ttc_cli.execution.check import Check
from ttc_cli.options import PlanOptions
from ttc_cli.profile import Profile, load_profile
from ttc_cli.strategies import STRATEGIES, Strategy, get_strategy, sampling_names
from ttc_cli.strategies.code import CodeTesting, code_testing
from ttc_cli.strategies.programs import LIMITS
from ttc_cli.strategies.search_params import PER_PRESET, PICKS, WORDS, SearchParams
from ttc_cli.task_prompts import HYBRID, PromptTemplate, guess_task, load_prompt
from ttc_cli.verifiers import check_verifier
from ttc_cli.verifiers.base import AGGREGATES

MAX_SAMPLES = MAX_SEQUENCES - 1  # one sequence holds the prompt
VOTES = ("majority", "weighted", "filtered")


@dataclass(frozen=True)
class Plan:
    """A validated request, still independent of any model."""

    question: str
    strategy: Strategy
    budget_limit: int
    budget_preset: str | None
    deadline_s: float | None  # --deadline or --budget 30s: seconds the run may sample for
    samples: int
    sampling: SamplingParams
    prompt: PromptTemplate
    program_prompt: PromptTemplate | None  # the prompt whose replies are programs (--task program|hybrid)
    program_share: float  # of the samples, those that answer with a program
    code: CodeTesting | None  # a code question (--task code, --check): how candidates are tested
    vote: str  # self-consistency's vote (--vote)
    scorer: str  # best-of-n's score (--scorer)
    ctx: int | None  # --ctx: the KV cache size the user fixed; None: sized from the budget
    max_context: int  # the largest cache sized without --ctx (the profile's engine.max_context)
    routes: dict[str, int]  # auto: samples per difficulty (the profile's)
    greedy_confidence: tuple[float, float] | None  # greedy's fitted calibration (the profile's)
    program_limits: Limits  # what one program may use (the profile's execution limits)
    early: EarlyStopping | None
    probing: Probing | None  # answer probes (None: off, or no early stopping to use them)
    thinking: Thinking | None
    search: SearchParams
    warning: str | None = None  # said on stderr before the run: the budget may cut samples short

    @property
    def task(self) -> str:
        """The task as `--json` reports it: the prompt's name, or hybrid for two prompts in one pool."""
        two = self.program_prompt is not None and self.program_prompt is not self.prompt
        return HYBRID if two else self.prompt.name

    def refusal(self, continues: bool, logprobs: bool) -> str | None:
        """Why an engine could not run this plan: one that cannot continue a partial reply (a server
        without --tokenizer), or one without log-probabilities (a server that returns none)."""
        search = self.strategy.is_search and self.strategy.name != "refine"  # refine's turns are whole chats
        if not continues:
            if search:
                return f"{self.strategy.name} extends partial answers step by step"
            if self.thinking is not None:
                return "budget forcing edits the reply while it is written"
            # A prefill of the question's own stub ({code}) only saves tokens: it is left out, not refused.
            own = "{code}" not in self.prompt.prefill and self.prompt.prefill
            if own or (self.program_prompt is not None and self.program_prompt.prefill):
                return f"the prompt '{self.prompt.name}' starts the reply with its own text (prefill)"
        verifier = self.search.verifier
        if (search or self.search.verify_samples) and not verifier.startswith("cmd:"):
            if not continues:
                return f"the {verifier} verifier reads the model's probabilities of a partial reply"
            if not logprobs:
                return f"the {verifier} verifier reads log-probabilities, which this server does not return"
        return None

    @property
    def reply_start(self) -> str:
        """The prompt's `prefill` for this question: `{code}` is the question's code when it ends in a
        function to complete (`answers.examples.stub_code`), so the model writes only its body."""
        return self.prompt.prefill.replace("{code}", stub_code(self.question))

    def new_budget(self) -> TokenBudget:
        return TokenBudget(self.budget_limit, preset=self.budget_preset, deadline_s=self.deadline_s)


def build_each(question: str, names: list[str] | None, opts: PlanOptions) -> tuple[list[Plan], list[str]]:
    """A plan per strategy named (`compare -s`), or, when none is, per strategy that can run these
    options (with --task program the step-level searches cannot); the second list says what was left out."""
    if names:
        return [build(question, name, opts) for name in dict.fromkeys(names)], []
    plans, left_out, error = [], [], None
    for name in STRATEGIES:
        try:
            plans.append(build(question, name, opts))
        except UsageError as e:
            error = e
            left_out.append(f"leaving out {name}: {e.message}")
    if error is not None and not plans:
        raise error
    return plans, left_out


def user_check(opts: PlanOptions, strategy: Strategy) -> Check | None:
    """--check and its --check-file paths, checked before any model loads."""
    files = tuple(Path(f).resolve() for f in opts.check_files or ())
    if opts.check is None:
        if files:
            raise UsageError("--check-file needs --check", "add --check 'COMMAND' that tests the solution")
        return None
    if opts.verifier is not None:
        raise UsageError("--check and --verifier both choose the answer", "use one of the two")
    if not opts.check.strip():
        raise UsageError("--check is empty", "give the shell command that passes a right solution")
    if strategy.is_search:
        raise UsageError(
            f"--check chooses among whole solutions, which {strategy.name} does not sample",
            f"use {sampling_names()} (a search can use --verifier 'cmd:COMMAND')",
        )
    for f in files:
        if not f.exists():
            raise UsageError(f"--check-file {f}: no such file or directory", "name a file the check needs")
    return Check(opts.check, files)


def build(question: str, strategy_name: str, opts: PlanOptions) -> Plan:
    question = _checked_question(question)
    strategy = get_strategy(strategy_name)
    profile = load_profile(opts.profile)
    budget, preset = profile.budget(opts.budget)
    deadline = deadline_of(budget, opts)
    if opts.samples is not None and not 1 <= opts.samples <= MAX_SAMPLES:
        raise UsageError(
            f"-n/--samples must be between 1 and {MAX_SAMPLES}, got {opts.samples}",
            f"llama.cpp runs at most {MAX_SEQUENCES} sequences, one of them the prompt",
        )
    samples = (opts.samples or min(preset.samples, MAX_SAMPLES)) if strategy.takes_samples else 1
    if opts.vote not in VOTES:
        raise UsageError(f"unknown vote '{opts.vote}'", f"choose one of: {', '.join(VOTES)}")
    if opts.scorer not in SCORERS:
        raise UsageError(f"unknown scorer '{opts.scorer}'", f"choose one of: {', '.join(SCORERS)}")
    if opts.ctx is not None and opts.ctx < 64:
        raise UsageError(
            f"--ctx {opts.ctx} is too small", "use at least 64, or leave it out to size it from the budget"
        )
    check = user_check(opts, strategy)
    # --task auto: a search cannot run programs, so it reasons in text whatever the profile says
    numbers = "math" if strategy.is_search else str(profile.execution["auto_task"])
    task = ("code" if check else guess_task(question, numbers)) if opts.task == "auto" else opts.task
    if task == "code" and strategy.is_search and opts.task == "auto":
        task = "general"  # a search writes its answer step by step, and cannot test code
    prompt = load_prompt("math" if task == HYBRID else task)
    program = load_prompt("program") if task == HYBRID else prompt if prompt.answer == "program" else None
    share = float(profile.execution["hybrid_share"]) if task == HYBRID else 1.0 if program else 0.0
    if program is not None and strategy.is_search:
        raise UsageError(
            f"--task {task} runs programs, which the step-level searches do not",
            f"use {sampling_names()}, or another --task",
        )
    if program is not None and check is not None:
        raise UsageError(
            f"--check tests code, and --task {task} already judges by running programs", "use one of the two"
        )
    if prompt.answer == "code" and strategy.is_search:
        raise UsageError(
            f"--task {task} tests whole solutions, which {strategy.name} does not sample",
            f"use {sampling_names()} (a search can use --verifier 'cmd:COMMAND')",
        )
    testing = check or prompt.answer == "code"
    code = code_testing(question, profile.code, opts.code_tests, check) if testing else None
    if code is not None and "{code}" in prompt.prefill:  # the reply starts with the stub: the code's head
        code = replace(code, prefill=prompt.prefill.replace("{code}", stub_code(question)))
    if strategy.is_search and opts.width is not None:
        raise UsageError(
            f"--width is the samples decoding at once of a sampling strategy; {strategy.name} keeps beams",
            f"use --beams {opts.width}",
        )
    search = search_params(profile, preset.name, opts, prompt.step_delimiter, strategy.is_search)
    if not strategy.is_search and opts.verifier is not None:  # best-of-n by the verifier
        search = replace(search, verify_samples=True)
    sampling = sampling_params(profile, opts, preset.max_tokens, prompt.grammar)
    return Plan(
        question=question,
        strategy=strategy,
        budget_limit=budget.limit,
        budget_preset=budget.preset,
        deadline_s=deadline,
        samples=samples,
        sampling=sampling,
        prompt=prompt,
        program_prompt=program,
        program_share=share,
        code=code,
        vote=opts.vote,
        scorer=opts.scorer,
        ctx=opts.ctx,
        max_context=profile.max_context,
        routes=profile.auto,
        greedy_confidence=profile.greedy_confidence,
        program_limits=program_limits(profile.execution),
        early=early_stopping(profile, opts),
        probing=answer_probing(profile, opts),
        thinking=budget_forcing(profile, opts),
        search=search,
        warning=budget_warning(profile, opts, strategy, budget, samples, sampling.max_tokens),
    )


def deadline_of(budget: TokenBudget, opts: PlanOptions) -> float | None:
    """The run's deadline in seconds: --deadline, or the seconds --budget gave; never both."""
    if opts.deadline is None:
        return budget.deadline_s
    if budget.deadline_s is not None:
        raise UsageError(
            f"--budget {opts.budget} and --deadline {opts.deadline} both set a deadline",
            "use one: --budget 30s, or a token budget and --deadline (e.g. --budget high --deadline 30s)",
        )
    seconds = parse_seconds(opts.deadline) or parse_seconds(opts.deadline + "s")  # a bare number: seconds
    if seconds is None:
        raise UsageError(f"invalid --deadline '{opts.deadline}'", "give seconds or minutes, e.g. 30s or 2m")
    return seconds


def budget_warning(
    profile: Profile,
    opts: PlanOptions,
    strategy: Strategy,
    budget: TokenBudget,
    samples: int,
    max_tokens: int,
) -> str | None:
    """A warning when a preset's tokens cannot pay for N samples of up to --max-tokens each (`-n 16` at
    medium): the budget then cuts the last ones short, or never starts them. It names a budget that affords
    them. A number of tokens is a limit the user chose knowing it, and a search's --max-tokens caps a step,
    not a sample: neither is warned of."""
    if strategy.is_search or budget.preset is None:
        return None
    need = samples * max_tokens
    if need <= budget.limit:
        return None
    deadline = f" --deadline {opts.budget}" if parse_seconds(opts.budget or "") is not None else ""
    bigger = sorted((p.tokens, p.name) for p in profile.presets.values() if p.tokens > budget.limit)
    presets = [fix for _, name in bigger if (fix := _fix(profile, opts, strategy, name, samples))][:1]
    number = _fix(profile, opts, strategy, str(need), samples)
    fix = " or ".join(f"{f}{deadline}" for f in [*presets, *([number] if number else [])])
    if samples == 1:
        cut = f"one sample of up to {max_tokens:,} tokens: the budget may cut it short"
    else:
        cut = f"{samples} samples of up to {max_tokens:,} tokens ({need:,}): the budget may cut"
        cut += " samples short or leave some unstarted"
    fix = fix or "a lower -n"
    return f"the {budget.preset} budget's {budget.limit:,} tokens cannot pay for {cut}; use {fix}"


def _fix(profile: Profile, opts: PlanOptions, strategy: Strategy, spec: str, samples: int) -> str | None:
    """`--budget spec` when it pays for its N samples of up to their length cap each; with `-n samples`
    when it pays for only as many as now (its own N is more); else None."""
    budget, preset = profile.budget(spec)
    max_tokens = opts.max_tokens if opts.max_tokens is not None else preset.max_tokens
    own = (opts.samples or min(preset.samples, MAX_SAMPLES)) if strategy.takes_samples else 1
    if own * max_tokens <= budget.limit:
        return f"--budget {spec}"
    return f"--budget {spec} -n {samples}" if samples * max_tokens <= budget.limit else None


def _checked_question(question: str) -> str:
    question = question.strip()
    try:
        question.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes from argv or stdin arrive as lone surrogates
        raise UsageError("the question is not valid UTF-8 text", "pass it as UTF-8") from None
    if not question:
        raise UsageError("the question is empty", 'pass it as an argument (ttc ask "...") or on stdin')
    return question


def program_limits(execution: dict[str, Any]) -> Limits:
    """A program's limits from the profile's `execution` section: its wall clock allows for the sandbox's
    low priority (`execution.sandbox.NICE`), its CPU seconds are the timeout's."""
    seconds = float(execution["timeout_s"])
    cpu = max(1, round(seconds))
    return replace(LIMITS, wall_s=4.0 * seconds, cpu_s=cpu, memory_mb=int(execution["memory_mb"]))


def sampling_params(profile: Profile, opts: PlanOptions, max_tokens: int, grammar: str) -> SamplingParams:
    s = {
        **profile.sampling,
        **{k: v for k in ("temperature", "top_k", "min_p") if (v := getattr(opts, k)) is not None},
    }
    max_tokens = opts.max_tokens if opts.max_tokens is not None else max_tokens
    if max_tokens < 1:
        raise UsageError(f"--max-tokens must be positive, got {max_tokens}", "e.g. --max-tokens 512")
    if not 0 <= s["temperature"] < math.inf:  # also rejects nan
        raise UsageError(
            f"--temperature must be 0 or more (and finite), got {s['temperature']}", "0 means greedy"
        )
    if s["top_k"] < 0:
        raise UsageError(f"--top-k must be 0 or more, got {s['top_k']}", "0 keeps every token")
    if not 0 <= s["min_p"] < 1:  # also rejects nan
        raise UsageError(f"--min-p must be at least 0 and below 1, got {s['min_p']}", "e.g. --min-p 0.05")
    return SamplingParams(
        temperature=float(s["temperature"]),
        top_k=int(s["top_k"]),
        top_p=float(s["top_p"]),
        min_p=float(s["min_p"]),
        top_logprobs=int(s["top_logprobs"]),
        seed=opts.seed if opts.seed is not None else secrets.randbelow(2**31),
        max_tokens=max_tokens,
        grammar=grammar,
    )


def early_stopping(profile: Profile, opts: PlanOptions) -> EarlyStopping | None:
    """The profile's early-stopping settings, overridden by the options; None when it is off."""
    conf = profile.early_stop
    rule = opts.stop_rule if opts.stop_rule is not None else str(conf["rule"])
    if rule not in RULES:
        raise UsageError(f"unknown stop rule '{rule}'", f"choose one of: {', '.join(RULES)}")
    confidence = opts.confidence if opts.confidence is not None else float(conf["confidence"])
    if not 0.5 < confidence <= 1:  # also rejects nan
        raise UsageError(
            f"--confidence must be above 0.5 and at most 1, got {confidence}",
            "it is the probability the leading answer must reach, e.g. --confidence 0.9",
        )
    if opts.vote == "filtered":
        # The filtered vote is DeepConf offline: it ranks all N traces, so a stop decided on the full
        # tally before they exist could disagree with it. It runs every sample (or refuses to stop early).
        if opts.early_stop:
            raise UsageError(
                "--vote filtered cannot be combined with --early-stop",
                "it ranks all N samples; drop --early-stop, or use --stop-rule deepconf (the online filter)",
            )
        return None
    if not (opts.early_stop if opts.early_stop is not None else conf["enabled"]):
        return None
    knobs = {f.name: conf[f.name] for f in fields(EarlyStopping) if f.name not in ("rule", "confidence")}
    width = opts.width if opts.width is not None else knobs["width"]
    knobs["width"] = None if width == "auto" else width  # None: chosen from the measured throughput
    return EarlyStopping(rule=rule, confidence=confidence, **knobs)


def answer_probing(profile: Profile, opts: PlanOptions) -> Probing | None:
    """The profile's `probe:` settings, overridden by --probe/--no-probe and --probe-every; None when off.
    They act only with early stopping and a prompt that has an answer cue (`sampling.probes_chains`)."""
    conf = profile.probe
    if opts.probe_every is not None and opts.probe_every < 1:
        raise UsageError(f"--probe-every must be positive, got {opts.probe_every}", "e.g. --probe-every 32")
    if not (opts.probe if opts.probe is not None else conf["enabled"]):
        return None
    every = opts.probe_every if opts.probe_every is not None else int(conf["every"])
    return Probing(every, int(conf["tokens"]), int(conf["settle"]), int(conf["agree"]), float(conf["weight"]))


def budget_forcing(profile: Profile, opts: PlanOptions) -> Thinking | None:
    """The thinking tags from the profile and the limits from the options; None when neither is set."""
    if opts.think_budget is None and opts.min_think is None:
        return None
    if opts.think_budget is not None and opts.think_budget < 1:
        raise UsageError(
            f"--think-budget must be positive, got {opts.think_budget}", "e.g. --think-budget 512"
        )
    if opts.min_think is not None and opts.min_think < 0:
        raise UsageError(f"--min-think must be 0 or more, got {opts.min_think}", "e.g. 128")
    minimum = opts.min_think or 0
    if opts.think_budget is not None and minimum > opts.think_budget:
        raise UsageError(
            f"--min-think {minimum} is more than --think-budget {opts.think_budget}",
            "the model must be allowed to think at least as long as it is made to",
        )
    return Thinking(**profile.thinking, budget=opts.think_budget, minimum=minimum)


def search_params(
    profile: Profile, preset: str, opts: PlanOptions, delimiter: str, search: bool = True
) -> SearchParams:
    """The profile's search words, then its numbers for the preset (a preset of the user's own that has
    none takes the default budget's), then the options; every value checked. For a sampling strategy
    (`search` False) --beams is not read: those strategies keep no beams."""
    conf = profile.search
    numbers = conf.get(preset) or conf.get(profile.default_budget) or {}
    values: dict[str, Any] = {key: conf[key] for key in WORDS if key in conf} | numbers
    values |= {
        f.name: getattr(opts, f.name)
        for f in fields(SearchParams)
        if getattr(opts, f.name, None) is not None and (search or f.name != "beams")
    }
    params = replace(SearchParams(), delimiter=delimiter, **values)
    for key, low in PER_PRESET.items():
        value = getattr(params, key)
        if value < low:
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{flag} must be at least {low}, got {value}", f"e.g. {flag} {max(low, 2)}")
    if params.beams * params.expansions > 64:
        raise UsageError(
            f"--beams {params.beams} × --expansions {params.expansions} is more than 64 branches a step",
            "lower --beams or --expansions",
        )
    if not 0 <= params.exploration < math.inf:
        raise UsageError(f"--exploration must be 0 or more, got {params.exploration}", "e.g. --exploration 1")
    if params.aggregate not in AGGREGATES:
        raise UsageError(f"unknown aggregate '{params.aggregate}'", f"choose one of: {', '.join(AGGREGATES)}")
    if params.pick not in PICKS:
        raise UsageError(f"unknown pick '{params.pick}'", f"choose one of: {', '.join(PICKS)}")
    check_verifier(params.verifier)
    return params
