"""The one exception type for mistakes a user can fix.

Everything the user can correct (a bad option, a missing file, malformed YAML, a prompt that does not fit)
is raised as `UsageError`; the CLI turns it into a single line on stderr and exit code 2. Anything else is
a bug and keeps its traceback.
"""


class UsageError(Exception):
    """A problem with the user's input: `message` says what is wrong, `hint` how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message
