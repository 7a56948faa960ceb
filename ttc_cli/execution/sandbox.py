"""Run one untrusted command (a program a model wrote, a test command, a `cmd:` verifier) contained.

Every run gets a fresh scratch directory (cwd, HOME and TMPDIR; removed afterwards), an environment of a
few safe variables (never the user's API keys), its own session and process group, resource limits (CPU
seconds, address space, file size, no core dumps), a wall timeout that SIGKILLs the whole group, and
stdout/stderr drained concurrently into capped buffers, so a chatty program never blocks on a full pipe.

With bubblewrap (`bwrap` on PATH and working; probed once) it also runs in new namespaces: no network (an
empty network namespace: 127.0.0.1 is the sandbox's own loopback), its own PID namespace (killing bwrap
kills all of it, and other processes, ttc's environment included, are not visible), a read-only view of
/usr, /bin, /lib*, /etc and the Python prefixes ttc runs from, an empty writable tmpfs /tmp, no
capabilities (bwrap run by root keeps them unless told), and the scratch dir as the only writable host
path; homes and other projects are not visible. Not isolated even then: reading that system view, the
host's CPU and memory beyond the per-process limits, disk in the scratch dir and RAM in /tmp, the kernel
itself (no seccomp filter).

Without bubblewrap the program runs as the user (as root, it is root): it can read and write whatever the
user can, reach the network, and see other processes and read their environment in /proc (ttc's, with
any API keys in it); only the scratch dir, clean environment, limits and timeout apply, and a process that
calls setsid() escapes the group kill unless a pids cgroup holds it.

Processes: RLIMIT_NPROC counts all of a user's tasks and is never enforced for uid 0 (not even inside a user
namespace). So where a child cgroup with pids.max can be made (root on a cgroup v1 `pids` or a delegated
v2 hierarchy) that holds a fork bomb, and lets every process of the run be killed at the end; otherwise a
non-root user gets RLIMIT_NPROC = the tasks they already run + the limit; root without a cgroup gets no
count limit at all, only the timeout. `isolation()` says which applies.

TTC_SANDBOX forces a mode: `bwrap` (where bubblewrap does not work every run fails with that reason),
`rlimits` (no bubblewrap even if present), `off` (no bubblewrap, limits or cgroup: only the scratch dir,
clean environment, timeout and output cap, for trusted code a limit breaks). Unset: bwrap if it works.

This module is longer than most here (~370 lines) because containment is one concern with many edges
(namespaces, limits, the process-count cgroup, pipes, kills, cleanup) that only hold together; split up,
each piece would be unsafe on its own.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import resource
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

from ttc_cli.errors import UsageError

MODES = ("auto", "bwrap", "rlimits", "off")
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_BWRAP_TASKS = 3  # bwrap's own processes count against pids.max too
_Bufs = tuple[bytearray, bytearray]
_GRACE_S = 0.2  # how long pipes may stay open after the program exits (a background child holding them)


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
    mode = os.environ.get("TTC_SANDBOX", "").strip().lower() or "auto"
    if mode not in MODES:
        raise UsageError(f"TTC_SANDBOX={mode!r} is not a sandbox mode", f"use one of: {', '.join(MODES)}")
    return ("bwrap" if _bwrap()[1] is None else "rlimits") if mode == "auto" else mode


@functools.cache
def _bwrap() -> tuple[str, str | None]:
    """bwrap's path and why it cannot be used here (None: it works), from one trivial run."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "", "bwrap is not on PATH"
    with tempfile.TemporaryDirectory(prefix="ttc-probe-") as tmp:
        try:
            cmd, env = [*_bwrap_argv(exe, tmp, ()), "true"], _environment(tmp, ())
            done = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError) as e:
            return exe, f"bwrap failed to start: {e}"
    return exe, None if done.returncode == 0 else f"bwrap does not work here: {done.stderr.strip()[:200]}"


def _bwrap_argv(exe: str, scratch: str, readable: Sequence[str | Path]) -> list[str]:
    argv = [exe, "--unshare-all", "--die-with-parent", "--new-session"]
    argv += ["--cap-drop", "ALL"] if os.geteuid() == 0 else []
    for path in _SYSTEM:  # merged /usr: /bin -> usr/bin stays a link, its target is bound once
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    # After /tmp's tmpfs, so a readable path under /tmp is not hidden by it.
    for path in dict.fromkeys(os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, *readable)):
        if os.path.exists(path) and not any(path == s or path.startswith(s + "/") for s in _SYSTEM):
            argv += ["--ro-bind", path, path]
    # The root is bwrap's tmpfs, where the parents of bound paths were made: read-only too, not RAM to fill.
    return [*argv, "--bind", scratch, scratch, "--remount-ro", "/", "--chdir", scratch, "--"]


def _environment(scratch: str, keep_env: Sequence[str]) -> dict[str, str]:
    env = dict(PATH=os.environ.get("PATH", os.defpath), LANG="C.UTF-8", LC_ALL="C.UTF-8", HOME=scratch)
    env |= dict(TMPDIR=scratch, PYTHONDONTWRITEBYTECODE="1", PYTHONIOENCODING="utf-8")
    return env | {name: os.environ[name] for name in keep_env if name in os.environ}


@functools.cache
def _pids_parent() -> Path | None:
    """This process's pids cgroup, if a child cgroup with a pids.max can be made in it."""
    try:
        own = [line.split(":", 2) for line in Path("/proc/self/cgroup").read_text().splitlines()]
        mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    except OSError:
        return None
    for _, controllers, rel in own:
        for m in mounts:  # a v1 hierarchy with the pids controller, or the v2 one (line "0::/path")
            if (m[2] == "cgroup" and "pids" in controllers.split(",") and "pids" in m[3].split(",")) or (
                m[2] == "cgroup2" and not controllers
            ):
                parent, probe = Path(m[1] + rel.rstrip("/")), f"ttc-probe-{os.getpid()}"
                with contextlib.suppress(OSError):
                    (parent / probe).mkdir()
                    try:
                        (parent / probe / "pids.max").write_text("1")
                        return parent
                    finally:
                        (parent / probe).rmdir()
    return None


class _Cgroup:
    """One run's pids cgroup: caps its task count and lists every process to kill, setsid() or not."""

    _ids = itertools.count()

    def __init__(self, parent: Path, tasks: int) -> None:
        self.path = parent / f"ttc-{os.getpid()}-{next(self._ids)}"
        self.path.mkdir()
        (self.path / "pids.max").write_text(str(tasks))
        self.procs = os.open(self.path / "cgroup.procs", os.O_WRONLY)  # the child writes "0" to join

    def destroy(self) -> None:  # idempotent: a run also calls it on its way out of an exception
        if self.procs < 0:
            return
        os.close(self.procs)
        self.procs = -1
        for _ in range(200):  # a fork racing the read is caught next round; pids.max bounds the rounds
            with contextlib.suppress(OSError):
                for pid in (self.path / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
                self.path.rmdir()  # EBUSY until the killed tasks have exited
                return
            time.sleep(0.01)


def _tasks_of(uid: int) -> int:
    """Tasks (threads included) uid runs now, which RLIMIT_NPROC counts against the child too."""
    count = 0
    for entry in os.scandir("/proc"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            fields = dict(line.split(":", 1) for line in Path(entry.path, "status").read_text().splitlines())
            count += int(fields["Threads"]) if int(fields["Uid"].split()[0]) == uid else 0
    return count


def isolation(limits: Limits = Limits()) -> str:
    """One line: what a run on this host is isolated by (for --verbose output and bug reports)."""
    mode, problem = _mode(), _bwrap()[1]
    if mode == "off":
        return "off (TTC_SANDBOX=off): scratch dir, clean environment, wall timeout and output cap only"
    if mode == "bwrap" and problem:
        return f"none: TTC_SANDBOX=bwrap but {problem}; every run fails"
    nproc = "RLIMIT_NPROC" if os.geteuid() else "not limited: root without a pids cgroup"
    caps = (
        f"{limits.wall_s:g} s wall, {limits.cpu_s} s CPU, {limits.memory_mb} MB memory, {limits.file_mb} MB"
    )
    caps += f" files, {limits.processes} processes ({'pids cgroup' if _pids_parent() else nproc})"
    if mode == "bwrap":
        return (
            f"bubblewrap: no network, read-only system, scratch dir only, clean environment; limits: {caps}"
        )
    return f"limited: no bubblewrap, so no network or filesystem isolation; clean environment; limits: {caps}"


def _rlimits(limits: Limits) -> list[tuple[int, tuple[int, int]]]:
    wanted = {
        resource.RLIMIT_CPU: (limits.cpu_s, limits.cpu_s + 1),  # SIGXCPU first, SIGKILL a second later
        resource.RLIMIT_AS: (limits.memory_mb << 20,) * 2,
        resource.RLIMIT_FSIZE: (limits.file_mb << 20,) * 2,
        resource.RLIMIT_CORE: (0, 0),
    }
    if os.geteuid() != 0 and _pids_parent() is None:
        wanted[resource.RLIMIT_NPROC] = (_tasks_of(os.getuid()) + limits.processes,) * 2
    hard = {res: resource.getrlimit(res)[1] for res in wanted}  # only root may raise a hard limit
    return [
        (res, (s, h) if hard[res] == resource.RLIM_INFINITY else (min(s, hard[res]), min(h, hard[res])))
        for res, (s, h) in wanted.items()
    ]


def _populate(scratch: Path, files: dict[str, str | bytes], copy: Sequence[Path]) -> None:
    for name, content in files.items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"files: {name!r} must be a relative path inside the scratch dir")
        (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
        (scratch / rel).write_bytes(content.encode() if isinstance(content, str) else content)
    for src in map(Path, copy):
        if src.is_dir():
            shutil.copytree(src, scratch / src.name, symlinks=True)
        else:
            shutil.copy2(src, scratch / src.name)


def _remove(scratch: str) -> None:
    def unlock(func: Callable[[str], object], path: str, _exc: object) -> None:
        # The program may have chmod-ed its own dirs: make them writable again, never through a link.
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
            func(path)

    shutil.rmtree(scratch, onerror=unlock)


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

    readable: more host paths it may read under bubblewrap (without it, it reads all the user can);
    cancel: set from another thread to kill the run at once (it then ends "killed").
    """
    if not argv:
        raise ValueError("run_isolated: empty command")
    mode, start, group = _mode(), time.monotonic(), None
    exe, problem = _bwrap() if mode == "bwrap" else ("", None)
    if problem or (cancel is not None and cancel.is_set()):
        why = f"TTC_SANDBOX=bwrap, but {problem}" if problem else "cancelled before it started"
        return Outcome("error" if problem else "killed", None, "", f"ttc: {why}\n", 0.0)

    def child_setup() -> None:  # between fork and exec: system calls only, nothing that takes a lock
        if group is not None:
            os.write(group.procs, b"0")
        for res, pair in rlimits:
            resource.setrlimit(res, pair)

    scratch = tempfile.mkdtemp(prefix="ttc-run-")
    try:
        _populate(Path(scratch), files or {}, copy)
        cmd = [*_bwrap_argv(exe, scratch, readable), *argv] if mode == "bwrap" else list(argv)
        rlimits = _rlimits(limits) if mode != "off" else []
        parent = _pids_parent() if mode != "off" else None
        group = _Cgroup(parent, limits.processes + _BWRAP_TASKS * (mode == "bwrap")) if parent else None
        try:
            with tempfile.TemporaryFile() as feed:  # a file, not a pipe: input of any size never blocks
                feed.write((stdin or "").encode())
                feed.seek(0)
                proc = Popen(
                    cmd,
                    stdin=feed if stdin is not None else DEVNULL,
                    stdout=PIPE,
                    stderr=PIPE,
                    cwd=scratch,
                    env=_environment(scratch, keep_env),
                    start_new_session=True,
                    preexec_fn=child_setup,
                )
        except (OSError, subprocess.SubprocessError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            return Outcome(
                "error", None, "", f"ttc: cannot run {argv[0]!r}: {why}\n", time.monotonic() - start
            )
        bufs = (bytearray(), bytearray())
        try:
            ending = _collect(proc, start + limits.wall_s, bufs, limits.output_bytes, cancel)
        finally:
            with contextlib.suppress(OSError):  # the leader is not reaped yet, so this pgid is still ours
                os.killpg(proc.pid, signal.SIGKILL)
            if group is not None:
                group.destroy()
            proc.wait()
            _collect(proc, time.monotonic() + _GRACE_S, bufs, limits.output_bytes, None)
            for pipe in filter(None, (proc.stdout, proc.stderr)):
                pipe.close()
    finally:
        if group is not None:
            group.destroy()
        _remove(scratch)
    rc, cap = proc.returncode, limits.output_bytes
    sig = -rc if rc < 0 else rc - 128 if mode == "bwrap" and 128 < rc < 160 else 0  # bwrap: 128 + signal
    status = (
        "timeout" if sig == signal.SIGXCPU else ending or ("ok" if rc == 0 else "killed" if sig else "error")
    )
    out, err = (bytes(b[:cap]).decode("utf-8", "replace") for b in bufs)
    return Outcome(status, rc, out, err, time.monotonic() - start, any(len(b) > cap for b in bufs))


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
