"""Program-of-thought answers: find the program in a response, and read the answer from what it printed.

A candidate that answers with a program (`--task program`) is judged by running it (`ttc_cli.execution`),
not by reading its prose: its answer is the last line it printed, parsed like any stated answer (so
"42", "42.0" and "$42" vote together). A response without a program, a program that fails, or one that
prints nothing has no answer and casts no vote.

Which code block: the first one fenced as Python, else the first fenced one, else (no fence at all) the
whole response when it reads like a program. A fence the length cap cut open still counts, up to the
cut: the program may be whole, and running it is the only way to tell.
"""

from __future__ import annotations

import re

from ttc_cli.answers.extract import Answer, extract_answer

_FENCE = re.compile(r"```[ \t]*(?P<lang>[\w+-]*)[^\n]*\n(?P<code>.*?)(?:```|\Z)", re.S)
_LOOKS_LIKE_CODE = re.compile(r"^\s*(?:print\(|def |import |from \w+ import |\w+\s*=)", re.M)


def extract_program(text: str) -> str | None:
    """The program a response gives, or None when it gives none."""
    blocks = [(m["lang"].lower(), m["code"]) for m in _FENCE.finditer(text)]
    for lang, code in blocks:
        if lang in ("python", "py", "python3") and code.strip():
            return code
    for _, code in blocks:
        if code.strip():
            return code
    return text if _LOOKS_LIKE_CODE.search(text) and "print" in text else None


def output_answer(stdout: str) -> Answer | None:
    """The answer a program printed: its last non-empty line, parsed as a stated answer."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    return extract_answer(lines[-1].strip()) if lines else None
