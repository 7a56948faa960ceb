"""Run one candidate solution against test cases in the sandbox, and read back a result per case.

One sandboxed process per candidate: `HARNESS` (a small stdlib-only program, shipped as this module's
string so it is in the wheel) loads `solution.py` (the question's context code, then the candidate's)
as a fresh module, under an alarm, then runs each case in a forked child of that process with print()
captured, killing the child at the case's limit. A fork per case (about a millisecond) buys what an
alarm in one process cannot: a case stuck in C (a regex backtracking, `sum(range(10**13))`) or in a
loop that swallows every exception, a crash, or an `os._exit` costs that case only, and every case
starts from the namespace as loaded, so one case's mutations never change another's result. The
sandbox's wall and CPU limits stay the backstop (a load that swallows its alarm): the cases the run
reported stand, the one it was in gets "timeout" or "error", the rest "skipped".

Results go out on a private duplicate of stdout, one JSON line per case, prefixed by a per-run random
nonce; fd 1 itself points at /dev/null while the candidate runs, so its prints (even `os.write(1, ...)`)
neither crowd the results out past the output cap nor pass for one. The case file is deleted before the
solution runs. This stops accidental and naive forgery, not code that goes looking through the
harness's memory: the sandbox contains a hostile candidate; the nonce keeps the output readable.

Judging: `expected` is evaluated in the solution's namespace and compared with `==`, floats with
math.isclose (rel 1e-6, abs 1e-9) inside lists, tuples and dicts; if it does not evaluate it is text,
compared with repr(value); a doctest's text is also compared with what was printed (doctest semantics),
whitespace-normalised. `raises` passes on that exception class or a subclass, by name. If the candidate
does not define the entry function but defines exactly one top-level function, that function answers
to the entry's name (prose questions: the model may name it otherwise).

`output` is a behaviour signature as well as a display: equal values give equal strings across runs and
processes (string hashing differs per process, so a set's repr would not). So sets are shown sorted,
object addresses are blanked, floats are shown to 12 significant digits (values equal but for rounding
noise share a string), and a long repr keeps its head and a checksum of the whole.

This module is longer than most (~430 lines) because the program that runs in the sandbox and the code
that writes its input and reads its output are one protocol; split, neither half reads alone.
"""

from __future__ import annotations

import ast
import builtins
import json
import math
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ttc_cli.answers.examples import Case
from ttc_cli.execution.sandbox import Limits, Outcome

STATUSES = ("pass", "fail", "error", "timeout", "observed", "skipped")
HARNESS_FILE, SOLUTION_FILE, CASES_FILE = "harness.py", "solution.py", "cases.json"
LOAD_S = 1.0  # what loading the solution may take beyond one case's limit: its imports

HARNESS = r'''
import ast, io, json, math, os, re, resource, select, signal, sys, time, types, zlib

WALL = 20  # a case's wall clock, in CPU limits: it runs at the lowest priority while the model decodes

TOLERANCE = dict(rel_tol=1e-6, abs_tol=1e-9)
CLIP, BUDGET = 200, 100_000  # characters shown; characters of repr built at most
NO_VALUE = object()


class LoadTimeout(BaseException):  # not an Exception: `except Exception` at top level does not stop it
    pass


def on_alarm(signum, frame):
    raise LoadTimeout()


class Capture(io.TextIOBase):
    """What a call prints: the first CLIP * 50 characters, the rest counted and dropped."""

    def __init__(self):
        self.parts, self.size = [], 0

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        if self.size < CLIP * 50:
            self.parts.append(text[: CLIP * 50 - self.size])
        self.size += len(text)
        return len(text)

    def take(self):
        text, self.parts, self.size = "".join(self.parts), [], 0
        return text


def stable(value, budget):
    """repr, the same for equal values in any process: sets sorted, floats rounded, no addresses."""
    if budget[0] <= 0:
        return "..."
    if isinstance(value, float) and math.isfinite(value):
        text = repr(float(f"{value:.12g}"))
    elif isinstance(value, (set, frozenset)):
        inner = ", ".join(sorted(stable(v, budget) for v in value))
        text = ("{" + inner + "}" if inner else "set()") if type(value) is set else "frozenset({%s})" % inner
    elif type(value) in (list, tuple):
        inner = ", ".join(stable(v, budget) for v in value)
        text = f"[{inner}]" if type(value) is list else f"({inner}{',' if len(value) == 1 else ''})"
    elif type(value) is dict:
        text = "{" + ", ".join(f"{stable(k, budget)}: {stable(v, budget)}" for k, v in value.items()) + "}"
    else:
        text = re.sub(r" at 0x[0-9a-fA-F]+", " at 0x...", repr(value))
    budget[0] -= len(text)
    return text


def clip(text):
    if len(text) <= CLIP:
        return text
    return f"{text[: CLIP - 40]}...[{len(text)} chars #{zlib.crc32(text.encode()):08x}]"


def shown(value, printed):
    text = stable(value, [BUDGET])
    return clip(text + (f" (printed {printed!r})" if printed and value is None else ""))


def error_text(e):
    return clip(re.sub(r" at 0x[0-9a-fA-F]+", " at 0x...", f"{type(e).__name__}: {e}".strip()))


def close(a, b, depth=0):
    if depth > 100 or isinstance(a, bool) or isinstance(b, bool):
        return bool(a == b)
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and (isinstance(a, float) or isinstance(b, float)):
        return a == b or math.isclose(a, b, **TOLERANCE)
    for kind in (list, tuple):
        if isinstance(a, kind) and isinstance(b, kind):
            return len(a) == len(b) and all(close(x, y, depth + 1) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], depth + 1) for k in a)
    return bool(a == b)


def words(text):
    return " ".join(text.split())


def matches(case, value, printed, namespace):
    expected = case["expected"]
    try:
        want = eval(expected, namespace)
    except BaseException:
        want = NO_VALUE
    if want is not NO_VALUE:
        try:
            if close(value, want):
                return True
        except BaseException:  # a candidate's __eq__ that raises is not a match
            pass
        if case["source"] != "doctest":
            return False
    seen = [repr(value)]
    if case["source"] == "doctest":  # doctest prints the value after what the call printed, unless None
        seen += [printed, printed + ("" if value is None else repr(value))]
    return words(expected) in {words(s) for s in seen}


def judge(case, namespace, capture):
    capture.take()
    try:
        value = eval(compile(case["call"], "<case>", "eval"), namespace)
    except BaseException as e:  # SystemExit and KeyboardInterrupt too
        names = {c.__name__ for c in type(e).__mro__}
        status = "pass" if case["raises"] in names else "fail" if case["raises"] else "error"
        return status, error_text(e)
    printed = capture.take()
    try:
        if case["raises"]:
            return "fail", shown(value, printed)
        if case["expected"] is None:
            return "observed", shown(value, printed)
        ok = matches(case, value, printed, namespace)
        return ("pass" if ok else "fail"), shown(value, printed)
    except BaseException as e:  # the value's own __repr__ or __eq__ failed
        return "error", error_text(e)


def forked(case, namespace, capture, seconds, results_fd, prefix):
    """judge() in a child process: a case that hangs (even in C), crashes or exits costs only itself,
    and every case starts from the namespace as loaded. The child cannot reach the results' stream."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            # CPU seconds, not wall: a case waiting for a core the model's decoding holds is not slow.
            cpu = max(1, math.ceil(seconds))
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            os.close(r)
            os.close(results_fd)
            os.write(w, (prefix + json.dumps(judge(case, namespace, capture)) + "\n").encode())
        finally:
            os._exit(0)
    os.close(w)
    found, data, deadline = None, b"", time.monotonic() + seconds * WALL
    while found is None:  # the candidate may write to w too, but it cannot know the prefix
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([r], [], [], left)[0]:
            break
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data = (data + chunk)[-(1 << 20):]
        found = next((line for line in data.decode("utf-8", "replace").splitlines(True)
                      if line.startswith(prefix) and line.endswith("\n")), None)
    os.close(r)
    if found is None:
        os.kill(pid, signal.SIGKILL)  # its own children, if any, end with the run
    _, code = os.waitpid(pid, 0)
    if found is not None:
        return json.loads(found[len(prefix):])
    signaled = os.WIFSIGNALED(code)
    if time.monotonic() >= deadline or (signaled and os.WTERMSIG(code) in (signal.SIGXCPU, signal.SIGKILL)):
        return "timeout", f"TimeoutError: over {max(1, math.ceil(seconds))} s of CPU"
    how = f"killed by signal {os.WTERMSIG(code)}" if signaled else f"exit code {os.WEXITSTATUS(code)}"
    return "error", f"the call ended its process ({how})"


def candidate_names(tree, after_line):
    """Top-level names the candidate's part binds, and the functions among them."""
    names, functions = set(), []
    for node in tree.body:
        if node.lineno <= after_line:
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            functions += [] if isinstance(node, ast.ClassDef) else [node.name]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            names |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and type(n.ctx) is ast.Store}
    return names, functions


def load(spec, capture):
    """The solution's namespace, or (None, (status, why)) when it does not load."""
    module = types.ModuleType("solution")
    module.__file__ = os.path.abspath("solution.py")
    sys.modules["solution"] = module
    try:
        with open("solution.py", encoding="utf-8") as f:
            source = f.read()
        tree = ast.parse(source, "solution.py")
        code = compile(tree, "solution.py", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        return None, ("error", error_text(e))
    seconds = spec["load_s"]
    signal.signal(signal.SIGPROF, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_PROF, seconds)  # CPU time, as a case's limit
        exec(code, module.__dict__)
        signal.setitimer(signal.ITIMER_PROF, 0)
    except LoadTimeout:
        return None, ("timeout", f"TimeoutError: loading the solution took over {seconds:g} s")
    except BaseException as e:
        signal.setitimer(signal.ITIMER_PROF, 0)
        return None, ("error", error_text(e))
    capture.take()
    names, functions = candidate_names(tree, spec["context_lines"])
    entry = spec.get("entry")
    if entry and entry not in names and len(functions) == 1:
        module.__dict__[entry] = module.__dict__[functions[0]]
    return module.__dict__, None


def main():
    with open("cases.json", encoding="utf-8") as f:
        spec = json.load(f)
    os.remove("cases.json")
    prefix = spec.pop("nonce") + " "
    out = os.dup(1)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.close(quiet)

    def emit(**fields):
        os.write(out, (prefix + json.dumps(fields) + "\n").encode())

    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)  # a big int is a value to show, not an error
    sys.stdout = capture = Capture()
    namespace, failed = load(spec, capture)
    emit(event="loaded", ok=failed is None)
    for i, case in enumerate(spec["cases"]):
        if failed:
            emit(event="result", i=i, status=failed[0], output=failed[1])
            continue
        emit(event="start", i=i)
        status, output = forked(case, namespace, capture, spec["per_case_s"], out, prefix)
        emit(event="result", i=i, status=status, output=output)
    os._exit(0)  # threads the candidate left running do not hold the run open


main()
'''


@dataclass(frozen=True)
class CaseResult:
    status: str  # pass | fail | error | timeout | observed | skipped
    output: str  # the value's stable repr (clipped), or "ExcName: message"

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, "output": self.output}


@dataclass(frozen=True)
class Job:
    """One sandboxed run: `run_isolated(job.argv, **job.kwargs)` (or `pool.submit(key, job.argv,
    **job.kwargs)`), then `job.results(outcome)`."""

    argv: list[str]
    kwargs: dict[str, Any]
    nonce: str
    cases: tuple[Case, ...]

    def results(self, outcome: Outcome) -> list[CaseResult]:
        return results(outcome, self.cases, self.nonce)


def default_limits(per_case_s: float, n_cases: int) -> Limits:
    """Each case's limit, loading's (a case's and LOAD_S more: imports), and two seconds to start, in CPU
    seconds; the wall clock allows for the lowest priority the sandbox runs at (`sandbox.NICE`)."""
    cpu = math.ceil(max(1.0, per_case_s) * (n_cases + 1) + LOAD_S + 2.0)
    return Limits(wall_s=cpu * 4.0, cpu_s=cpu, memory_mb=512, output_bytes=65536)


def job(
    solution: str,
    cases: Sequence[Case],
    context: str = "",
    per_case_s: float = 1.0,
    limits: Limits | None = None,
    entry: str | None = None,
) -> Job:
    """The run that checks `solution` (code, not a whole response) against cases, after `context`.

    entry: the function the cases test (None: the one non-builtin function their calls name, if one),
    for aliasing a candidate's single, differently named function.
    """
    prefix = context.rstrip("\n") + "\n\n\n" if context.strip() else ""
    nonce = secrets.token_hex(16)
    spec = {
        "nonce": nonce,
        "entry": entry or _entry_of(cases),
        "per_case_s": per_case_s,
        "load_s": per_case_s + LOAD_S,
        "context_lines": prefix.count("\n"),
        "cases": [case.to_json() for case in cases],
    }
    files: dict[str, str | bytes] = {
        HARNESS_FILE: HARNESS,
        SOLUTION_FILE: prefix + solution,
        CASES_FILE: json.dumps(spec),
    }
    kwargs = {"files": files, "limits": limits or default_limits(per_case_s, len(cases))}
    # -I: no user site, no PYTHON* variables, no script dir on sys.path; -S is not used, so packages
    # installed beside the interpreter (numpy, say) stay importable.
    return Job([sys.executable, "-I", HARNESS_FILE], kwargs, nonce, tuple(cases))


def _entry_of(cases: Sequence[Case]) -> str | None:
    names: set[str] = set()
    for case in cases:
        try:
            tree = ast.parse(case.call, mode="eval")
        except (SyntaxError, ValueError):
            continue
        names |= {
            n.func.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and not hasattr(builtins, n.func.id)
        }
    return names.pop() if len(names) == 1 else None


def results(outcome: Outcome, cases: Sequence[Case], nonce: str) -> list[CaseResult]:
    """One result per case from a run's outcome, whatever became of the run.

    Reported cases stand. If the run ended early (its limits, a crash, os._exit), the case it was in
    gets "timeout" or "error" with the reason, and the cases after it "skipped"; if the solution never
    loaded, every case gets the reason.
    """
    loaded, started, got = False, set[int](), dict[int, CaseResult]()
    for event in _events(outcome.stdout, nonce):
        kind, i = event.get("event"), event.get("i")
        if kind == "loaded":
            loaded = True
        elif kind == "start" and isinstance(i, int):
            started.add(i)
        elif kind == "result" and isinstance(i, int) and i not in got and event.get("status") in STATUSES:
            got[i] = CaseResult(str(event["status"]), str(event.get("output", "")))
    ended = _ending(outcome)
    out: list[CaseResult] = []
    blamed = False
    for i in range(len(cases)):
        if i in got:
            out.append(got[i])
        elif not loaded or (i in started and not blamed):
            out.append(ended)
            blamed = loaded
        else:
            why = (
                "results lost past the output cap" if outcome.truncated else f"the run ended: {ended.output}"
            )
            out.append(CaseResult("skipped", f"not run: {why}"))
    return out


def _events(stdout: str, nonce: str) -> list[dict[str, Any]]:
    prefix, events = nonce + " ", []
    for line in stdout.splitlines():
        if line.startswith(prefix):
            try:
                event = json.loads(line[len(prefix) :])
            except ValueError:  # a line the output cap cut
                continue
            if isinstance(event, dict):
                events.append(event)
    return events


def _ending(outcome: Outcome) -> CaseResult:
    """Why a run stopped before reporting a case."""
    if outcome.status == "timeout":
        return CaseResult("timeout", "TimeoutError: the run went over its time limit")
    lines = [line.strip() for line in outcome.stderr.splitlines() if line.strip()]
    rc = outcome.returncode
    how = f"killed by signal {-rc}" if rc is not None and rc < 0 else f"exited with code {rc}"
    return CaseResult("error", f"{how}: {lines[-1][:150]}" if lines else how)
