"""The command-line options `ask` and `compare` share, each declared once, as a field of a small group.

A field is one option: its type, its default (None: the profile's value) and its Typer declaration.
`with_options` gives a command every field of each group it takes as a parameter, and hands the command
the filled group. So a new option is one field here, the line of `plan.py` that resolves it and, when
the profile holds its default, that key in `profiles/default.yaml`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer


def _opt(*names: str, help: str, **kw: Any) -> Any:  # noqa: A002 - Typer's own keyword
    return typer.Option(*names, help=help, show_default=False, **kw)


@dataclass(frozen=True)
class PlanOptions:
    """What to spend and how: everything that shapes a run, validated by `plan.build`."""

    budget: Annotated[
        str | None, _opt("--budget", "-b", help="Preset (low, medium, high, max) or a number of tokens.")
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
            help="Prompt: math, general, program, hybrid, code, or your own; auto (default) guesses "
            "(a question with numbers gets the profile's execution.auto_task).",
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
            help="Code questions: whose expected values choose among candidates: both (default), examples "
            "(the question's own), generated (tests the model writes) or none.",
        ),
    ] = None
    check_files: Annotated[
        list[Path] | None,
        _opt("--check-file", help="File or directory copied beside each solution for --check; repeatable."),
    ] = None
    vote: Annotated[
        str, _opt("--vote", help="self-consistency vote: majority (default), weighted or filtered.")
    ] = "majority"
    scorer: Annotated[
        str, _opt("--scorer", help="best-of-n score: mean-logprob (default) or confidence.")
    ] = "mean-logprob"
    profile: Annotated[str, _opt("--profile", help="Profile YAML with presets and defaults (default).")] = (
        "default"
    )
    early_stop: Annotated[
        bool | None,
        _opt("--early-stop/--no-early-stop", help="Stop sampling once the answer is settled (default: on)."),
    ] = None
    stop_rule: Annotated[
        str | None, _opt("--stop-rule", help="Early-stop rule: beta, decided or deepconf.")
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
            help="llama (in-process llama.cpp, the default) or openai (an OpenAI-compatible server).",
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
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=annotation)
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

    params = own + shared
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run
