"""The child's side of process hygiene: a child process never outlives the process that started it.

`spawn_child` starts every child as
`python -m nnr_profile.profiler.runner.lifeline SPEC RESULT`
in a session of its own, with a *lifeline*: the read end of a pipe whose write end only the
parent holds. Before it imports anything heavy, the child

- asks the kernel for SIGTERM when its parent dies (Linux `prctl(PR_SET_PDEATHSIG)`);
- watches the lifeline in a thread: end of file means the parent is gone, whatever killed it
  (even `kill -9`);
- arms `alarm(timeout + grace)`, whose default action ends the process in the kernel, so a
  hanging child never lives far past its timeout even when nobody is left to kill it.

It also makes itself a *child subreaper* (Linux `prctl(PR_SET_CHILD_SUBREAPER)`; a no-op
elsewhere): a descendant whose parent ends (a daemon that double-forks, a `setsid` grandchild)
becomes its child instead of init's, so `kill_descendants` still finds it, even outside its
process group. On SIGTERM or a cut lifeline the child removes its temporary folder, kills every
descendant and then its own process group (itself, a wrapping profiler, any worker processes);
when the task ends it kills every descendant it left running. It also enables `faulthandler`, so
a crash leaves 'Fatal Python error: ...' and the stack in its stderr for the parent's message.
Then it runs the task SPEC names (`child.run_task`). Without the lifeline environment (a child
started by hand) nothing is armed.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import math
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

LIFELINE_ENV = "NNR_LIFELINE"
"""`FD:INODE` of the lifeline's read end in the child (the inode guards against a reused fd)."""
FOLDER_ENV = "NNR_CHILD_DIR"
"""The child's temporary folder, removed when the child dies with its parent."""
TIMEOUT_ENV = "NNR_CHILD_TIMEOUT_S"
"""The parent's timeout for this child, in seconds (absent: none)."""
FOLDER_PREFIX = "nnr-child-"
"""Temporary folders are named `nnr-child-<owner pid>-<random>`."""
ALARM_GRACE_S = 30
"""Seconds past the timeout after which the child's own alarm ends it (the parent kills first)."""
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
KILL_ROUNDS = 50
"""Most scans `kill_descendants` makes for processes forked while it stops the others."""
_OWNED = re.compile(rf"^{FOLDER_PREFIX}(\d+)-")
_dying = threading.RLock()
_guarded = [0]
"""The process id that armed the guard."""


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send `signum` to this process when its parent dies (Linux only).

    The kernel sends it when the parent *thread* that forked this process ends, so parents must
    fork from a thread that waits for the child (the runner's workers do).
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0


def become_subreaper() -> bool:
    """Make orphaned descendants of this process its children, not init's (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def stat_fields(pid: int | str = "self") -> list[bytes]:
    """The fields of /proc/PID/stat after the command name (index 0 is field 3, the state);
    empty when the process or /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return []


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited but not yet reaped, does not)."""
    fields = stat_fields(pid)
    return bool(fields) and fields[0] not in (b"Z", b"X")


def live_processes() -> dict[int, int]:
    """Running processes, pid -> parent pid, from /proc (empty without one); zombies left out."""
    parents = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = stat_fields(entry)
        if len(fields) > 1 and fields[0] not in (b"Z", b"X"):
            parents[int(entry)] = int(fields[1])
    return parents


def _marked(pid: int, entry: bytes) -> bool:
    """Whether `pid`'s environment holds `entry` (K=V), or its command line names V (a process
    forked by a warm child keeps the server's environment but the child's command line)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            if entry in handle.read().split(b"\0"):
                return True
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return entry.partition(b"=")[2] in handle.read()
    except OSError:
        return False


def descendants(root: int, marker: str | None = None) -> set[int]:
    """Running descendants of `root`, and processes whose environment holds `marker` (K=V) or
    whose command line names its value."""
    parents = live_processes()
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    if marker:
        entry = marker.encode()
        found |= {pid for pid in parents if pid not in found and _marked(pid, entry)}
    found.discard(os.getpid())
    found.discard(root)
    return found


def kill_descendants(root: int | None = None, marker: str | None = None) -> set[int]:
    """SIGKILL every descendant of `root` (default: this process); returns their pids."""
    # Each is stopped first and the scan repeated until it finds none new, so none forks a
    # process that escapes between scan and kill. Without /proc (not Linux) it finds nothing.
    root = os.getpid() if root is None else root
    stopped: set[int] = set()
    for _ in range(KILL_ROUNDS):
        found = descendants(root, marker) - stopped
        if not found:
            break
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= found
    for pid in stopped:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return stopped


def child_folder() -> Path | None:
    """This child's temporary folder from the environment; None unless it is an nnr-child one."""
    text = os.environ.get(FOLDER_ENV)
    if not text or not Path(text).name.startswith(FOLDER_PREFIX):
        return None
    return Path(text)


def die_with_parent(signum: int | None = None, _frame: object = None) -> None:
    """Remove this child's folder, then SIGKILL its descendants and its group (or itself).

    A process forked from the child (a data-loader worker) inherits the signal handler but is
    not the child: a signal to it keeps its default action.
    """
    if signum is not None and os.getpid() != _guarded[0]:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    with _dying:
        folder = child_folder()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        kill_descendants()
        if os.getpgrp() == os.getsid(0):  # leader group of a session of our own: ours to end
            with contextlib.suppress(OSError):
                os.killpg(os.getpgrp(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


def _lifeline_fd() -> int | None:
    """The lifeline's fd when it is open here and is the pipe the parent made, else None."""
    text = os.environ.get(LIFELINE_ENV, "")
    fd_text, _, inode_text = text.partition(":")
    if not (fd_text.isdigit() and inode_text.isdigit()):
        return None
    try:
        if os.fstat(int(fd_text)).st_ino != int(inode_text):
            return None
    except OSError:
        return None  # a wrapper (e.g. a profiler) closed it; the parent-death signal remains
    return int(fd_text)


def _watch(fd: int) -> None:
    """Block until the parent's end of the lifeline closes, then die with the parent."""
    while True:
        try:
            if not os.read(fd, 64):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    die_with_parent()


def guard() -> None:
    """Arm parent-death handling and the timeout alarm in this child (see the module doc)."""
    fd = _lifeline_fd()
    if fd is None and child_folder() is None:
        return
    _guarded[0] = os.getpid()
    faulthandler.enable()  # a crash leaves 'Fatal Python error: ...' and the stack in stderr
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, die_with_parent)
    set_parent_death_signal(signal.SIGTERM)
    become_subreaper()
    if fd is not None:
        readable, _, _ = select.select([fd], [], [], 0)
        if readable and not os.read(fd, 64):
            die_with_parent()  # the parent died before the death signal was armed
        threading.Thread(target=_watch, args=(fd,), name="nnr-lifeline", daemon=True).start()
    timeout = os.environ.get(TIMEOUT_ENV)
    if timeout:
        signal.alarm(math.ceil(float(timeout)) + ALARM_GRACE_S)


def remove_stale_folders(root: str | Path | None = None) -> list[Path]:
    """Remove `nnr-child-<pid>-*` folders whose owner process is gone; returns those removed."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        match = _OWNED.match(path.name)
        if not match or not path.is_dir() or _alive(int(match.group(1))):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str]) -> int:
    """The child entry point `SPEC RESULT`: arm the guard, run the task, kill what it left."""
    spec_path, result_path = argv
    guard()
    from nnr_profile.profiler.runner.child import run_task

    try:
        return run_task(spec_path, result_path)
    finally:
        if _guarded[0] == os.getpid():
            with _dying:
                kill_descendants()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
