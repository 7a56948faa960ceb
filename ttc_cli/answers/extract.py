"""Final answers: find the one a response commits to, and decide when two answers are the same.

Voting only works if "$1,000", "1000.0" and "\\boxed{1000}" count as one answer. Two jobs:

* `extract_answer` reads a free-form response and returns the answer it states. Rules run from the
  most explicit signal to the weakest: a LaTeX ``\\boxed{}``, a GSM8K ``#### 42`` line, a phrase such
  as "the answer is ...", a lone option letter (multiple-choice questions only), and finally the last
  number on one of the last lines. Within a rule the last occurrence wins, because models revise
  themselves and the statement they end on is the one they mean.
* `answer_key` maps an answer string to a canonical key: numbers by exact `Fraction` value, option
  letters as ``choice:X``, anything else as normalised lower-case text. Equal keys mean equivalent
  answers, so a voter counts keys. An extracted `Answer` has ``key == answer_key(text)``, so gold and
  extracted answers compare the same way.

Trade-offs: the rules are regular expressions, not a parser. They aim at the common shapes of small-model
output and return None rather than guess, because a voter can skip an unparsed response but cannot undo
a wrong parse. A boxed symbolic answer (``x^2+1``) is compared as text, but after "the answer is" the
first number wins, which suits word problems ("45 dollars") and misreads algebra ("x+1" -> 1). Digits
glued to letters (``x2``, ``2x``, ``5km``) are not numbers, which keeps variables out of the vote at the
cost of missing units written without a space.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from itertools import takewhile


@dataclass(frozen=True)
class Answer:
    """An answer found in a response: `key` decides equivalence, `text` is for people."""

    text: str  # how to show it: "1000", "0.75", "-2.5", "B", "Paris"
    key: str  # canonical key; two answers are equivalent iff keys are equal
    kind: str  # "number" | "choice" | "text"
    source: str  # rule that found it: "boxed" | "answer-is" | "gsm8k" | "final-line" | "choice"


_UNSIGNED = r"(?:\d+/\d+|(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)"
# A digit run touching a letter, "." or "^" is part of a word, a larger number or an exponent.
_NUMBER_IN_TEXT = re.compile(rf"(?<![\w.^])[-+]?{_UNSIGNED}(?!\w)")
_NUMBER_ONLY = re.compile(rf"(?P<sign>[-+]?)[$€£]?\s*(?P<num>{_UNSIGNED})\s*%?")
# "x = 5", "45 dollars", "$3 per cup": a number is the answer even when dressed up a little.
_DRESSED_NUMBER = re.compile(r"(?:[A-Za-z]\s*=\s*)?(?P<num>\S+?)(?:\s+[A-Za-z][A-Za-z .]*)?")

_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_LATEX_SPELLINGS = (
    ("\\$", "$"),
    ("\\%", "%"),
    ("{,}", ","),
    ("\\,", ""),
    ("\\!", ""),
    ("\u2212", "-"),
    ("\\(", ""),
    ("\\)", ""),
    ("\\[", ""),
    ("\\]", ""),
)

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# Lookahead only: a markdown heading such as "#### Step 1" is not a GSM8K answer line.
_GSM8K = re.compile(r"####[ \t]*(?=[-+$\d])([^\n]*)")
_ANSWER_PHRASE = re.compile(r"\banswer\b[\s*_]*(?:is\b|:|=)[\s*:]*", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_STEP_LABEL = re.compile(r"^[\W_]*step\s+\d+", re.IGNORECASE)

# "(B)", "B)", "B.", "B" alone, "option B"; a bare letter followed by a word is more likely an article.
_LEADING_CHOICE = re.compile(r"(?:(?i:option|choice)\s+)?\(?([A-Z])(?:\)|(?=[.:,]|$))")
_CHOICE_MENTION = re.compile(r"\(([A-Z])\)|(?i:\b(?:option|choice)\s+)\(?([A-Z])\b|(?<![\w(])([A-Z])\)")
_BARE_LETTER_LINE = re.compile(r"[\W_]*([A-Z])[\W_]*")
_OPTION_AT_LINE_START = re.compile(r"^[ \t]*(?:[-*][ \t]+)?(?:\(([A-Z])\)|([A-Z])[).:])[ \t]+\S", re.M)
_OPTION_INLINE = re.compile(r"\(([A-Z])\)")

_TAIL_LINES = 3  # how far from the end a trailing number or option letter may sit


def question_choices(question: str) -> tuple[str, ...]:
    """Option letters of a multiple-choice question, e.g. ('A', 'B', 'C', 'D'); () if it has none.

    Only a run of consecutive letters from A counts, and it needs two, so a stray "(C)" or a dialogue's
    "A:" does not make a question multiple-choice.
    """
    found = {a or b for a, b in _OPTION_AT_LINE_START.findall(question)}
    found.update(_OPTION_INLINE.findall(question))
    letters = tuple(takewhile(found.__contains__, string.ascii_uppercase))
    return letters if len(letters) >= 2 else ()


def extract_answer(text: str, choices: tuple[str, ...] = ()) -> Answer | None:
    """The final answer stated in a model's response, or None when it states none we can parse."""
    rules: tuple[Callable[[str, tuple[str, ...]], Answer | None], ...] = (
        _from_boxed,
        _from_gsm8k,
        _from_answer_phrase,
        _from_choice_mention,
        _from_final_line,
    )
    for rule in rules:
        answer = rule(text, choices)
        if answer is not None:
            return answer
    return None


def normalize_number(s: str) -> Fraction | None:
    """The exact value of a string that is just a number ('$1,000', '-2.50', '3/4', '50%'), else None.

    A percentage keeps the value as written ('50%' -> 50): gold answers state percentages the same way.
    """
    match = _NUMBER_ONLY.fullmatch(_delatex(s).strip())
    return _to_fraction(match["sign"] + match["num"]) if match else None


def answer_key(s: str) -> str:
    """Canonical key of an answer string: '1000', '3/4', 'choice:B' or normalised text ('' if empty)."""
    answer = _as_answer(s, source="")
    return answer.key if answer else ""


def answers_equal(a: str, b: str) -> bool:
    """Whether two answer strings say the same thing, by `answer_key`."""
    return answer_key(a) == answer_key(b)


def _from_boxed(text: str, choices: tuple[str, ...]) -> Answer | None:
    for match in reversed(list(_BOXED.finditer(text))):
        content = _braced(text, match.end())
        answer = _as_answer(content, "boxed") if content is not None else None
        if answer is not None:
            return answer
    return None


def _from_gsm8k(text: str, choices: tuple[str, ...]) -> Answer | None:
    for match in reversed(list(_GSM8K.finditer(text))):
        numbers = _numbers(match[1])
        if numbers:
            return _number_answer(numbers[0], "gsm8k")
    return None


# A small model sometimes repeats the math prompt's "finish with 'The answer is' followed by the final
# number" instead of answering: that text must not vote.
_ECHO = re.compile(r"(?:followed by|the final number)\b", re.I)


def _from_answer_phrase(text: str, choices: tuple[str, ...]) -> Answer | None:
    for match in reversed(list(_ANSWER_PHRASE.finditer(text))):
        # The phrase pattern swallows newlines, so "The final answer is:\n\n42" reads the 42.
        line = text[match.end() :].split("\n", 1)[0]
        stated = _clean(_SENTENCE_END.split(line, maxsplit=1)[0])
        letter = _LEADING_CHOICE.match(stated) if choices else None
        if letter and letter[1] in choices:
            return _choice_answer(letter[1], "answer-is")
        numbers = _numbers(stated)
        if not numbers and _ECHO.match(stated):  # the prompt's instruction repeated, not an answer
            continue
        answer = _number_answer(numbers[0], "answer-is") if numbers else _as_answer(stated, "answer-is")
        if answer is not None:
            return answer
    return None


def _from_choice_mention(text: str, choices: tuple[str, ...]) -> Answer | None:
    if not choices:
        return None
    for line in reversed(_tail_lines(text)):
        bare = _BARE_LETTER_LINE.fullmatch(line)
        mentioned = [bare[1]] if bare else ["".join(groups) for groups in _CHOICE_MENTION.findall(line)]
        offered = [letter for letter in mentioned if letter in choices]
        if offered:
            return _choice_answer(offered[-1], "choice")
    return None


def _from_final_line(text: str, choices: tuple[str, ...]) -> Answer | None:
    for line in reversed(_tail_lines(text)):
        numbers = _numbers(_STEP_LABEL.sub("", line, count=1))
        if numbers:
            return _number_answer(numbers[-1], "final-line")
    return None


def _as_answer(s: str, source: str) -> Answer | None:
    """Classify a whole answer string as a number, an option letter or text, the way `answer_key` does."""
    cleaned = _clean(s)
    if not cleaned:
        return None
    value = normalize_number(cleaned)
    dressed = _DRESSED_NUMBER.fullmatch(cleaned) if value is None else None
    if dressed:
        value = normalize_number(dressed["num"])
    if value is not None:
        return _number_answer(value, source)
    letter = _LEADING_CHOICE.fullmatch(cleaned)
    if letter:
        return _choice_answer(letter[1], source)
    return Answer(cleaned, _text_key(cleaned), "text", source)


def _number_answer(value: Fraction, source: str) -> Answer:
    key = str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return Answer(_display(value), key, "number", source)


def _choice_answer(letter: str, source: str) -> Answer:
    return Answer(letter, f"choice:{letter}", "choice", source)


def _display(value: Fraction) -> str:
    """Integers plainly, terminating fractions as exact decimals (5/2 -> '2.5'), others as 'p/q'."""
    if value.denominator == 1:
        return str(value.numerator)
    rest, twos, fives = value.denominator, 0, 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:
        return f"{value.numerator}/{value.denominator}"
    # With the fewest decimal places that make it exact, the last digit is never a trailing zero.
    places = max(twos, fives)
    digits = str(abs(value.numerator) * 10**places // value.denominator).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def _text_key(s: str) -> str:
    text = " ".join(s.lower().split()).strip(string.punctuation + " ")
    return re.sub(r"^(?:the|an|a)\s+", "", text)


def _clean(s: str) -> str:
    """Drop LaTeX and markdown dressing, math-mode dollars and trailing sentence punctuation."""
    return _delatex(s).replace("$", "").strip(" \t\n*_`\"'.,;:!?")


def _delatex(s: str) -> str:
    """Rewrite the LaTeX (and typographic) spellings models use into plain text: \\frac{a}{b} -> a/b."""
    s = _FRAC.sub(r"\1/\2", _TEXT_WRAPPER.sub(r"\1", s))
    for latex, plain in _LATEX_SPELLINGS:
        s = s.replace(latex, plain)
    return s


def _numbers(s: str) -> list[Fraction]:
    """The standalone numbers in `s`, in order; currency and math-mode dollars are ignored."""
    values = (_to_fraction(m[0]) for m in _NUMBER_IN_TEXT.finditer(_delatex(s).replace("$", "")))
    return [value for value in values if value is not None]


def _to_fraction(token: str) -> Fraction | None:
    try:
        return Fraction(token.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def _braced(text: str, start: int) -> str | None:
    """The text up to the brace closing one opened just before `start`; None if it never closes."""
    depth = 1
    for i, char in enumerate(text[start:], start):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
    return None


def _tail_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()][-_TAIL_LINES:]
