"""A run's pids cgroup: it caps the run's task count and lists every process of the run to kill, whether
or not it left the process group with setsid().

Made where ttc may create a child cgroup with a pids.max in its own (root on a cgroup v1 `pids` hierarchy
or on v2, or a user with a delegated v2 subtree), named `ttc-PID-N` after ttc's process; the cgroups of
runs whose ttc died are emptied (their processes killed) and removed the first time a later ttc looks.
Its files belong to ttc's user: a program that runs as that user (without bubblewrap, which hides
/sys) could lift the cap or move itself out, so the sandbox relies on it only when the program runs as
someone else (nobody, when ttc is root) or under bubblewrap.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
import time
from pathlib import Path

from ttc_cli.execution.scratch import alive


@functools.cache
def parent() -> Path | None:
    """This process's pids cgroup, if a child cgroup with a pids.max can be made in it (swept once)."""
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
                where = Path(m[1] + rel.rstrip("/"))
                if _can_make(where):
                    _sweep(where)
                    return where
    return None


def _can_make(where: Path) -> bool:
    probe = where / f"ttc-probe-{os.getpid()}"
    with contextlib.suppress(OSError):
        probe.mkdir()
        try:
            (probe / "pids.max").write_text("1")
            return True
        finally:
            probe.rmdir()
    return False


def _sweep(where: Path) -> None:
    """Empty and remove the cgroups of runs (and probes) whose ttc process is gone."""
    with contextlib.suppress(OSError):
        for path in where.glob("ttc-*"):
            pid = path.name.split("-")[2 if path.name.startswith("ttc-probe-") else 1]
            if pid.isdigit() and not alive(int(pid)):
                empty(path)


def empty(path: Path) -> bool:
    """Kill every process in the cgroup at `path` and remove it; False if it would not go."""
    for _ in range(200):  # a fork racing the read is caught next round; pids.max bounds the rounds
        with contextlib.suppress(OSError):
            for pid in (path / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)
            path.rmdir()  # EBUSY until the killed tasks have exited
            return True
        if not path.exists():
            return True
        time.sleep(0.01)
    return False


class Cgroup:
    """One run's cgroup; a child joins it by writing "0" to `procs` between fork and exec."""

    _ids = itertools.count()

    def __init__(self, where: Path, tasks: int) -> None:
        self.path = where / f"ttc-{os.getpid()}-{next(self._ids)}"
        self.path.mkdir()
        (self.path / "pids.max").write_text(str(tasks))
        self.procs = os.open(self.path / "cgroup.procs", os.O_WRONLY)

    def destroy(self) -> None:  # idempotent: a run also calls it on its way out of an exception
        if self.procs < 0:
            return
        os.close(self.procs)
        self.procs = -1
        empty(self.path)
