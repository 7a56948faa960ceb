"""The command-line options `ask` and `compare` share, each declared once, as a field of a small group.

A field is one option: its type, its default (None: the profile's value) and its Typer declaration.
`with_options` gives a command every field of each group it takes as a parameter, and hands the command
the filled group. So a new option is one field here, the line of `plan.py` that resolves it and, when
the profile holds its default, that key in `profiles/default.yaml`.

This module is longer than most because --help's layout lives beside the options it lays out: the panel
each option is shown in, the default it shows, and the values a choice option takes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from typer.core import TyperCommand, TyperGroup


def _opt(*names: str, help: str, **kw: Any) -> Any:  # noqa: A002 - Typer's own keyword
    return typer.Option(*names, help=help, show_default=False, **kw)


@dataclass(frozen=True)
class PlanOptions:
    """What to spend and how: everything that shapes a run, validated by `plan.build`."""

    budget: Annotated[
        str | None,
        _opt(
            "--budget",
            "-b",
            help="Preset (low, medium, high, max), a number of tokens, or seconds (30s, 2m: a deadline "
            "on the default preset).",
        ),
    ] = None
    deadline: Annotated[
        str | None,
        _opt(
            "--deadline",
            help="Stop sampling after this long (30s, 2m) and answer with what has finished; pairs with "
            "any --budget.",
        ),
    ] = None
    samples: Annotated[int | None, _opt("--samples", "-n", help="Number of samples N.")] = None
    max_tokens: Annotated[int | None, _opt("--max-tokens", help="Cap on one candidate's tokens.")] = None
    temperature: Annotated[float | None, _opt("--temperature", "-t", help="Sampling temperature.")] = None
    top_k: Annotated[int | None, _opt("--top-k", help="Sample among the k likeliest tokens (0: all).")] = None
    min_p: Annotated[
        float | None, _opt("--min-p", help="Drop tokens below this share of the likeliest one's probability.")
    ] = None
    seed: Annotated[int | None, _opt("--seed", help="Seed; candidate i uses seed+i.")] = None
    task: Annotated[
        str,
        _opt(
            "--task",
            help="The prompt (a user's own prompts/NAME.yaml is one too); auto guesses: code for a "
            "function to write or a --check, the profile's execution.auto_task for numbers, else general.",
        ),
    ] = "auto"
    check: Annotated[
        str | None,
        _opt("--check", help="Shell command that passes a right solution (runs sandboxed; code tasks)."),
    ] = None
    code_tests: Annotated[
        str | None,
        _opt(
            "--code-tests",
            help="Code questions: whose expected values choose among candidates: examples (the "
            "question's own), generated (tests the model writes), both or none.",
        ),
    ] = None
    check_files: Annotated[
        list[Path] | None,
        _opt("--check-file", help="File or directory copied beside each solution for --check; repeatable."),
    ] = None
    vote: Annotated[
        str,
        _opt(
            "--vote",
            help="self-consistency's vote (weighted: by mean token probability; filtered: DeepConf).",
        ),
    ] = "majority"
    scorer: Annotated[str, _opt("--scorer", help="best-of-n's score of a candidate.")] = "mean-logprob"
    profile: Annotated[str, _opt("--profile", help="Profile YAML with presets and defaults.")] = "default"
    early_stop: Annotated[
        bool | None,
        _opt("--early-stop/--no-early-stop", help="Stop sampling once the answer is settled (default: on)."),
    ] = None
    stop_rule: Annotated[
        str | None, _opt("--stop-rule", help="When to stop early (decided: the vote cannot change).")
    ] = None
    confidence: Annotated[
        float | None, _opt("--confidence", help="Probability the leading answer must reach to stop early.")
    ] = None
    width: Annotated[
        int | None,
        _opt(
            "--width",
            help="Sampling strategies: samples decoding at once while early stopping (default: chosen "
            "from the engine's measured throughput). A search's beams are --beams.",
        ),
    ] = None
    probe: Annotated[
        bool | None,
        _opt(
            "--probe/--no-probe",
            help="Answer probes: ask running samples for their answer every --probe-every tokens, so the "
            "vote can settle before they end (default: the profile's probe.enabled).",
        ),
    ] = None
    probe_every: Annotated[
        int | None, _opt("--probe-every", help="Tokens a sample writes between two answer probes.")
    ] = None
    think_budget: Annotated[
        int | None, _opt("--think-budget", help="Most tokens a thinking model may think.")
    ] = None
    min_think: Annotated[
        int | None, _opt("--min-think", help="Fewest thinking tokens; an earlier stop gets 'Wait'.")
    ] = None
    ctx: Annotated[int | None, _opt("--ctx", help="KV cache size (default: sized from the budget).")] = None
    # Step-level search (beam, lookahead, mcts, refine; best-of-n for --verifier).
    verifier: Annotated[
        str | None, _opt("--verifier", help="Step scorer: judge, logprob or cmd:COMMAND (best-of-n too).")
    ] = None
    verifier_model: Annotated[
        str | None, _opt("--verifier-model", help="GGUF model for the judge (default: the same model).")
    ] = None
    aggregate: Annotated[str | None, _opt("--aggregate", help="Path score: last, min, prod or mean.")] = None
    pick: Annotated[str | None, _opt("--pick", help="Search answer: score (best path) or vote.")] = None
    exploration: Annotated[float | None, _opt("--exploration", help="MCTS UCT exploration constant.")] = None
    beams: Annotated[int | None, _opt("--beams", help="Beams kept per step (W).")] = None
    expansions: Annotated[int | None, _opt("--expansions", help="Next steps sampled per beam (M).")] = None
    step_tokens: Annotated[int | None, _opt("--step-tokens", help="Cap on one reasoning step's tokens.")] = (
        None
    )
    lookahead: Annotated[int | None, _opt("--lookahead", help="lookahead: greedy steps rolled out.")] = None
    rollouts: Annotated[int | None, _opt("--rollouts", help="MCTS rollouts per new node (0: none).")] = None
    refine_rounds: Annotated[int | None, _opt("--refine-rounds", help="refine: most revise rounds.")] = None


@dataclass(frozen=True)
class EngineOptions:
    """Where and how the model runs."""

    gpu_layers: Annotated[
        int | None, _opt("--gpu-layers", "-ngl", help="Layers to offload (default: all if GPU build).")
    ] = None
    threads: Annotated[int | None, _opt("--threads", help="CPU threads (default: all cores).")] = None
    verbose: Annotated[bool, _opt("--verbose", "-v", help="Show llama.cpp's log on stderr.")] = False
    backend: Annotated[
        str,
        _opt(
            "--backend",
            envvar="TTC_BACKEND",
            help="llama (in-process llama.cpp) or openai (an OpenAI-compatible server).",
        ),
    ] = "llama"
    base_url: Annotated[
        str | None,
        _opt(
            "--base-url",
            envvar="TTC_BASE_URL",
            help="The server for --backend openai, e.g. http://host:8080/v1.",
        ),
    ] = None
    api_key_env: Annotated[
        str,
        _opt("--api-key-env", help="The environment variable holding the server's API key (never printed)."),
    ] = "OPENAI_API_KEY"
    parallel: Annotated[
        int | None,
        _opt("--parallel", min=1, help="Requests at once with --backend openai (default: the server's)."),
    ] = None
    tokenizer: Annotated[
        str | None,
        _opt(
            "--tokenizer",
            envvar="TTC_TOKENIZER",
            help="With --backend openai: a GGUF (path or name) of the server's model, read for its tokenizer "
            "and chat template only. Gives exact token counts, and lets beam, lookahead, mcts, budget "
            "forcing, prefills and the judge run through the server (as text completions).",
        ),
    ] = None


@dataclass(frozen=True)
class OutputOptions:
    """What goes to stdout and stderr."""

    as_json: Annotated[bool, _opt("--json", help="Print JSON with the full result on stdout.")] = False
    no_live: Annotated[bool, _opt("--no-live", help="No live view; only the closing summary.")] = False
    quiet: Annotated[bool, _opt("--quiet", "-q", help="Nothing on stderr but errors.")] = False
    no_log: Annotated[
        bool, _opt("--no-log", help="Keep this run out of the run log (`ttc runs`; TTC_LOG=0 for all).")
    ] = False


GROUPS = (PlanOptions, EngineOptions, OutputOptions)

# --help shows the options in these panels, in this order (a field missing here fails a test, so a new
# option is placed when it is added). `ask`, `compare` and `bench` put their own options in the same ones.
PANELS: dict[str, tuple[str, ...]] = {
    "Budget and strategy": ("budget", "deadline", "samples", "max_tokens", "task", "profile"),
    "Sampling": ("temperature", "top_k", "min_p", "seed", "vote", "scorer", "think_budget", "min_think"),
    "Early stopping": ("early_stop", "stop_rule", "confidence", "width", "probe", "probe_every"),
    "Search": ("verifier", "verifier_model", "aggregate", "pick", "exploration", "beams", "expansions",
               "step_tokens", "lookahead", "rollouts", "refine_rounds"),
    "Execution": ("check", "code_tests", "check_files"),
    "Model and engine": ("ctx", "gpu_layers", "threads", "verbose", "backend", "base_url", "api_key_env",
                         "parallel", "tokenizer"),
    "Output": ("as_json", "no_live", "quiet", "no_log"),
}  # fmt: skip
# Fields whose None means "the profile decides" (--help: [default: (profile)]); other Nones are explained in
# their help text (a random seed, a context sized from the budget...).
FROM_PROFILE = {"budget", "samples", "max_tokens", "temperature", "top_k", "min_p", "code_tests", "stop_rule",
                "confidence", "verifier", "aggregate", "pick", "exploration", "beams", "expansions",
                "step_tokens", "lookahead", "rollouts", "refine_rounds"}  # fmt: skip

# The values a choice option takes. The registries they mirror import numpy, which `ttc --help` must not
# load, so the names are listed here and a test holds each list equal to its registry.
STRATEGY_NAMES = ("greedy", "best-of-n", "self-consistency", "auto", "beam", "lookahead", "mcts", "refine")
CHOICES: dict[str, tuple[str, Callable[[], Sequence[str]]]] = {
    "task": ("task", lambda: _task_names()),
    "vote": ("vote", lambda: ("majority", "weighted", "filtered")),
    "scorer": ("scorer", lambda: ("mean-logprob", "confidence")),
    "stop_rule": ("stop rule", lambda: ("beta", "decided", "deepconf")),
    "aggregate": ("aggregate", lambda: ("last", "min", "prod", "mean")),
    "pick": ("pick", lambda: ("score", "vote")),
    "code_tests": ("--code-tests", lambda: ("both", "examples", "generated", "none")),
    "backend": ("backend", lambda: ("llama", "openai")),
}


def _task_names() -> list[str]:
    from ttc_cli.task_prompts import task_names

    return task_names()


def one_of(info: Any, noun: str, names: Callable[[], Sequence[str]]) -> Any:
    """Make the option `info` a choice among `names()`: --help lists them (as its type when the list is
    short, else after its help), shell completion offers them, and any other value is refused as "unknown
    NOUN 'x'; choose one of: ..." (a repeated option: each value). `names` is called again to check a
    value, so a task prompt the user has just written counts."""

    def check(value: Any) -> Any:
        # ttc's own error, not Typer's BadParameter: the same one line `plan.build` gives a bad value
        from ttc_cli.errors import UsageError

        known = list(names())
        for v in value if isinstance(value, list | tuple) else [value]:
            if v is not None and v not in known:
                raise UsageError(f"unknown {noun} '{v}'", f"choose one of: {', '.join(known)}")
        return value

    def complete(incomplete: str) -> list[str]:
        return [n for n in names() if n.startswith(incomplete)]

    info.callback = check
    info.autocompletion = complete
    listed = "|".join(names())
    if len(listed) <= SHORT_CHOICES:
        info.metavar = f"<{listed}>"
    else:  # a long list as the type squeezes every help line beside it
        info.metavar = "<name>"
        info.help = f"{info.help} One of: {', '.join(names())}."
    return info


SHORT_CHOICES = 30  # characters of "a|b|c" still shown as the option's type


def choice(*decls: str, noun: str, names: Sequence[str], help: str, panel: str, **kw: Any) -> Any:  # noqa: A002
    """A command's own choice option (`-s`), declared like the shared ones."""
    info = typer.Option(*decls, help=help, rich_help_panel=panel, show_default=True, **kw)
    return one_of(info, noun, lambda: names)


PANEL_OF = {name: panel for panel, names in PANELS.items() for name in names}


def _panel_rank(p: inspect.Parameter) -> int:
    """Arguments and options in no panel first, then the panels in PANELS' order."""
    info = next(iter(getattr(p.annotation, "__metadata__", ())), None)
    panel = getattr(info, "rich_help_panel", None)
    return list(PANELS).index(panel) + 1 if panel in PANELS else 0


def _dressed(name: str, default: Any, annotation: Any) -> Any:
    """The shared option `name` with its panel, the default it shows and, for a choice, its choices."""
    info = annotation.__metadata__[0]
    info.rich_help_panel = PANEL_OF.get(name)
    if name in FROM_PROFILE:
        info.show_default = "profile"
    elif default not in (None, False):
        info.show_default = True
    if name in CHOICES:
        one_of(info, *CHOICES[name])
    return annotation


class _FlagsTakeNoValue:
    """--help lists a flag (--json, --help itself) with no `<bool>` after it: a flag takes no value."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params


class Command(_FlagsTakeNoValue, TyperCommand):
    """ttc's commands (`app.command(cls=Command)`)."""


class Group(_FlagsTakeNoValue, TyperGroup):
    """ttc's command groups (`typer.Typer(cls=Group)`)."""


def with_options(command: Callable[..., Any] | None = None, *, exclude: tuple[str, ...] = ()) -> Any:
    """Declare every field of the option groups `command` takes (a parameter annotated with a group) as
    one of its Typer options; `command` is called with the groups filled in. `exclude` names fields the
    command declares its own way (`bench` takes several budgets); they keep their defaults in the group."""
    if command is None:
        return functools.partial(with_options, exclude=exclude)
    hints = get_type_hints(command, include_extras=True)
    own: list[inspect.Parameter] = []
    groups: dict[str, type] = {}
    for p in inspect.signature(command).parameters.values():
        if hints[p.name] in GROUPS:
            groups[p.name] = hints[p.name]
        else:
            own.append(p.replace(annotation=hints[p.name]))
    shared = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=f.default,
            annotation=_dressed(f.name, f.default, annotation),
        )
        for group in groups.values()
        for f, annotation in ((f, get_type_hints(group, include_extras=True)[f.name]) for f in fields(group))
        if f.name not in exclude
    ]

    @functools.wraps(command)
    def run(**kwargs: Any) -> Any:
        for name, group in groups.items():
            kwargs[name] = group(
                **{f.name: kwargs.pop(f.name) for f in fields(group) if f.name not in exclude}
            )
        return command(**kwargs)

    # --help shows the panels in the order of their first option: PANELS' order, the command's own options
    # placed among the shared ones (Typer passes every parameter by name, so the order is free).
    params = sorted((p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own + shared), key=_panel_rank)
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run
