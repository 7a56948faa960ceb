"""Hostile programs against ttc_cli.execution: each must be contained, reported with the right status, and
cost no more than its limit; the pool must overlap runs and cancel them without leaving a process behind.

Most tests run twice, under bubblewrap (skipped where it does not work) and with TTC_SANDBOX=rlimits. Without
bubblewrap the program runs as the user (as nobody when the tests run as root), so some containment cannot
exist and those checks skip, saying so: writing where its user may write, connecting to 127.0.0.1, and (as
the user) reading another process's environment through /proc. As root, a program without bubblewrap needs
a Python nobody can run: ttc's own if others may, else the system's (skipped where there is none). What only
a non-root ttc meets (a directory it cannot open, a program that can kill ttc) is run, when the tests are
root, in a forked child that became nobody. Processes left behind are found by a unique marker in their
command line, scanning /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ttc_cli.errors import UsageError
from ttc_cli.execution import (
    ExecutionPool,
    Limits,
    Outcome,
    cgroup,
    isolation,
    run_isolated,
    sandbox,
    scratch,
)
from ttc_cli.execution.check import Check

BWRAP_PROBLEM = sandbox._bwrap()[1]
NEEDS_BWRAP = pytest.mark.skipif(BWRAP_PROBLEM is not None, reason=f"bubblewrap unusable: {BWRAP_PROBLEM}")
ROOT = os.geteuid() == 0
PROCESS_LIMIT = cgroup.parent() is not None or os.path.isdir("/proc")  # a pids cgroup, else RLIMIT_NPROC
SLACK = 1.5  # seconds past a limit that starting and killing may take on a loaded 2-core machine


@pytest.fixture(params=["bwrap", "rlimits"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "bwrap" and BWRAP_PROBLEM is not None:
        pytest.skip(f"bubblewrap unusable here: {BWRAP_PROBLEM}")
    monkeypatch.setenv("TTC_SANDBOX", request.param)
    return request.param


def open_python() -> str | None:
    """A Python that nobody may run: ttc's own, else the system's."""
    for exe in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(exe) and scratch.open_to_others(exe):
            return exe
    return None


def python() -> str:
    """The Python programs run with in this mode: ttc's, unless nobody runs them without bubblewrap and
    cannot run ttc's (a Python under /root), as ttc then says; programs need no package of ttc's."""
    if not ROOT or sandbox._mode() != "rlimits" or scratch.open_to_others(sys.executable):
        return sys.executable
    exe = open_python()
    if exe is None:
        pytest.skip("as root without bubblewrap programs run as nobody, who can run no Python here")
    return exe


def py(code: str, *args: str) -> list[str]:
    return [python(), "-c", code, *args]


def marker() -> str:
    return f"ttc-test-{uuid.uuid4().hex}"


def processes_with(mark: str) -> list[int]:
    """Live processes (not this one) whose command line holds mark; zombies have an empty one."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if mark.encode() in Path(entry.path, "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def all_gone(mark: str, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while processes_with(mark):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_for(mark: str, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while not processes_with(mark):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def settle(uid: int, within: float = 5.0) -> None:
    """Wait until uid has no zombie left for init to reap."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(
        f"Uid:\t{uid}\t" in status and "State:\tZ" in status for status in _statuses()
    ):
        time.sleep(0.05)


def _statuses() -> Iterator[str]:
    for entry in os.scandir("/proc"):
        with contextlib.suppress(OSError):
            yield Path(entry.path, "status").read_text()


def timed(argv: list[str], **kwargs: object) -> tuple[Outcome, float]:
    start = time.monotonic()
    outcome = run_isolated(argv, **kwargs)  # type: ignore[arg-type]
    return outcome, time.monotonic() - start


def forget_host() -> None:
    """Drop what the sandbox probed about this host, as a new ttc process would not know it."""
    for probe in (sandbox._bwrap, cgroup.parent, scratch._root_at):
        probe.cache_clear()


def as_a_user(fn: Callable[[], object], within: float = 60.0) -> tuple[dict[str, object], int, int]:
    """fn() in a forked child that is not root (nobody, when the tests are root) and knows nothing of the
    host yet: its result ({"value": ...} or {"raised": ...}; {} if it died), its wait status and pid."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        result: dict[str, object]
        try:
            os.close(r)
            if ROOT:
                uid, gid = sandbox._nobody()
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            forget_host()
            result = {"value": fn()}
        except BaseException as e:  # noqa: B036 - reported to the parent, whatever it was
            result = {"raised": f"{type(e).__name__}: {e}"}
        os.write(w, json.dumps(result).encode())
        os._exit(0)
    os.close(w)
    data, deadline = b"", time.monotonic() + within
    with os.fdopen(r, "rb", buffering=0) as pipe:
        while (chunk := _read(pipe, deadline)) is not None:
            data += chunk
    if time.monotonic() > deadline:
        os.kill(pid, signal.SIGKILL)
    return (json.loads(data) if data else {}), os.waitpid(pid, 0)[1], pid


def _read(pipe: object, deadline: float) -> bytes | None:
    """The next chunk from the pipe; None at its end or at the deadline."""
    while time.monotonic() < deadline:
        if select.select([pipe], [], [], 0.1)[0]:
            return os.read(pipe.fileno(), 65536) or None  # type: ignore[attr-defined]
    return None


@contextlib.contextmanager
def open_dir() -> Iterator[Path]:
    """A directory under /tmp that nobody can reach (pytest's tmp_path is root's alone when root)."""
    path = Path(tempfile.mkdtemp(prefix="ttc-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        scratch.remove(str(path))


# --- hostile programs ---------------------------------------------------------------------------------


def test_endless_loop_times_out_at_the_wall_limit(mode: str) -> None:
    mark = marker()
    outcome, took = timed(py("while True: pass", mark), limits=Limits(wall_s=2))
    assert outcome.status == "timeout"
    assert 1.9 <= took < 2 + SLACK
    assert all_gone(mark)


def test_cpu_limit_ends_a_busy_loop_before_the_wall_limit(mode: str) -> None:
    outcome, took = timed(py("while True: pass"), limits=Limits(wall_s=20, cpu_s=1))
    assert outcome.status == "timeout"
    assert took < 1 + SLACK


@pytest.mark.parametrize(
    "program", ["bytearray(10**10)", "x = []\nwhile True: x.append(bytearray(10**8))"], ids=["one", "growing"]
)
def test_huge_allocation_fails_fast(mode: str, program: str) -> None:
    outcome, took = timed(py(program), limits=Limits(wall_s=10, memory_mb=512))
    assert outcome.status in ("error", "killed")
    assert "MemoryError" in outcome.stderr or outcome.status == "killed"
    assert took < 5


BOMBS = {
    # Sleeping a little after a refused fork keeps the two cores usable; the count is what is tested.
    "python": "import os, time\nwhile True:\n    try:\n        os.fork()\n"
    "    except OSError:\n        time.sleep(0.05)\n",
    "shell": "b() { b | b & }; b; wait",
}


@pytest.mark.skipif(not PROCESS_LIMIT, reason="no pids cgroup and no /proc to count tasks: nothing caps them")
@pytest.mark.parametrize("kind", BOMBS)
def test_fork_bomb_is_capped_and_leaves_nothing(mode: str, kind: str) -> None:
    mark, limit, peak = marker(), 24, [0]
    argv = py(BOMBS[kind], mark) if kind == "python" else ["sh", "-c", BOMBS[kind], mark]
    runner = sandbox._runner(mode)
    counted = sandbox._process_cap(mode, runner) == "RLIMIT_NPROC"
    if counted:  # the last bomb's processes are still being reaped: they would count against this one
        settle(runner[0] if runner else os.getuid())
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], len(processes_with(mark)))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        outcome, took = timed(argv, limits=Limits(wall_s=2, processes=limit))
    finally:
        stop.set()
        watcher.join()
    assert took < 2 + SLACK
    # bwrap's own processes carry the marker too (it is in their argv), and the scan is not atomic. A
    # per-user count (RLIMIT_NPROC) moves with the user's other tasks while the run goes on: a few more.
    assert peak[0] <= limit + sandbox._BWRAP_TASKS + 1 + 3 * counted
    if kind == "python":  # it retries refused forks, so only the timeout ends it
        assert outcome.status == "timeout" and peak[0] > limit // 2, outcome.stderr
    else:  # the classic shell bomb dies out once forks are refused: all that matters is that nothing stays
        assert outcome.status in ("ok", "error", "timeout")
    assert all_gone(mark)
    assert subprocess.run(["true"], timeout=5).returncode == 0  # this machine still starts processes


def test_writes_outside_the_scratch_dir_do_not_land(mode: str, tmp_path: Path) -> None:
    if mode != "bwrap" and not ROOT:
        pytest.skip("without bubblewrap the program runs as the user: it can write wherever the user can")
    name = f"ttc-escape-{uuid.uuid4().hex}"
    targets = [tmp_path / name, Path("/etc") / name, Path.home() / name, Path("/tmp") / name]
    program = (
        "import sys\nfor path in sys.argv[1:]:\n    try:\n        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n    except OSError as e:\n        print('blocked', path, e.errno)\n"
        "open('inside.txt', 'w').write('fine')\nprint('inside ok')\n"
    )
    try:
        outcome = run_isolated(py(program, *map(str, targets)))
        assert outcome.status == "ok", outcome.stderr
        assert "inside ok" in outcome.stdout
        # Under bubblewrap /tmp is the sandbox's own (writable as the user, not as nobody), then gone; as
        # nobody without it, /tmp is the host's and world-writable, as README says.
        landed = [t for t in targets if t.exists()]
        assert landed == ([] if mode == "bwrap" else [targets[3]])
        assert all(f"blocked {t}" in outcome.stdout for t in targets[:3])
    finally:
        for t in targets:
            t.unlink(missing_ok=True)


def test_secrets_in_the_environment_are_not_passed(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTC_FAKE_API_KEY", "sk-fake-123")
    monkeypatch.setenv("TTC_PASSED", "yes")
    program = "import os; print(sorted(os.environ)); print(os.environ.get('TTC_FAKE_API_KEY'))"
    outcome = run_isolated(py(program), keep_env=("TTC_PASSED",))
    assert outcome.status == "ok"
    assert "sk-fake-123" not in outcome.stdout and "TTC_FAKE_API_KEY" not in outcome.stdout
    names = set(eval(outcome.stdout.splitlines()[0])) - {"PWD"}  # bwrap sets PWD for its --chdir
    # keep_env passes a variable through, so the check above can fail
    assert names == {
        "HOME",
        "LANG",
        "LC_ALL",
        "PATH",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING",
        "TMPDIR",
        "TTC_PASSED",
    }


SNOOP = """
import os, sys
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        if sys.argv[1].encode() in open(f'/proc/{pid}/environ', 'rb').read():
            print('found in', pid)
    except OSError:
        pass
print('done')
"""
DRIVER = """
import json, sys
from ttc_cli.execution import run_isolated
print(json.dumps(run_isolated(sys.argv[1:]).to_json()))
"""


def test_secrets_of_other_processes_are_not_readable(mode: str) -> None:
    """ttc's own environment (with the user's API keys) must not be readable through /proc/PID/environ."""
    secret = f"sk-fake-{uuid.uuid4().hex}"
    env = {**os.environ, "TTC_FAKE_API_KEY": secret, "TTC_SANDBOX": mode}  # in ttc's initial environment
    done = subprocess.run(py(DRIVER, *py(SNOOP, secret)), env=env, capture_output=True, text=True, timeout=30)
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "ok" and "done" in outcome["stdout"], done.stderr
    if mode != "bwrap" and not ROOT:
        assert "found in" in outcome["stdout"]  # the leak this skip is about is real
        pytest.skip("without bubblewrap the program runs as the user and can read ttc's environment in /proc")
    assert "found in" not in outcome["stdout"]  # bubblewrap hides ttc; nobody may not read root's


def test_no_network_to_a_server_on_localhost(mode: str) -> None:
    if mode != "bwrap":
        pytest.skip("without bubblewrap the program shares the host's network")
    connections: list[object] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                connections.append(server.accept()[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    program = (
        "import socket, sys\ntry:\n    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=3)\n"
        "    print('connected')\nexcept OSError as e:\n    print('blocked', e)\n"
    )
    try:
        # Sanity: the server does accept, so a silent failure of the test itself cannot pass.
        socket.create_connection(server.getsockname(), timeout=3).close()
        time.sleep(0.2)
        assert len(connections) == 1
        outcome = run_isolated(py(program, str(server.getsockname()[1])))
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert outcome.status == "ok"
    assert "blocked" in outcome.stdout
    assert len(connections) == 1


def test_output_is_capped_and_the_pipe_drained(mode: str) -> None:
    program = "import sys\nsys.stdout.write('x' * 10**7)\nsys.stderr.write('y' * 10**7)\nprint('end')"
    outcome, took = timed(py(program), limits=Limits(output_bytes=1000))
    assert outcome.status == "ok"  # it was never blocked on a full pipe
    assert outcome.truncated
    assert len(outcome.stdout) == 1000 and len(outcome.stderr) == 1000
    assert took < 5
    assert len(json.dumps(outcome.to_json())) < 5000


def test_background_and_setsid_children_are_killed(mode: str) -> None:
    if mode != "bwrap" and cgroup.parent() is None:
        pytest.skip(
            "without bubblewrap or a pids cgroup, a process that calls setsid() leaves the group kill"
        )
    mark = marker()
    program = (
        "import os, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', sys.argv[1]])\n"
        "code = 'import os, time; os.setsid(); time.sleep(60)'\n"
        "subprocess.Popen([sys.executable, '-c', code, sys.argv[1]], stdout=subprocess.DEVNULL)\n"
        "time.sleep(0.5)\nprint('parent done')\n"
    )
    outcome, took = timed(py(program, mark))
    assert outcome.status == "ok" and "parent done" in outcome.stdout
    assert took < 0.5 + SLACK  # the first child held stdout open; the run did not wait for it
    assert all_gone(mark)


def test_ctrl_c_kills_the_program_and_removes_the_scratch_dir(mode: str) -> None:
    mark, mine = marker(), f"run-{os.getpid()}-"
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_isolated(py("while True: pass", mark), files={"f.txt": "x"}, limits=Limits(wall_s=30))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - start < 0.5 + SLACK
    assert all_gone(mark, within=0.5)
    assert [p for p in scratch.root().iterdir() if p.name.startswith(mine)] == []


def test_missing_executable_is_an_error_not_an_exception(mode: str) -> None:
    outcome = run_isolated(["ttc-no-such-program-x"])
    assert outcome.status == "error"
    assert "No such file" in outcome.stderr


def test_large_stdin_does_not_block(mode: str) -> None:
    outcome = run_isolated(py("import sys; print(len(sys.stdin.read()))"), stdin="z" * 3_000_000)
    assert outcome.status == "ok" and outcome.stdout.strip() == "3000000"


def test_exit_status_and_signals(mode: str) -> None:
    assert run_isolated(py("import sys; sys.exit(3)")).status == "error"
    killed = run_isolated(py("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"))
    assert killed.status == "killed"


# --- scratch dir, files, copy --------------------------------------------------------------------------


def test_files_and_copies_land_in_the_scratch_dir_which_is_removed(mode: str, tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test(): pass\n")
    (tmp_path / "data.txt").write_text("copied\n")
    program = (
        "import os\nprint(os.getcwd())\nprint(os.environ['HOME'] == os.getcwd() == os.environ['TMPDIR'])\n"
        "print(open('pkg/a.txt').read(), open('blob', 'rb').read(), open('data.txt').read().strip(),"
        " open('tests/test_x.py').read().strip())\n"
        "os.makedirs('locked/in'); os.chmod('locked', 0)\n"  # removal must cope with this
    )
    outcome = run_isolated(
        py(program),
        files={"pkg/a.txt": "text", "blob": b"\x00\x01"},
        copy=[tmp_path / "data.txt", tmp_path / "tests"],
    )
    assert outcome.status == "ok", outcome.stderr
    cwd, same, contents = outcome.stdout.splitlines()
    assert same == "True"
    assert contents == "text b'\\x00\\x01' copied def test(): pass"
    assert not Path(cwd).exists()


@pytest.mark.parametrize("name", ["../escape.txt", "/tmp/abs.txt", "a/../../b"])
def test_file_names_must_stay_inside(name: str) -> None:
    with pytest.raises(ValueError, match="relative"):
        run_isolated(["true"], files={name: "x"})


def test_isolation_describes_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTC_SANDBOX", "rlimits")
    line = isolation(Limits(processes=16))
    assert line.startswith("limited: no bubblewrap (TTC_SANDBOX=rlimits)")
    assert ("runs as nobody, not root" if ROOT else "runs as you") in line and "16 processes (" in line
    monkeypatch.setenv("TTC_SANDBOX", "off")
    assert isolation().startswith("off")
    assert run_isolated(py("print('plain')")).stdout == "plain\n"
    monkeypatch.setenv("TTC_SANDBOX", "bogus")
    with pytest.raises(UsageError):
        isolation()
    if BWRAP_PROBLEM is None:
        monkeypatch.setenv("TTC_SANDBOX", "bwrap")
        line = isolation()
        assert line.startswith("bubblewrap as nobody (ttc is root): no network" if ROOT else "bubblewrap: no")
        monkeypatch.delenv("TTC_SANDBOX")
        assert isolation() == line


def test_to_json_clips_long_output() -> None:
    data = Outcome("ok", 0, "a" * 10_000, "b" * 10, 1.23456, True).to_json()
    assert set(data) == {"status", "returncode", "stdout", "stderr", "seconds"}
    assert len(str(data["stdout"])) < 2100 and data["stderr"] == "b" * 10 and data["seconds"] == 1.235


# --- issue 30: what a hostile program did before, each run for real -----------------------------------

PROBE_SOCKET = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    print("connected")
except OSError as e:
    print("no socket", e.errno)
"""


@pytest.mark.parametrize("cwd", ["home", "/"])
def test_a_check_binds_nothing_of_the_current_directory(
    mode: str, cwd: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check run from a home directory read ~/.ssh and reached a socket there; run from / it saw the
    whole host (it was given the current directory to read)."""
    if mode != "bwrap" and not ROOT:
        pytest.skip("without bubblewrap a check runs as the user and reads what the user can")
    home = tmp_path / "h"
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh" / "id_ed25519"
    key.write_text("PRIVATE-KEY-" + uuid.uuid4().hex)
    key.chmod(0o600)
    agent = socket.socket(socket.AF_UNIX)
    agent.bind(str(home / "agent.sock"))
    agent.listen()
    agent.settimeout(0.1)
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE_SOCKET)
    monkeypatch.chdir(home if cwd == "home" else "/")
    check = Check(f"cat {key}; {python()} probe.py {home / 'agent.sock'}", copy=(probe,))
    argv, kwargs = check.job("```python\nprint(1)\n```")
    try:
        outcome = run_isolated(argv, **kwargs)
        with pytest.raises(TimeoutError):
            agent.accept()
    finally:
        agent.close()
    assert "PRIVATE-KEY" not in outcome.stdout
    assert "no socket" in outcome.stdout and "connected" not in outcome.stdout, outcome.stderr
    assert "readable" not in kwargs


def test_a_readable_never_names_the_root_or_a_home(tmp_path: Path) -> None:
    for path in ("/", str(Path.home()), "/home", "/root", "/home/someone"):
        with pytest.raises(ValueError, match="home directory"):
            run_isolated(["true"], readable=[path])
    assert run_isolated(["true"], readable=[tmp_path]).status == "ok"


WHO = """
import os, sys
print("uid", os.getuid(), os.geteuid())
try:
    open("/etc/shadow").read()
    print("read shadow")
except OSError:
    print("no shadow")
try:
    os.kill(int(sys.argv[1]), 0)
    print("may signal ttc")
except OSError:
    print("may not signal ttc")
"""


def test_b_never_runs_as_root(mode: str) -> None:
    """As root, a program ran as root, under bubblewrap too (uid 0 without capabilities still owns root's
    files): it read /etc/shadow, and without bubblewrap it could signal ttc."""
    outcome = run_isolated(py(WHO, str(os.getpid())))
    assert outcome.status == "ok", outcome.stderr
    uid = sandbox._nobody()[0] if ROOT else os.getuid()
    assert f"uid {uid} {uid}" in outcome.stdout
    if ROOT:
        assert "read shadow" not in outcome.stdout and "may not signal ttc" in outcome.stdout


ESCAPE = """
import glob, os, sys, time
where, mark = sys.argv[1], sys.argv[2]
me = str(os.getpid())
try:
    mine = [d for d in glob.glob(where + "/ttc-*") if me in open(d + "/cgroup.procs").read().split()][0]
    open(mine + "/pids.max", "w").write("max")
    print("lifted pids.max", flush=True)
except (OSError, IndexError) as e:
    print("pids.max held", e, flush=True)
if os.fork() == 0:
    try:
        open(where + "/cgroup.procs", "w").write(str(os.getpid()))
        print("left the cgroup", flush=True)
    except OSError:
        print("stayed", flush=True)
    os.setsid()
    time.sleep(60)
    os._exit(0)
forks = 0
for _ in range(200):
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        forks += 1
    except OSError:
        break
print("forks", forks, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not ROOT, reason="as a user the cgroup is the user's: RLIMIT_NPROC caps a program then")
@pytest.mark.skipif(cgroup.parent() is None, reason="no pids cgroup can be made here")
def test_b_cannot_lift_its_process_cap_or_leave_its_cgroup(mode: str) -> None:
    """As root without bubblewrap, a program wrote max into its own pids.max and forked 200 times, and a
    child that moved itself to the parent cgroup and called setsid() outlived the run."""
    mark, limit = marker(), 16
    where = cgroup.parent()
    outcome = run_isolated(py(ESCAPE, str(where), mark), limits=Limits(wall_s=3, processes=limit))
    assert outcome.status == "timeout"
    assert "pids.max held" in outcome.stdout and "stayed" in outcome.stdout, outcome.stdout
    forks = int(outcome.stdout.split("forks ")[1].split()[0])
    assert forks < limit
    assert all_gone(mark)


DEEP = """
import os
top = os.getcwd()
for i in range(1500):
    os.mkdir("d")
    os.chdir("d")
    if i % 100 == 0:
        open("f", "w").write("x")
os.chdir(top)
os.makedirs("locked/in")
os.chmod("locked", 0)
os.symlink(os.environ["OUTSIDE"], "link")
os.chmod(".", 0)
print(top)
"""


def test_c_any_tree_the_program_leaves_is_removed_and_nothing_else(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,500 nested directories made cleanup raise RecursionError; a scratch dir the program locked
    (chmod 0) made it chmod the scratch dir's parent. A link to outside is removed, never followed."""
    with open_dir() as outside:
        (outside / "keep.txt").write_text("mine")
        before = {p: stat.S_IMODE(p.stat().st_mode) for p in (scratch.root(), scratch.root().parent)}
        monkeypatch.setenv("OUTSIDE", str(outside))
        outcome = run_isolated(py(DEEP), keep_env=("OUTSIDE",))
        assert outcome.status == "ok", outcome.stderr
        assert not Path(outcome.stdout.strip()).exists()
        assert (outside / "keep.txt").read_text() == "mine"
        assert {p: stat.S_IMODE(p.stat().st_mode) for p in before} == before


LOCKS = """
import os
os.makedirs("locked/in/deeper")
open("locked/in/f", "w").write("x")
os.chmod("locked/in", 0)
os.chmod("locked", 0)
os.chmod(".", 0)
print("locked")
"""


def test_c_cleanup_as_a_user_copes_with_directories_it_cannot_open() -> None:
    """As a user (not root, who reads through a chmod 0), a locked subdirectory made cleanup call
    os.open(path) without flags (TypeError), and a locked scratch dir made it chmod the parent to 700."""
    exe = open_python()
    if exe is None:
        pytest.skip("no Python a non-root user can run")
    with open_dir() as base:
        if ROOT:
            os.chown(base, *sandbox._nobody())

        def run() -> object:
            os.environ["TTC_SANDBOX"] = "rlimits"
            tempfile.tempdir = str(base)  # the tests' own scratch root, to see its parent's mode
            outcome = run_isolated([exe, "-c", LOCKS])
            return [outcome.status, outcome.stdout, sorted(os.listdir(scratch.root()))]

        result, status, _ = as_a_user(run)
        assert status == 0 and result == {"value": ["ok", "locked\n", []]}, result
        assert stat.S_IMODE(base.stat().st_mode) == 0o755


def test_c_scratch_dirs_live_in_a_root_only_ttc_owns(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scratch dirs were made straight in TMPDIR; a link planted where ttc's own root goes is not used."""
    with open_dir() as base:
        elsewhere = base / "elsewhere"
        elsewhere.mkdir()
        elsewhere.chmod(0o777)
        (base / f"ttc-{os.geteuid()}").symlink_to(elsewhere)
        monkeypatch.setattr(tempfile, "tempdir", str(base))
        outcome = run_isolated(py("import os; print(os.getcwd())"))
        assert outcome.status == "ok", outcome.stderr
        where = Path(outcome.stdout.strip()).parent
        assert where.parent == base and not where.is_symlink() and where.stat().st_uid == os.geteuid()
        assert stat.S_IMODE(where.stat().st_mode) == (0o711 if ROOT else 0o700)
        assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o777 and not any(elsewhere.iterdir())


LINGER = """
import os, subprocess, sys, time
grandchild = "import os, time; os.setsid(); time.sleep(60)"
subprocess.Popen([sys.executable, "-c", grandchild, sys.argv[1] + "-grandchild"])
time.sleep(60)
"""
DRIVE = """
import sys
from ttc_cli.execution import Limits, run_isolated
run_isolated(sys.argv[1:], limits=Limits(wall_s=60, cpu_s=60))
"""
SWEEP = """
from ttc_cli.execution import isolation, run_isolated
isolation()
run_isolated(["true"])
"""


def test_d_a_killed_ttc_takes_the_program_with_it_and_the_next_one_sweeps(mode: str) -> None:
    """SIGKILL of ttc left the program running past its limit, with its scratch dir and cgroup behind."""
    mark = marker()
    env = {**os.environ, "TTC_SANDBOX": mode}
    ttc = subprocess.Popen([sys.executable, "-c", DRIVE, *py(LINGER, mark)], env=env)
    try:
        assert wait_for(f"{mark}-grandchild"), "the program never started"
    finally:
        ttc.kill()
        ttc.wait()
    assert all_gone(f"{mark}\0", within=3)  # the program itself (and bwrap): the parent-death signal
    subprocess.run([sys.executable, "-c", SWEEP], env=env, timeout=60, check=True)
    assert all_gone(mark, within=3)  # its own child too, killed by the next ttc's sweep
    assert list(scratch.root().glob(f"run-{ttc.pid}-*")) == []
    where = cgroup.parent()
    assert where is None or list(where.glob(f"ttc-{ttc.pid}-*")) == []


KILL_TTC = """
import os, signal, sys, time
os.kill(os.getppid(), signal.SIGKILL)
time.sleep(60)
"""


def test_d_a_program_that_kills_ttc_dies_with_it() -> None:
    """A program that runs as ttc's user (not root) can kill ttc: it then outlived it."""
    exe, mark = open_python(), marker()
    if exe is None:
        pytest.skip("no Python a non-root user can run")

    def run() -> object:
        os.environ["TTC_SANDBOX"] = "rlimits"
        return run_isolated([exe, "-c", KILL_TTC, mark], limits=Limits(wall_s=30, cpu_s=30)).to_json()

    result, status, ttc = as_a_user(run)
    assert result == {} and os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, result
    assert all_gone(mark, within=3)
    left, _, _ = as_a_user(lambda: [p.name for p in scratch.root().glob(f"run-{ttc}-*")])  # the next ttc
    assert left == {"value": []}


# --- where users are ------------------------------------------------------------------------------------

NO_POSIX = """
import sys
for name in ("resource", "fcntl", "termios", "pwd", "grp", "pty", "tty"):
    sys.modules[name] = None  # as on Windows: importing any of them fails
import ttc_cli.cli, ttc_cli.runner, ttc_cli.doctor, ttc_cli.bench.run
import ttc_cli.execution.check, ttc_cli.strategies.programs, ttc_cli.verifiers.command
print("imported")
"""


def test_ttc_imports_where_posix_only_modules_are_missing() -> None:
    """runner imported the sandbox, which imported `resource` at its top: every `ttc ask` on Windows."""
    done = subprocess.run([sys.executable, "-c", NO_POSIX], capture_output=True, text=True, timeout=60)
    assert done.stdout == "imported\n", done.stderr


def test_on_windows_running_code_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    for call in (isolation, lambda: run_isolated(["python", "main.py"])):
        with pytest.raises(UsageError) as refused:
            call()
        assert "Windows" in str(refused.value) and "\n" not in str(refused.value)


def test_doctor_says_which_sandbox_mode_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from ttc_cli.doctor import _sandbox

    monkeypatch.setenv("TTC_SANDBOX", "rlimits")
    assert _sandbox() == isolation() and "TTC_SANDBOX=rlimits" in _sandbox()
    monkeypatch.setenv("TTC_SANDBOX", "bogus")
    assert _sandbox().startswith("unavailable: TTC_SANDBOX='bogus'")


# --- pool ----------------------------------------------------------------------------------------------


def test_pool_runs_two_at_a_time() -> None:
    start = time.monotonic()
    results: list[tuple[int, Outcome]] = []
    with ExecutionPool[int](workers=2) as pool:
        for i in range(4):
            pool.submit(i, py(f"import time; time.sleep(1); print({i})"))
        assert pool.pending == 4
        assert pool.done() == []  # nothing has finished yet, and done() does not wait
        while pool.pending:
            results += pool.wait(timeout=10)
    took = time.monotonic() - start
    assert sorted(k for k, _ in results) == [0, 1, 2, 3]
    assert all(o.status == "ok" and o.stdout == f"{k}\n" for k, o in results)
    assert 2.0 <= took < 2.0 + 2 * SLACK  # two rounds of one second, not four, not one


def test_pool_close_cancel_kills_at_once(mode: str) -> None:
    mark = marker()
    pool = ExecutionPool[str](workers=2)
    pool.submit("loop", py("while True: pass", mark), limits=Limits(wall_s=60, cpu_s=60))
    pool.submit("sleep", py("import time; time.sleep(60)", mark), limits=Limits(wall_s=60))
    pool.submit("queued", py("print('never')", mark))
    deadline = time.monotonic() + 10
    while len(processes_with(mark)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert processes_with(mark)
    start = time.monotonic()
    pool.close(cancel=True)
    assert time.monotonic() - start < 1.0
    assert all_gone(mark, within=0.5)
    assert pool.done() == [] and pool.pending == 0
    assert not any(t.is_alive() for t in pool._threads)
    with pytest.raises(RuntimeError):
        pool.submit("late", ["true"])


def test_pool_wait_returns_when_nothing_is_pending() -> None:
    with ExecutionPool[int](workers=1) as pool:
        start = time.monotonic()
        assert pool.wait(timeout=5) == []
        assert time.monotonic() - start < 0.5
        pool.submit(1, ["ttc-no-such-program-x"])
        pool.submit(2, ["true"], files={"../bad": "x"})  # run_isolated raises: the worker survives it
        got = dict(pool.wait(timeout=10) + pool.wait(timeout=10))
    assert got[1].status == "error" and got[2].status == "error" and "ValueError" in got[2].stderr


def test_programs_run_at_the_lowest_priority(mode):
    """Beside llama.cpp's threads a busy program would slow every decoding step; at nice 19 it takes what
    decoding leaves, and its limits are CPU seconds, which waiting does not spend."""
    outcome = run_isolated(py("import os; print(os.nice(0))"))
    assert outcome.status == "ok", outcome.stderr
    assert outcome.stdout.strip() == str(sandbox.NICE) == "19"
