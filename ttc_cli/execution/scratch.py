"""Where contained runs work: one scratch dir per run, inside a directory only ttc's user owns, removed
afterwards whatever the program left in it; the dirs of runs whose ttc died go the next time ttc runs one.

The root is `$TMPDIR/ttc-UID`: 0700, or 0711 when ttc is root, so that nobody (whom model-written code
then runs as) can reach its own scratch dir by path but no one can list the others. A run's dir is
`run-PID-XXXXXXXX`, PID being ttc's: once that process is gone, the first run of a later ttc kills what
still works in the dir (a child the parent-death signal did not reach) and removes it.

Removal never follows a link, never changes anything above the scratch dir and never raises. It works on
directory descriptors and, as it empties a directory, moves that directory's subdirectories up to the
top, so a tree of any depth costs neither recursion nor open descriptors nor long paths; a directory the
program locked (`chmod 0`) is made openable again through its descriptor's parent, never through a link.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
import stat
import tempfile
import time
from pathlib import Path

REMOVE_S = 10.0  # one removal's bound: a program that left millions of files is finished by the next sweep
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_names = itertools.count()


def new() -> str:
    """A fresh scratch dir (0700) for one run of this process."""
    try:
        return tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=root())
    except FileNotFoundError:  # a tmp cleaner removed the root since: make it again
        _root_at.cache_clear()
        return tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=root())


def root() -> Path:
    """This user's scratch root, made (and swept of dead runs) on first use."""
    base = tempfile.gettempdir()
    if os.geteuid() == 0 and not open_to_others(base):
        base = "/tmp"  # nobody must reach its scratch dir by path: HOME and TMPDIR name it
    return _root_at(base, os.geteuid())


@functools.cache
def _root_at(base: str, uid: int) -> Path:
    path, mode = Path(base, f"ttc-{uid}"), 0o711 if uid == 0 else 0o700
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=mode)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid:  # another user's, or a link: never work in it
        path = Path(tempfile.mkdtemp(prefix=f"ttc-{uid}-", dir=base))
    os.chmod(path, mode)
    sweep(path)
    return path


def open_to_others(path: str) -> bool:
    """Whether a user with no tie to `path` (nobody) can reach it: it and every directory above it are
    searchable (a program: executable) by others, followed through its links too."""
    try:
        for p in {os.path.abspath(path), os.path.realpath(path)}:
            if not all(os.stat(q).st_mode & stat.S_IXOTH for q in (p, *map(str, Path(p).parents))):
                return False
    except OSError:
        return False
    return True


def give(path: str, uid: int, gid: int) -> None:
    """Hand a freshly populated scratch dir to the user the program runs as."""
    os.chown(path, uid, gid)
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(top, name), uid, gid, follow_symlinks=False)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True


def sweep(where: Path) -> None:
    """Remove the scratch dirs of runs whose ttc process is gone, killing what still works in them first."""
    with contextlib.suppress(OSError):
        for entry in list(os.scandir(where)):
            kind, pid, _ = (entry.name.split("-", 2) + ["", ""])[:3]
            if kind == "run" and pid.isdigit() and not alive(int(pid)):
                kill_inside(entry.path)
                remove(entry.path)


def kill_inside(path: str) -> None:
    """SIGKILL every process (this user may signal) whose working directory is in `path` (Linux: /proc)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            with contextlib.suppress(OSError, ValueError):
                cwd = os.readlink(os.path.join(entry.path, "cwd"))
                if cwd == path or cwd.startswith(path + "/"):
                    os.kill(int(entry.name), signal.SIGKILL)


def remove(path: str) -> None:
    """Delete the tree at `path`, whatever the program made of it (see the module docstring)."""
    with contextlib.suppress(OSError):
        if not os.path.islink(path):
            os.chmod(path, 0o700)  # its own chmod(".", 0); the parent is never touched
        top = os.open(path, _DIR_FLAGS)
        try:
            deadline = time.monotonic() + REMOVE_S
            while _flatten(top) and time.monotonic() < deadline:
                pass
        finally:
            os.close(top)
        os.rmdir(path)


def _flatten(top: int) -> bool:
    """One pass over the top directory: unlink its files; empty each subdirectory into it, then remove that
    subdirectory. True while there was anything left."""
    entries = list(os.scandir(top))
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                _empty_into(top, entry.name)
                os.rmdir(entry.name, dir_fd=top)
            else:
                os.unlink(entry.name, dir_fd=top)
    return bool(entries)


def _empty_into(top: int, name: str) -> None:
    """Unlink the files of `top`/`name` and move its subdirectories up into `top` under fresh names."""
    _unlock(name, top)
    fd = os.open(name, _DIR_FLAGS, dir_fd=top)
    try:
        for entry in list(os.scandir(fd)):
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    _unlock(entry.name, fd)  # moving a directory writes its "..": it must be writable
                    os.rename(entry.name, f".ttc-rm-{next(_names)}", src_dir_fd=fd, dst_dir_fd=top)
                else:
                    os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)


def _unlock(name: str, parent: int) -> None:
    # Never through a link: where libc cannot promise that (glibc < 2.32) Python raises instead, and a
    # locked directory of a non-root run stays for the next sweep (root is not locked out anyway).
    with contextlib.suppress(OSError, NotImplementedError, ValueError):
        os.chmod(name, 0o700, dir_fd=parent, follow_symlinks=False)
