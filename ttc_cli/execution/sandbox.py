"""Run one untrusted command (a program a model wrote, a test command, a `cmd:` verifier) contained.

Every run gets a fresh scratch directory (its cwd, HOME and TMPDIR, removed afterwards: `scratch`), an
environment of a few safe variables (never the user's API keys), its own session and process group,
resource limits (CPU seconds, address space, file size, no core dumps, a process count), a wall timeout
that SIGKILLs the whole group, a parent-death signal (a killed ttc takes the program with it), and
stdout/stderr drained concurrently into capped buffers, so a chatty program never blocks on a full pipe.

Never as root. When ttc is root the program runs as nobody, its scratch dir handed over to it, so it
cannot lift a limit, leave its cgroup, signal ttc, or read or write what only root may. Under bubblewrap
the switch happens inside the sandbox: bwrap, started as root without a user namespace (in one, uid 0
would still own root's files), keeps only CAP_SETUID/SETGID for a few lines of Python that become nobody
and exec the program. Without bubblewrap nobody must be able to run the command itself: where it cannot
(ttc's Python under /root), each run fails saying so, and `isolation()` says it up front.

With bubblewrap (`bwrap` on PATH and working; probed once) it also runs in new namespaces: no network (an
empty network namespace: 127.0.0.1 is the sandbox's own loopback), its own PID namespace (killing bwrap
kills all of it, and other processes, ttc's environment included, are not visible), a read-only view of
/usr, /bin, /lib*, /etc and the Python prefixes ttc runs from, an empty /tmp, no capabilities, and the
scratch dir as the only writable host path; homes, the current directory and other projects are not
visible (`readable` may name more, never `/` or a home). Not isolated even then: reading that system view,
the host's CPU and memory beyond the per-process limits, disk in the scratch dir, the kernel itself (no
seccomp filter).

Without bubblewrap the program runs as the user (root: as nobody): it can read and write whatever that
user can, reach the network, and see other processes (as the user: read their environment in /proc, ttc's
with any API keys in it, and start processes outside ttc's reach); only the scratch dir, clean
environment, limits, timeout and parent-death signal apply.

Processes: where a pids cgroup can be made (`cgroup`) and the program cannot touch it (it runs as nobody,
or under bubblewrap, which hides /sys), its pids.max caps the count and it lists every process to kill at
the end, setsid() or not. Otherwise RLIMIT_NPROC = the tasks the program's user already runs + the limit
(it counts all of that user's tasks, and cannot be raised by them), and a process that calls setsid()
escapes the group kill. `isolation()` says which applies.

TTC_SANDBOX forces a mode: `bwrap` (where bubblewrap does not work every run fails with that reason),
`rlimits` (no bubblewrap even if present), `off` (no bubblewrap, limits or cgroup, and as the user, root
too: only the scratch dir, clean environment, timeout and output cap, for trusted code a limit breaks).
Unset: bwrap if it works. Windows has none of this: there, running code is refused with one line.

This module is longer than most here because containment is one concern with many edges (namespaces,
who the program runs as, limits, pipes, kills) that only hold together; its scratch dirs and cgroups are
the modules beside it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL, PIPE, Popen
from threading import Event
from typing import Any

from ttc_cli.errors import UsageError
from ttc_cli.execution import cgroup, scratch

MODES = ("auto", "bwrap", "rlimits", "off")
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_MOUNTED = ("/", "/dev", "/proc", "/tmp")
_ROOT_NAMESPACES = (
    "--unshare-ipc",
    "--unshare-pid",
    "--unshare-net",
    "--unshare-uts",
    "--unshare-cgroup-try",
)
_BWRAP_TASKS = 3  # bwrap's own processes count against pids.max too
_Bufs = tuple[bytearray, bytearray]
# Model-written code runs at the lowest priority: llama.cpp's threads wait on each other, so a program
# busy beside them slows every decoding step many times over (seen: 16 samples at 2.9 s a step instead of
# 0.2 on 2 cores); at this priority it takes what decoding leaves. Its limits are CPU seconds, which
# waiting does not spend; its wall timeouts allow for the wait.
NICE = 19
_GRACE_S = 0.2  # how long pipes may stay open after the program exits (a background child holding them)
_PR_SET_PDEATHSIG = 1
# Run by bwrap as root with CAP_SETUID/SETGID only: become nobody, enter the scratch dir (nobody's 0700 one,
# which capless root may not), then the program. `warnings` is what execvp imports: loaded first, a command
# still runs where nobody cannot read the stdlib.
_BECOME = """import os, sys, warnings
uid, gid, cwd, *argv = sys.argv[1:]
os.setgroups([]); os.setgid(int(gid)); os.setuid(int(uid))
os.chdir(cwd); os.environ["PWD"] = cwd
try:
    os.execvp(argv[0], argv)
except OSError as e:
    sys.stderr.write(f"ttc: cannot run {argv[0]!r}: {e.strerror}\\n")
    sys.exit(127)
"""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024  # address space per process (RLIMIT_AS)
    file_mb: int = 16  # largest file it may write (RLIMIT_FSIZE)
    processes: int = 64  # tasks at once, threads included (pids cgroup, else RLIMIT_NPROC)
    output_bytes: int = 65536  # kept of stdout and of stderr each; the rest is read and dropped


@dataclass(frozen=True)
class Outcome:
    status: str  # ok (exit 0), error (non-zero exit), timeout (wall or CPU limit), killed (other signal)
    returncode: int | None  # negative: killed by that signal; None: never started
    stdout: str
    stderr: str
    seconds: float
    truncated: bool = False

    def to_json(self) -> dict[str, object]:
        out, err, seconds = _clip(self.stdout), _clip(self.stderr), round(self.seconds, 3)
        return dict(status=self.status, returncode=self.returncode, stdout=out, stderr=err, seconds=seconds)


def _clip(text: str, n: int = 2000) -> str:
    # Head and tail: an answer is printed first, a traceback's cause last.
    return text if len(text) <= n else f"{text[: n // 2]}\n…[{len(text) - n} chars]…\n{text[-n // 2 :]}"


def _mode() -> str:
    if sys.platform == "win32":
        raise UsageError(
            "ttc cannot run model-written code on Windows (--task program|hybrid, --check, --verifier cmd:)",
            "run ttc under WSL, or a task that runs no code",
        )
    mode = os.environ.get("TTC_SANDBOX", "").strip().lower() or "auto"
    if mode not in MODES:
        raise UsageError(f"TTC_SANDBOX={mode!r} is not a sandbox mode", f"use one of: {', '.join(MODES)}")
    return ("bwrap" if _bwrap()[1] is None else "rlimits") if mode == "auto" else mode


def _runner(mode: str) -> tuple[int, int] | None:
    """The uid and gid the program runs as when that is not ttc's own: nobody's, when ttc is root."""
    return _nobody() if mode != "off" and os.geteuid() == 0 else None


@functools.cache
def _nobody() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


@functools.cache
def _bwrap() -> tuple[str, str | None]:
    """bwrap's path and why it cannot be used here (None: it works), from one trivial run."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "", "bwrap is not on PATH"
    where, runner = scratch.new(), _runner("bwrap")
    try:
        if runner is not None:
            scratch.give(where, *runner)
        cmd, env = [*_bwrap_argv(exe, where, (), runner), "true"], _environment(where, ())
        done = subprocess.run(cmd, env=env, cwd=where, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return exe, f"bwrap failed to start: {e}"
    finally:
        scratch.remove(where)
    return exe, None if done.returncode == 0 else f"bwrap does not work here: {done.stderr.strip()[:200]}"


def _bwrap_argv(exe: str, where: str, readable: Sequence[str], runner: tuple[int, int] | None) -> list[str]:
    if runner is None:
        argv = [exe, "--unshare-all", "--die-with-parent", "--new-session"]
    else:  # root: no user namespace, and only what _BECOME needs to become nobody
        argv = [exe, *_ROOT_NAMESPACES, "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    for path in _SYSTEM:  # merged /usr: /bin -> usr/bin stays a link, its target is bound once
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    # After /tmp's tmpfs, so a readable path under /tmp is not hidden by it.
    bound, made = list(_SYSTEM), set(_MOUNTED)
    for path in dict.fromkeys(os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, *readable)):
        if os.path.exists(path) and not _within(path, bound):
            argv += [*_dirs_above(path, made), "--ro-bind", path, path]
            bound.append(path)
    argv += [*_dirs_above(where, made), "--bind", where, where]
    # The root is bwrap's tmpfs, where the parents of bound paths were made: read-only too, not RAM to fill.
    argv += ["--remount-ro", "/", "--chdir", "/" if runner else where, "--"]
    return argv + ([sys.executable, "-I", "-S", "-c", _BECOME, *map(str, runner), where] if runner else [])


def _within(path: str, tops: Sequence[str]) -> bool:
    return any(path == top or path.startswith(top.rstrip("/") + "/") for top in tops)


def _dirs_above(path: str, made: set[str]) -> list[str]:
    """`--dir` for each parent of path not made yet: bwrap would otherwise copy the host's modes, and
    nobody could not pass a /root or a 0700 temporary directory on the way to its Python or scratch dir."""
    out = []
    for parent in reversed(Path(path).parents):
        if str(parent) not in made:
            made.add(str(parent))
            out += ["--dir", str(parent)]
    return out


def _readable(paths: Sequence[str | Path]) -> list[str]:
    """`readable`, refusing a path that would show the program the whole host or someone's home."""
    out = []
    for p in paths:
        path = os.path.abspath(p)
        homes = (os.path.expanduser("~"), "/root", "/home", "/Users")
        if os.path.dirname(path) in ("/home", "/Users") or any(_within(home, [path]) for home in homes):
            raise ValueError(f"readable: {path} would show the program a home directory (or the whole host)")
        out.append(path)
    return out


def _environment(where: str, keep_env: Sequence[str], nobody: bool = False) -> dict[str, str]:
    path = os.environ.get("PATH", os.defpath).split(os.pathsep)
    if nobody:  # root's own dirs (/root/...) would only turn "no such program" into "permission denied"
        path = [p for p in path if scratch.open_to_others(p)]
    env = dict(PATH=os.pathsep.join(path), LANG="C.UTF-8", LC_ALL="C.UTF-8", HOME=where)
    env |= dict(TMPDIR=where, PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8")
    return env | {name: os.environ[name] for name in keep_env if name in os.environ}


def _cgroup_holds(mode: str, runner: tuple[int, int] | None) -> bool:
    """Whether a pids cgroup caps the run in a way the program cannot undo."""
    return mode != "off" and cgroup.parent() is not None and (mode == "bwrap" or runner is not None)


def _process_cap(mode: str, runner: tuple[int, int] | None) -> str:
    if _cgroup_holds(mode, runner):
        return "pids cgroup"
    return "RLIMIT_NPROC" if os.path.isdir("/proc") else "not limited: no /proc to count tasks"


def _tasks_of(uid: int) -> int | None:
    """Tasks (threads included) uid runs now, which RLIMIT_NPROC counts against the child too; None
    without /proc. Zombies are left out: the last run's killed processes are reaped moments later, and
    counted they would raise this run's cap by as many."""
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return None
    count = 0
    for entry in entries:
        with contextlib.suppress(OSError, ValueError, KeyError):
            fields = dict(line.split(":", 1) for line in Path(entry.path, "status").read_text().splitlines())
            mine = int(fields["Uid"].split()[0]) == uid and fields["State"].split()[0] not in ("Z", "X")
            count += int(fields["Threads"]) if mine else 0
    return count


def isolation(limits: Limits | None = None) -> str:
    """One line: how a run on this host is contained and why in this mode (for --json, -v and `ttc
    doctor`); with a run's `limits`, their figures."""
    mode, problem = _mode(), _bwrap()[1]
    if mode == "off":
        you = "you (root)" if os.geteuid() == 0 else "you"
        return (
            f"off (TTC_SANDBOX=off): runs as {you}; scratch dir, clean environment, timeout, output cap only"
        )
    if mode == "bwrap" and problem:
        return f"none: TTC_SANDBOX=bwrap but {problem}; every run fails"
    runner = _runner(mode)
    caps = _caps(limits, _process_cap(mode, runner))
    if mode == "bwrap":
        who = " as nobody (ttc is root)" if runner else ""
        head = f"bubblewrap{who}: no network, read-only system, scratch dir only"
        return f"{head}, clean environment; limits: {caps}"
    forced = os.environ.get("TTC_SANDBOX", "").strip().lower() == "rlimits"
    why, who = "TTC_SANDBOX=rlimits" if forced else problem, "runs as you" if runner is None else _as_nobody()
    head = f"limited: no bubblewrap ({why}), so no network or filesystem isolation"
    return f"{head}; {who}; clean environment; limits: {caps}"


def _as_nobody() -> str:
    if scratch.open_to_others(sys.executable):
        return "runs as nobody, not root"
    return (
        f"runs as nobody, not root, who cannot run {sys.executable}: every program fails (install "
        "bubblewrap, let others read that Python, or TTC_SANDBOX=off to run programs as root)"
    )


def _caps(limits: Limits | None, processes: str) -> str:
    if limits is None:
        return f"CPU time, memory, file size, processes ({processes}), wall timeout"
    caps = f"{limits.wall_s:g} s wall, {limits.cpu_s} s CPU, {limits.memory_mb} MB memory"
    return f"{caps}, {limits.file_mb} MB files, {limits.processes} processes ({processes})"


def _rlimits(limits: Limits, mode: str, runner: tuple[int, int] | None) -> list[tuple[int, tuple[int, int]]]:
    import resource

    wanted = {
        resource.RLIMIT_CPU: (limits.cpu_s, limits.cpu_s + 1),  # SIGXCPU first, SIGKILL a second later
        resource.RLIMIT_AS: (limits.memory_mb << 20,) * 2,
        resource.RLIMIT_FSIZE: (limits.file_mb << 20,) * 2,
        resource.RLIMIT_CORE: (0, 0),
    }
    if not _cgroup_holds(mode, runner):
        # Counted for the user the program runs as (root ignores the limit; nobody, after the switch, not).
        tasks = _tasks_of(runner[0] if runner else os.getuid())
        if tasks is not None:
            wanted[resource.RLIMIT_NPROC] = (tasks + limits.processes,) * 2
    hard = {res: resource.getrlimit(res)[1] for res in wanted}  # only root may raise a hard limit
    return [
        (res, (s, h) if hard[res] == resource.RLIM_INFINITY else (min(s, hard[res]), min(h, hard[res])))
        for res, (s, h) in wanted.items()
    ]


@functools.cache
def _prctl() -> Any:
    """libc's prctl (Linux), loaded before any fork: loading a library in the child could deadlock."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).prctl
    return None


def _child_setup(
    mode: str, limits: Limits, runner: tuple[int, int] | None, group: cgroup.Cgroup | None
) -> Callable[[], None]:
    """What the child does between fork and exec: system calls only, nothing that takes a lock."""
    import resource

    rlimits = _rlimits(limits, mode, runner) if mode != "off" else []
    switch = runner if mode != "bwrap" else None  # under bubblewrap, _BECOME switches inside
    prctl, parent = _prctl(), os.getpid()

    def setup() -> None:
        os.nice(NICE)
        if group is not None:  # as root still: the cgroup's files are root's
            os.write(group.procs, b"0")
        for res, pair in rlimits:
            resource.setrlimit(res, pair)
        if switch is not None:
            os.setgroups([])
            os.setgid(switch[1])
            os.setuid(switch[0])
        if prctl is not None:
            # After setuid, which clears it. It follows the thread that forked, which waits in
            # run_isolated until the run is over.
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # ttc died before that: nothing would end this run
                os.kill(os.getpid(), signal.SIGKILL)

    return setup


def _populate(where: Path, files: dict[str, str | bytes], copy: Sequence[Path]) -> None:
    for name, content in files.items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"files: {name!r} must be a relative path inside the scratch dir")
        (where / rel).parent.mkdir(parents=True, exist_ok=True)
        (where / rel).write_bytes(content.encode() if isinstance(content, str) else content)
    for src in map(Path, copy):
        if src.is_dir():
            shutil.copytree(src, where / src.name, symlinks=True)
        else:
            shutil.copy2(src, where / src.name)


def run_isolated(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    files: dict[str, str | bytes] | None = None,
    copy: Sequence[Path] = (),
    limits: Limits = Limits(),
    keep_env: tuple[str, ...] = (),
    readable: Sequence[str | Path] = (),
    cancel: Event | None = None,
) -> Outcome:
    """Run argv in a fresh scratch dir under this host's isolation; the program's faults never raise.

    readable: more host paths it may read under bubblewrap (never `/` or a home; without bubblewrap it
    reads all its user can); cancel: set from another thread to kill the run at once (it ends "killed").
    """
    if not argv:
        raise ValueError("run_isolated: empty command")
    binds, mode, start = _readable(readable), _mode(), time.monotonic()
    exe, problem = _bwrap() if mode == "bwrap" else ("", None)
    if problem or (cancel is not None and cancel.is_set()):
        why = f"TTC_SANDBOX=bwrap, but {problem}" if problem else "cancelled before it started"
        return Outcome("error" if problem else "killed", None, "", f"ttc: {why}\n", 0.0)
    runner, group, where = _runner(mode), None, scratch.new()
    try:
        _populate(Path(where), files or {}, copy)
        if runner is not None:
            scratch.give(where, *runner)
        cmd = [*_bwrap_argv(exe, where, binds, runner), *argv] if mode == "bwrap" else list(argv)
        group = _new_cgroup(mode, limits)
        switched = runner is not None and mode == "rlimits"  # under bubblewrap _BECOME says why itself
        try:
            env = _environment(where, keep_env, nobody=switched)
            proc = _spawn(cmd, stdin, where, env, _child_setup(mode, limits, runner, group))
        except (OSError, subprocess.SubprocessError) as e:
            return Outcome("error", None, "", _cannot_run(argv[0], e, switched), time.monotonic() - start)
        bufs = (bytearray(), bytearray())
        try:
            ending = _collect(proc, start + limits.wall_s, bufs, limits.output_bytes, cancel)
        finally:
            _end(proc, group, bufs, limits.output_bytes)
    finally:
        if group is not None:
            group.destroy()
        scratch.remove(where)
    return _outcome(proc, mode, ending, bufs, limits.output_bytes, time.monotonic() - start)


def _new_cgroup(mode: str, limits: Limits) -> cgroup.Cgroup | None:
    where = cgroup.parent() if mode != "off" else None
    return cgroup.Cgroup(where, limits.processes + _BWRAP_TASKS * (mode == "bwrap")) if where else None


def _spawn(
    cmd: list[str], stdin: str | None, cwd: str, env: dict[str, str], setup: Callable[[], None]
) -> Popen[bytes]:
    with tempfile.TemporaryFile() as feed:  # a file, not a pipe: input of any size never blocks
        feed.write((stdin or "").encode())
        feed.seek(0)
        return Popen(
            cmd,
            stdin=feed if stdin is not None else DEVNULL,
            stdout=PIPE,
            stderr=PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=setup,
        )


def _cannot_run(name: str, e: Exception, as_nobody: bool) -> str:
    why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    if not as_nobody or not isinstance(e, PermissionError):
        return f"ttc: cannot run {name!r}: {why}\n"
    return (
        f"ttc: cannot run {name!r} as nobody: {why}; ttc is root, so model-written code runs as nobody: "
        f"install bubblewrap, let others read {name!r}, or set TTC_SANDBOX=off to run it as root\n"
    )


def _end(proc: Popen[bytes], group: cgroup.Cgroup | None, bufs: _Bufs, cap: int) -> None:
    """Kill what is left of the run, reap it, and take what its pipes still hold."""
    with contextlib.suppress(OSError):  # the leader is not reaped yet, so this pgid is still ours
        os.killpg(proc.pid, signal.SIGKILL)
    if group is not None:
        group.destroy()
    proc.wait()
    _collect(proc, time.monotonic() + _GRACE_S, bufs, cap, None)
    for pipe in filter(None, (proc.stdout, proc.stderr)):
        pipe.close()


def _outcome(proc: Popen[bytes], mode: str, ending: str, bufs: _Bufs, cap: int, seconds: float) -> Outcome:
    rc = proc.returncode
    sig = -rc if rc < 0 else rc - 128 if mode == "bwrap" and 128 < rc < 160 else 0  # bwrap: 128 + signal
    status = (
        "timeout" if sig == signal.SIGXCPU else ending or ("ok" if rc == 0 else "killed" if sig else "error")
    )
    out, err = (bytes(b[:cap]).decode("utf-8", "replace") for b in bufs)
    return Outcome(status, rc, out, err, seconds, any(len(b) > cap for b in bufs))


def _exited(pid: int) -> bool:
    try:  # WNOWAIT leaves the leader unreaped, so its process group id cannot be reused before the kill
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _collect(proc: Popen[bytes], deadline: float, bufs: _Bufs, cap: int, cancel: Event | None) -> str:
    """Drain both pipes until the program ends: "timeout" or "killed" if it must be ended, else ""."""
    with selectors.DefaultSelector() as sel:
        for pipe, buf in zip((proc.stdout, proc.stderr), bufs, strict=True):
            if pipe is not None and not pipe.closed:
                sel.register(pipe, selectors.EVENT_READ, buf)
        exited = 0.0
        while sel.get_map():
            now = time.monotonic()
            if cancel is not None and cancel.is_set():
                return "killed"
            exited = exited or (now if _exited(proc.pid) else 0.0)
            if exited and now > exited + _GRACE_S:
                break  # a background child still holds the pipes; the group kill ends it
            if now >= deadline:
                return "" if exited else "timeout"
            for key, _ in sel.select(min(deadline - now, 0.05)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                # One byte past the cap is kept to mark it truncated; the rest is read and dropped.
                key.data.extend(chunk[: max(0, cap + 1 - len(key.data))])
    while not _exited(proc.pid):  # it closed its pipes but runs on
        if cancel is not None and cancel.is_set():
            return "killed"
        if time.monotonic() >= deadline:
            return "timeout"
        time.sleep(0.01)
    return ""
