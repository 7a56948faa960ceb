"""Tests a code question carries: its own examples, read from the question's text.

A question that asks for a function usually shows what it must do: doctest lines (`>>> f(2)` then `4`),
or prose (`f(2) == 4`, `f(2) -> 4`, `f(2) ➞ 4`, "Example: Input: ... Output: ..."). Each becomes a `Case`:
an expression to evaluate and the value it must equal (or the exception it must raise). Running a candidate
against them (`execution.harness`) is a verifier with real signal on code, unlike anything a model can
say about its own reasoning. Model-written tests (`parse_asserts`) are Cases too, marked `generated`.

The rules lean to precision over recall: a wrong example fails every right candidate, a missed one only
loses a little signal. So prose examples need literal arguments and a literal expected value (a call such
as `tri(n) = 1 + n / 2` is a definition, not an example); an expected value is the longest literal that
follows the separator, and when that longest expression is not a literal the example is dropped rather
than cut shorter. Doctests are the author's runnable examples and are taken as written, with doctest's
meaning: the expected output is kept verbatim (the harness compares it with the value and what was
printed), a `>>> f(x)` with no output expects None, a Traceback expects that exception, and the sloppy
`>>> f(x) == y` with no output (HumanEval has several) means f(x) must equal y.

This module is longer than most (~650 lines) because it is one parser over many written forms (doctest,
arrows, "returns", "For x = ... the output should be", "Input:/Output:", asserts) that share the same few
literal and call helpers; split up, each piece would repeat them.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import keyword
import re
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

SOURCES = ("doctest", "prose", "generated")


@dataclass(frozen=True)
class Case:
    """One test of a function: evaluate `call`; it must equal `expected` (or raise `raises`)."""

    call: str  # a Python expression, e.g. "add(2, 3)"
    expected: str | None  # a Python expression (or a doctest's printed output); None: observe only
    raises: str | None = None  # the exception class name expected instead of a value
    source: str = "doctest"  # doctest | prose | generated
    text: str = ""  # the example as written, for --json and the live view

    def to_json(self) -> dict[str, str | None]:
        return {"call": self.call, "expected": self.expected, "raises": self.raises, "source": self.source}

    def key(self) -> tuple[str, str | None, str | None]:
        """What makes two cases the same test, however each was written."""
        return _normal(self.call), None if self.expected is None else _normal(self.expected), self.raises


# CPython's parser gives up on some long or deep text ("word " * 9000) with these, not a SyntaxError.
_UNPARSABLE = (SyntaxError, ValueError, MemoryError, RecursionError)


def _normal(code: str) -> str:
    try:
        return ast.unparse(ast.parse(code, mode="eval"))
    except _UNPARSABLE:
        return " ".join(code.split())  # a doctest's printed output


_BUILTINS = frozenset(dir(builtins))
_NAME = r"[A-Za-z_]\w*"

# ---------------------------------------------------------------------------------------------------
# The code a question carries, and the function it asks for.

_FENCE = re.compile(r"```[ \t]*[\w+-]*[^\n]*\n(.*?)(?:```|\Z)", re.S)
_CODE_START = re.compile(r"^[ \t]*(?:async\s+def|def|class|import|from\s+[\w.]+\s+import|@)\b")
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)
# Bounds on the parsing a long or hostile question can cost: lines of a code region, characters of a call
# or value in prose, calls looked at for prose examples.
_MAX_LINES, _MAX_CHARS, _MAX_CALLS = 400, 400, 300
_SAFE_CALLS = frozenset({"set", "frozenset", "tuple", "list", "dict", "range", "int", "float", "str", "bool"})


def question_code(question: str) -> str:
    """The code a candidate may rely on (imports, helpers, constants, the stub), to run before it; "" if none.

    Only definitions are kept: a question's usage lines (`print(f(2))`) would call the stub before the
    candidate replaces it. A question that is all Python (HumanEval's prompts) comes back unchanged.
    """
    kept = [_definitions(piece) for piece in _code_pieces(question)]
    return "\n\n\n".join(k for k in kept if k.strip())


def stub_code(question: str) -> str:
    """The question's code when it ends in a function to complete (a def whose body is its docstring):
    what a reply can start with, so the model writes the body and not the signature and docstring again
    (the prompt's `prefill: "...{code}"`). "" otherwise: a question's finished code is not to be continued.
    """
    code = question_code(question)
    tree = _parses(code)
    last = tree.body[-1] if tree is not None and tree.body else None
    if not isinstance(last, _DEFS) or not _is_stub(last) or not all(_docstring(s) for s in last.body):
        return ""
    return code.rstrip() + "\n"


def _docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _parses(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except _UNPARSABLE:
        return None


def _is_code(tree: ast.Module | None) -> bool:
    return tree is not None and any(
        isinstance(n, (*_DEFS, ast.ClassDef, ast.Import, ast.ImportFrom)) for n in tree.body
    )


def _code_pieces(question: str) -> list[str]:
    if _is_code(_parses(question)):
        return [question]
    fenced = [code for code in _FENCE.findall(question) if _is_code(_parses(code))]
    return fenced or list(_unfenced(question.splitlines()))


def _unfenced(lines: list[str]) -> Iterator[str]:
    """Code regions in prose: from a line that starts code, the longest run of lines that parses."""
    i = 0
    while i < len(lines):
        found = _CODE_START.match(lines[i]) and _longest_code(lines, i)
        if found:
            end, code = found
            yield code
            i = end
        else:
            i += 1


def _longest_code(lines: list[str], start: int) -> tuple[int, str] | None:
    """From start, the longest run of lines that parses, and where it ends.

    It ends at the latest where a line is indented less than its first (indented code in prose), and
    each syntax error's line bounds the next try, so a long question costs a few parses, not one a line.
    """
    indent = len(lines[start]) - len(lines[start].lstrip())
    outdented = (
        j
        for j in range(start + 1, len(lines))
        if lines[j].strip() and len(lines[j]) - len(lines[j].lstrip()) < indent
    )
    end = min(next(outdented, len(lines)), start + _MAX_LINES)
    for _ in range(_MAX_LINES):
        while end > start and not lines[end - 1].strip():
            end -= 1
        if end <= start:
            return None
        code = "\n".join(lines[start:end])
        code = textwrap.dedent(code) if indent else code
        try:
            ast.parse(code)
            return end, code
        except SyntaxError as e:
            bad = start + (e.lineno or 1) - 1
        except (ValueError, MemoryError, RecursionError):
            bad = end
        # A bare signature ("def f(x):" then prose) is still worth its name: give it a body.
        if _parses(code + "\n    ...") is not None:
            return end, code + "\n    ..."
        end = bad if start < bad < end else end - 1
    return None


def _definitions(code: str) -> str:
    tree = _parses(code)
    if tree is None:
        return ""
    keep = [node for node in tree.body if _is_definition(node)]
    if len(keep) == len(tree.body):
        return code
    lines = code.splitlines()
    spans = [
        (min([n.lineno, *(d.lineno for d in getattr(n, "decorator_list", []))]), n.end_lineno) for n in keep
    ]
    return "\n\n".join("\n".join(lines[a - 1 : b]) for a, b in spans)


def _is_definition(node: ast.stmt) -> bool:
    if isinstance(node, (*_DEFS, ast.ClassDef, ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        # A constant, not a computation that may read input or take time at import.
        calls = [n for n in ast.walk(node.value) if isinstance(n, ast.Call)]
        return all(isinstance(c.func, ast.Name) and c.func.id in _SAFE_CALLS for c in calls)
    return False


_PROSE_NAMES = (
    re.compile(rf"\bdef\s+({_NAME})\s*\("),
    re.compile(rf"\b(?:function|method)\s+(?:called|named)\s+[`'\"]?({_NAME})", re.I),
    re.compile(rf"\b(?:function|method)\s+[`'\"]?({_NAME})[`'\"]?\s*\(", re.I),
    re.compile(rf"\b(?:function|method)\s+`({_NAME})`", re.I),
    re.compile(rf"`({_NAME})\([^`\n]*\)`"),
)


def entry_point(question: str) -> str | None:
    """The name of the function the question asks for, or None.

    The last stub in its code (a def whose body is only a docstring, `pass`, `...` or a raise), as in
    HumanEval, where helpers with real bodies may come first; else a function the prose names ("a function
    called foo", "`is_prime(n)`"); else the last def in its code.
    """
    tree = _parses(question_code(question))
    defs = [n for n in tree.body if isinstance(n, _DEFS)] if tree else []
    stubs = [d.name for d in defs if _is_stub(d)]
    if stubs:
        return stubs[-1]
    for pattern in _PROSE_NAMES:
        for match in pattern.finditer(question):
            name = match[1]
            if not keyword.iskeyword(name) and name not in _BUILTINS:
                return name
    return defs[-1].name if defs else None


def _is_stub(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    def empty(stmt: ast.stmt) -> bool:
        return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)) or isinstance(
            stmt, (ast.Pass, ast.Raise)
        )

    return all(empty(stmt) for stmt in node.body)


def _parameters(code: str, entry: str | None) -> list[str]:
    tree = _parses(code)
    for node in reversed(tree.body if tree and entry else []):
        if isinstance(node, _DEFS) and node.name == entry:
            return [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
    return []


# ---------------------------------------------------------------------------------------------------
# Expressions: which count as a literal, which call the entry.


def _literal(node: ast.expr) -> bool:
    """A value written out: constants, containers of them, signed numbers, set() and the like."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _literal(k) for k in node.keys) and all(map(_literal, node.values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _literal(node.operand)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):  # a complex number
        return isinstance(node.right, ast.Constant) and isinstance(node.right.value, complex)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _SAFE_CALLS:
        return not node.keywords and all(map(_literal, node.args))
    return False


class _Booleans(ast.NodeTransformer):
    """Prose writes true / false / null; Python means True / False / None."""

    WORDS = {"true": True, "false": False, "none": None, "null": None}

    def visit_Name(self, node: ast.Name) -> ast.expr:
        word = node.id.lower()
        return ast.Constant(self.WORDS[word]) if word in self.WORDS else node


def _calls(node: ast.AST, entry: str | None) -> bool:
    """Whether node calls entry (None: any function but a builtin)."""
    return any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and (n.func.id == entry if entry else n.func.id not in _BUILTINS)
        for n in ast.walk(node)
    )


def _closed(node: ast.expr, entry: str) -> bool:
    """Whether node reads no name but entry, builtins and its own comprehension variables."""
    bound = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    loads = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return loads <= _BUILTINS | bound | {entry}


def _leading_expression(text: str) -> tuple[ast.expr, int] | None:
    """The expression text starts with: the longest prefix that parses.

    Cuts are tried at spaces and punctuation only, longest first; a sentence's closing period is not
    part of the value ("returns 1." is 1, not 1.0). Where the sentence goes on to the next example
    ("f(1) == 2 and f(2) == 3", "f(1) -> 2, f(2) -> 3") the value is the first part. Also how many
    characters of text it took.
    """
    skipped = len(text) - len(text.lstrip())
    text = text.strip()[:_MAX_CHARS]
    cuts = sorted({len(text)} | {k for k, ch in enumerate(text) if ch.isspace() or ch in ",;#"}, reverse=True)
    for k in cuts:
        piece = text[:k].rstrip()
        for attempt in [piece[:-1], piece] if piece.endswith(".") else [piece]:
            try:
                node = _Booleans().visit(ast.parse(attempt, mode="eval")).body
            except _UNPARSABLE:
                continue
            if any(
                isinstance(n, ast.Attribute) and isinstance(n.value, ast.Constant) for n in ast.walk(node)
            ):
                continue  # "False. f(9) ..." is a sentence's end, not an attribute of False
            parts = (
                node.values
                if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And)
                else node.elts
                if isinstance(node, ast.Tuple) and not text.startswith("(")
                else []
            )
            if parts and _literal(parts[0]) and not all(map(_literal, parts[1:])):
                node = parts[0]
                end = node.end_col_offset
                return node, skipped + (end if node.end_lineno == 1 and end is not None else len(attempt))
            return node, skipped + len(attempt)
    return None


def _leading_literal(text: str) -> ast.expr | None:
    """The literal text starts with, if the expression it starts with is one."""
    found = _leading_expression(text)
    return found[0] if found and _literal(found[0]) else None


def _leading_call(line: str, start: int, name: str) -> tuple[ast.Call, int] | None:
    """The call to name that begins at start, and where it ends."""
    for end in (k + 1 for k in range(start, min(len(line), start + _MAX_CHARS)) if line[k] == ")"):
        try:
            node = ast.parse(line[start:end], mode="eval").body
        except _UNPARSABLE:
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name:
            return node, end
    return None


# ---------------------------------------------------------------------------------------------------
# The question's examples.


def extract_examples(question: str, entry: str | None = None) -> list[Case]:
    """The examples a question states, in the order written, each once.

    entry None: the question's `entry_point`, else calls to any function count (but then the forms that
    name no function, "For x = 1 the output should be 2" and "Input: ... Output: ...", cannot be read).
    """
    entry = entry or entry_point(question)
    params = _parameters(question_code(question), entry)
    lines = question.splitlines()
    used: set[int] = set()
    found = list(_doctests(lines, entry, used))
    rest = [(i, line) for i, line in enumerate(lines) if i not in used]
    found += _arrows(rest, entry)
    if entry:
        found += _for_output(rest, entry, params)
        found += _input_output(rest, entry, params)
    found.sort(key=lambda pair: pair[0])
    return _unique(case for _, case in found)


def _unique(cases: Iterable[Case]) -> list[Case]:
    seen: dict[tuple[str, str | None, str | None], Case] = {}
    for case in cases:
        seen.setdefault(case.key(), case)
    return list(seen.values())


_PROMPT = re.compile(r"^(\s*)>>>(?: (.*))?$")
_QUOTES = ('"""', "'''")


def _doctests(lines: list[str], entry: str | None, used: set[int]) -> Iterator[tuple[int, Case]]:
    assigned: set[str] = set()  # names earlier examples set up: a case runs alone, without them
    i = 0
    while i < len(lines):
        match = _PROMPT.match(lines[i])
        if not match:
            i += 1
            continue
        indent, start, source = match[1], i, [match[2] or ""]
        i += 1
        while i < len(lines) and re.match(re.escape(indent) + r"\.\.\.(?: |$)", lines[i]):
            source.append(lines[i][len(indent) + 4 :])
            i += 1
        want: list[str] = []
        while i < len(lines) and _is_output(lines[i], indent):
            text, closed = _output_line(lines[i][len(indent) :])
            want.append(text)
            i += 1
            if closed:
                break
        used.update(range(start, i))
        case = _doctest_case("\n".join(source), want, entry, assigned, "\n".join(lines[start:i]).strip())
        if case:
            yield start, case


def _is_output(line: str, indent: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and line.startswith(indent) and not stripped.startswith((">>>", *_QUOTES))


def _output_line(text: str) -> tuple[str, bool]:
    """One line of expected output, and whether the docstring closes on it."""
    stripped = text.rstrip()
    if stripped.endswith(_QUOTES):
        return stripped[:-3], True
    return ("" if stripped.strip() == "<BLANKLINE>" else stripped), False


def _doctest_case(
    source: str, want: list[str], entry: str | None, assigned: set[str], text: str
) -> Case | None:
    tree = _parses(source)
    if tree is None or len(tree.body) != 1:
        return None
    stmt = tree.body[0]
    if not isinstance(stmt, ast.Expr):
        assigned |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        return None
    expr = stmt.value
    names = {n.id for n in ast.walk(expr) if isinstance(n, ast.Name)}
    if not _calls(expr, entry) or names & assigned:
        return None
    output = "\n".join(want).strip("\n")
    segment = ast.get_source_segment(source, expr) or ast.unparse(expr)
    if output.startswith("Traceback (most recent call last)"):
        raised = re.match(rf"\s*({_NAME}(?:\.{_NAME})*)\s*(?::|$)", want[-1])
        return Case(segment, None, raised[1].split(".")[-1], "doctest", text) if raised else None
    equal = _equality(expr, source, entry)
    if equal and output in ("", "True"):
        return Case(*equal, source="doctest", text=text)
    if not output:
        # Nothing printed means None; a bare non-call with no output is more likely a typo.
        return Case(segment, "None", source="doctest", text=text) if isinstance(expr, ast.Call) else None
    return Case(segment, output, source="doctest", text=text)


def _equality(expr: ast.expr, source: str, entry: str | None) -> tuple[str, str] | None:
    """(call, expected) of `f(x) == y` (either way round), else None."""
    if not (isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], ast.Eq)):
        return None
    left, right = expr.left, expr.comparators[0]
    if _calls(right, entry) and not _calls(left, entry):
        left, right = right, left
    if not _calls(left, entry) or _calls(right, entry):
        return None
    call, expected = (ast.get_source_segment(source, n) or ast.unparse(n) for n in (left, right))
    return call, expected


_ARROW = re.compile(
    r"\s*(?:==>|==|=>|->|➞|→|⇒|=|\bshould\s+(?:return|be|give)\b|\bwill\s+(?:return|be|give)\b"
    r"|\breturns?\b|\bgives?\b|\bevaluates\s+to\b)\s*"
)


def _arrows(lines: list[tuple[int, str]], entry: str | None) -> list[tuple[int, Case]]:
    """`f(x) == y`, `f(x) -> y`, `f(x) ➞ y`, `f(x) returns y` and the like, anywhere in a line.

    None where the text defines the function by a recurrence (`tri(n) = tri(n - 1) + ...`): its
    `tri(4) = 3` lines are then values of a mathematical sequence, which need not be what the function
    returns (HumanEval's tri returns a list of them).
    """
    name = re.escape(entry) if entry else _NAME
    calls = ((i, line, m) for i, line in lines for m in re.finditer(rf"(?<![\w.])({name})\s*\(", line))
    found, recurrence = [], False
    for i, line, match in itertools.islice(calls, _MAX_CALLS):
        if entry is None and (match[1] in _BUILTINS or keyword.iskeyword(match[1])):
            continue
        if re.search(r"\bdef\s+$", line[: match.start()]):  # a signature, not a call
            continue
        case, recurs = _arrow_case(line, match.start(), match[1])
        recurrence |= recurs
        if case:
            found.append((i, case))
    return [] if recurrence else found


def _arrow_case(line: str, start: int, name: str) -> tuple[Case | None, bool]:
    """The example a call at start begins, and whether the line defines name by itself instead."""
    called = _leading_call(line, start, name)
    if not called:
        return None, False
    call, end = called
    separator = _ARROW.match(line, end)
    if not separator:
        return None, False
    rest = line[separator.end() :]
    found = _leading_expression(rest)
    if found is None:
        return None, False
    expected, length = found
    if _calls(expected, name):
        return None, True
    literal_args = all(map(_literal, call.args)) and all(_literal(k.value) for k in call.keywords)
    if not _literal(expected) or not literal_args:
        return None, False
    if rest.lstrip().startswith("(") and not isinstance(expected, ast.Tuple):
        # Prose writes a tuple of one without Python's comma: ("Venus") is ('Venus',).
        expected = ast.Tuple([expected], ast.Load())
    text = line[start : separator.end() + length]
    return Case(line[start:end], ast.unparse(expected), source="prose", text=text), False


def _arguments(text: str, entry: str, params: list[str]) -> str | None:
    """`f(...)` from arguments as prose writes them ("arr = [1, 2], k = 3" or "[1, 2], 3").

    A sentence may go on after them ("N = 1000, the sum of digits will be 1"): the longest run of
    comma-separated pieces that reads as arguments counts. Named ones go in the signature's order.
    """
    text = text.strip().rstrip(".,;")
    for cut in sorted({len(text)} | {k for k, ch in enumerate(text) if ch == ","}, reverse=True):
        try:
            call = ast.parse(f"_f({text[:cut]})", mode="eval").body
        except _UNPARSABLE:
            continue
        if not isinstance(call, ast.Call) or not call.args and not call.keywords:
            continue
        if all(map(_literal, call.args)) and all(k.arg and _literal(k.value) for k in call.keywords):
            return _call_text(entry, call, params)
    return None


def _call_text(entry: str, call: ast.Call, params: list[str]) -> str:
    named = {k.arg: k.value for k in call.keywords if k.arg}
    args = list(call.args)
    order = params[len(args) : len(args) + len(named)]
    if named and set(order) == set(named):
        args += [named[p] for p in order]
    elif named and not params:  # prose signature unknown: as written
        args += list(named.values())
    elif named:
        keywords = [f"{k}={ast.unparse(v)}" for k, v in named.items()]
        return f"{entry}({', '.join([*map(ast.unparse, args), *keywords])})"
    return f"{entry}({', '.join(map(ast.unparse, args))})"


_FOR_OUTPUT = re.compile(
    rf"\bfor\s+(?P<args>{_NAME}\s*=.*?)[\s,]+the\s+(?:output|result|answer|return(?:ed)?\s+value)\s+"
    r"(?:should|will|would)\s+be\s*:?\s*(?P<expected>.+)$",
    re.I,
)


def _for_output(lines: list[tuple[int, str]], entry: str, params: list[str]) -> Iterator[tuple[int, Case]]:
    """Prose like "For lst = [1, 2] the output should be 3" (common in HumanEval)."""
    for i, line in lines:
        match = _FOR_OUTPUT.search(line)
        call = match and _arguments(match["args"], entry, params)
        expected = match and _leading_literal(match["expected"])
        if call and expected is not None:
            yield i, Case(call, ast.unparse(expected), source="prose", text=line.strip())


_INPUT = re.compile(r"^\s*(?:[-*]\s*)?(?:example\s*\d*\s*:\s*)?input\s*:\s*(?P<args>.+?)\s*$", re.I)
_OUTPUT = re.compile(r"^\s*(?:[-*]\s*)?output\s*:\s*(?P<expected>.+?)\s*$", re.I)
_SAME_LINE = re.compile(r"\binput\s*:\s*(?P<args>.+?)[\s,;]+output\s*:\s*(?P<expected>.+)$", re.I)


def _input_output(lines: list[tuple[int, str]], entry: str, params: list[str]) -> Iterator[tuple[int, Case]]:
    """Pairs like "Input: arr = [1, 2], k = 1" then "Output: [2]", on one line or the next few."""
    for n, (i, line) in enumerate(lines):
        match = _SAME_LINE.search(line)
        if match:
            pair, text = (match["args"], match["expected"]), line.strip()
        elif match := _INPUT.match(line):
            after = next((m for _, later in lines[n + 1 : n + 4] if (m := _OUTPUT.match(later))), None)
            if after is None:
                continue
            pair, text = (match["args"], after["expected"]), f"{line.strip()} / {after[0].strip()}"
        else:
            continue
        call, expected = _arguments(pair[0], entry, params), _leading_literal(pair[1])
        if call and expected is not None:
            yield i, Case(call, ast.unparse(expected), source="prose", text=text)


# ---------------------------------------------------------------------------------------------------
# Tests a model wrote.


def parse_asserts(text: str, entry: str) -> list[Case]:
    """The asserts in text (fenced or not, in a test function or not) that test entry, as Cases.

    `assert f(x) == y` (either way round, y may be `pytest.approx(y)`), `assert f(x) is True`,
    `assert math.isclose(f(x), y)`, `assert abs(f(x) - y) < eps`; a bare `assert f(x)` reads as a
    predicate that must be True, `assert not f(x)` as one that must be False.
    """
    lines = text.splitlines()
    cases = []
    i = 0
    while i < len(lines):
        if not re.match(r"\s*assert\b", lines[i]):
            i += 1
            continue
        for end in range(i + 1, min(i + 12, len(lines) + 1)):  # an assert may span a few lines
            chunk = "\n".join(line.strip() for line in lines[i:end])
            tree = _parses(chunk)
            if tree is not None:
                break
        else:
            i += 1
            continue
        i = end
        stmt = tree.body[0] if len(tree.body) == 1 else None
        # `assert f(x), False` is a small model's way of writing f(x) == False, or of nothing: ambiguous.
        bare = isinstance(stmt, ast.Assert) and stmt.msg is not None and isinstance(stmt.test, ast.Call)
        pair = _assert_pair(stmt.test, entry) if isinstance(stmt, ast.Assert) and not bare else None
        if pair:
            cases.append(Case(ast.unparse(pair[0]), ast.unparse(pair[1]), source="generated", text=chunk))
    return _unique(cases)


def _assert_pair(test: ast.expr, entry: str) -> tuple[ast.expr, ast.expr] | None:
    pair = _assert_sides(test)
    if pair is None:
        return None
    call, expected = pair
    if _calls(expected, entry) and not _calls(call, entry):
        call, expected = expected, call
    if not _calls(call, entry) or not _closed(call, entry) or not _literal(expected):
        return None
    return call, expected


def _assert_sides(test: ast.expr) -> tuple[ast.expr, ast.expr] | None:
    """The two things an assert says are equal, before deciding which one is the call."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        op, right = test.ops[0], test.comparators[0]
        if isinstance(op, ast.Eq):
            return test.left, _unwrap_approx(right)
        if isinstance(op, ast.Is) and isinstance(right, ast.Constant):
            return test.left, right
        if isinstance(op, (ast.Lt, ast.LtE)):  # abs(f(x) - y) < eps
            inner = test.left
            if isinstance(inner, ast.Call) and _func_name(inner) == "abs" and len(inner.args) == 1:
                diff = inner.args[0]
                if isinstance(diff, ast.BinOp) and isinstance(diff.op, ast.Sub):
                    return diff.left, diff.right
        return None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return test.operand, ast.Constant(False)
    if isinstance(test, ast.Call) and _func_name(test) == "isclose" and len(test.args) == 2:
        return test.args[0], test.args[1]
    if isinstance(test, ast.Call):
        return test, ast.Constant(True)
    return None


def _unwrap_approx(node: ast.expr) -> ast.expr:
    if isinstance(node, ast.Call) and _func_name(node) == "approx" and node.args:
        return node.args[0]
    return node


def _func_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
