"""The two exception types the CLI turns into one line on stderr instead of a traceback.

Everything the user can correct (a bad option, a missing file, malformed YAML, a prompt that does not fit)
is raised as `UsageError`: exit code 2. What the engine could not do although the request was valid (a
decode failure, memory for a context) is an `EngineError`: exit code 1. Anything else is a bug and keeps
its traceback.
"""


class UsageError(Exception):
    """A problem with the user's input: `message` says what is wrong, `hint` how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class EngineError(Exception):
    """The engine could not do what was asked (a decode failure, no memory for the context)."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM came before a run started, so there is no answer to print; `exit_code` is 128 +
    the signal."""

    def __init__(self, exit_code: int) -> None:
        super().__init__("interrupted")
        self.exit_code = exit_code


class Aborted(BaseException):
    """A second Ctrl-C or SIGTERM: stop now, whatever is running. A BaseException, like KeyboardInterrupt,
    so no `except Exception` on the way swallows it; not KeyboardInterrupt itself, which Typer turns into a
    silent exit 130 that `main` could not tell from a run that ended normally."""

    def __init__(self, exit_code: int) -> None:
        super().__init__("aborted")
        self.exit_code = exit_code
