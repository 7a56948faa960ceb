"""Verifiers: things that score a solution (a judge model, the policy's log-probabilities, a command).

Answer arithmetic (extraction, votes, confidence, stop rules) lives in `ttc_cli.answers`; a verifier is
anything that looks at a solution and says how likely it is right. `base` holds the interface; each
verifier is its own module, and `VERIFIERS` below is the registry `--verifier` reads.
"""

from __future__ import annotations

from collections.abc import Callable

from ttc_cli.errors import UsageError
from ttc_cli.verifiers.base import Verifier, VerifierContext
from ttc_cli.verifiers.command import CommandVerifier
from ttc_cli.verifiers.judge import JudgeVerifier
from ttc_cli.verifiers.logprob import LogprobVerifier

VERIFIERS: dict[str, Callable[[VerifierContext], Verifier]] = {
    "judge": JudgeVerifier,
    "logprob": lambda vctx: LogprobVerifier(),
}
COMMAND = "cmd:"  # cmd:COMMAND runs the user's command on each whole solution


def check_verifier(name: str) -> None:
    if name.startswith(COMMAND) and name[len(COMMAND) :].strip():
        return
    if name not in VERIFIERS:
        raise UsageError(
            f"unknown verifier '{name}'", f"choose one of: {', '.join(VERIFIERS)}, or {COMMAND}COMMAND"
        )


def make_verifier(name: str, vctx: VerifierContext) -> Verifier:
    check_verifier(name)
    if name.startswith(COMMAND):
        return CommandVerifier(name[len(COMMAND) :].strip())
    return VERIFIERS[name](vctx)
