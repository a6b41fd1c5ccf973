"""Warm trial starts: a fork server that has imported a framework forks one fresh process per child.

A cold start is a fresh interpreter that imports the framework (`import torch` alone is 2-3 s on
a small machine). A *warm* start forks a process from a server that imported the framework and
this package's trial modules once, but never touched a device, set a knob, seeded anything or
ran framework code. The forked child then becomes what a cold child is: a session of its own,
its stderr file, its lifeline (the parent's pipe, passed over the server's socket), its own
environment (the mode's variables, GPU pinning: `os.environ` is replaced before any of them is
read, as CUDA and cuBLAS read theirs when they start, not at import), fresh OS entropy in
Python's and NumPy's global generators, and then the same `lifeline.main` as a cold child:
guard, task, result. The parent waits for it, times it out and
kills it exactly as a cold child, by pid and process group; only reaping goes through the
server, whose child it is.

Variables read when the interpreter or the framework's libraries load (PYTHONHASHSEED,
PYTHONPATH and the other PYTHON* ones, the thread counts of OpenMP, MKL and OpenBLAS, the
loader's) key the server instead: one server per framework and values of those.
Which frameworks may start warm is each framework's fact (`WARM_START_PRELOAD` and
`COLD_START_REASON` in its knob module); the server also checks that importing them started no
thread beyond NumPy's BLAS pool (fork-safe through its at-fork handler) and refuses otherwise.
A refused or failed server means cold starts for that framework, with the reason.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from nnr_profile.profiler.runner.lifeline import (
    FOLDER_ENV,
    LIFELINE_ENV,
    TIMEOUT_ENV,
    running,
    stat_fields,
)

TRIAL_STARTS = ("warm", "cold")
"""How a child process starts: forked from a warm server, or a fresh interpreter."""
TRIAL_START_ENV = "NNR_TRIAL_START"
"""Set to `warm` in a warm child (a cold child has none); trials record it."""
SOCKET_ENV = "NNR_WARM_SOCKET"
"""The server's end of its control socket (an fd number)."""
START_UP_PREFIXES = ("PYTHON", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "GOMP_", "LD_")
"""Variables read when the interpreter or its libraries load: their values key the server."""
READY_TIMEOUT_S = 300.0
"""Longest a server may take to import its framework."""
MESSAGE_BYTES = 1 << 20
PER_CHILD = (LIFELINE_ENV, FOLDER_ENV, TIMEOUT_ENV)


class WarmStartUnavailable(Exception):
    """A framework cannot start warm here (the message says why); start cold instead."""


class NotForkSafe(WarmStartUnavailable):
    """The framework is not shown safe to fork (its knob module's `COLD_START_REASON`)."""


def warm_preload(framework: str) -> tuple[str, ...]:
    """Modules a warm server for `framework` imports; a WarmStartUnavailable when it has none."""
    from nnr_profile.workloads.knobs import knob_module

    module = knob_module(framework)
    preload = tuple(getattr(module, "WARM_START_PRELOAD", ()))
    if not preload:
        reason = getattr(module, "COLD_START_REASON", "not shown safe to fork")
        raise NotForkSafe(f"{framework}: {reason}")
    return preload


def warm_start_notes(frameworks: Sequence[str], start: str) -> list[str]:
    """How children of `frameworks` start with `--trial-start start`: one line per framework."""
    if start == "cold":
        return [f"trial starts: cold (a fresh interpreter per trial) for {', '.join(frameworks)}"]
    notes = []
    for framework in frameworks:
        try:
            warm_preload(framework)
            notes.append(
                f"trial starts: warm for {framework} (each trial forked from a server that "
                "imported it once; --trial-start cold for fresh interpreters)"
            )
        except WarmStartUnavailable as exc:
            notes.append(f"trial starts: cold for {exc}")
    return notes


def check_trial_start(start: str) -> None:
    """A ParameterError unless `start` is one of TRIAL_STARTS."""
    from nnr_profile.core.errors import ParameterError

    if start not in TRIAL_STARTS:
        raise ParameterError("trial_start", "must be warm or cold, not {value!r}", value=start)


class WarmChild:
    """A child forked by a warm server: what `spawn_child` needs of a `subprocess.Popen`."""

    def __init__(self, server: WarmServer, pid: int) -> None:
        self.server, self.pid = server, pid
        self.returncode: int | None = None
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # Linux >= 5.3; else /proc polling
            self._pidfd = os.pidfd_open(pid)

    def exited(self, timeout_s: float | None) -> bool:
        """Whether it exited within `timeout_s` (left unreaped: its group stays valid)."""
        if self._pidfd is not None:
            readable, _, _ = select.select([self._pidfd], [], [], timeout_s)
            return bool(readable)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while running(self.pid):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def wait(self) -> int:
        """Reap it through its server; its exit status as Popen gives it (-N: signal N)."""
        if self.returncode is None:
            self.returncode = self.server.reap(self.pid)
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        return self.returncode


class WarmServer:
    """The parent's handle on one fork server (`python -m nnr_profile.profiler.runner.warm`)
    that imports `preload` (default: the framework's `warm_preload`)."""

    def __init__(
        self, framework: str, env: Mapping[str, str], preload: Sequence[str] | None = None
    ) -> None:
        preload = warm_preload(framework) if preload is None else tuple(preload)
        self.framework = framework
        self.children: set[int] = set()
        """Pids forked and not yet reaped."""
        self._lock = threading.Lock()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        server_env = {k: v for k, v in env.items() if k not in PER_CHILD}
        server_env[SOCKET_ENV] = str(theirs.fileno())
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server)
        command = [sys.executable, "-m", "nnr_profile.profiler.runner.warm", *preload]
        try:
            self._process = subprocess.Popen(
                command,
                env=server_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        self._socket = ours
        ready = self._receive(READY_TIMEOUT_S)
        if not ready.get("ready"):
            self.close()
            raise WarmStartUnavailable(f"{framework}: {ready.get('reason', 'no server')}")

    def fork(self, argv: Sequence[str], env: Mapping[str, str], fds: Sequence[int]) -> WarmChild:
        """Fork a child that runs `lifeline.main(argv)` with `env`; `fds` are (lifeline, stderr)."""
        with self._lock:
            message = json.dumps({"op": "fork", "argv": list(argv), "env": dict(env)})
            try:
                socket.send_fds(self._socket, [message.encode()], list(fds))
            except OSError as exc:
                raise WarmStartUnavailable(
                    f"{self.framework}: the fork server ended: {exc}"
                ) from exc
            reply = self._receive(READY_TIMEOUT_S)
            if "pid" not in reply:
                raise WarmStartUnavailable(f"{self.framework}: {reply.get('reason', 'no fork')}")
            self.children.add(int(reply["pid"]))
        return WarmChild(self, int(reply["pid"]))

    def reap(self, pid: int) -> int:
        """Reap the server's child `pid`; its exit status (-N: killed by signal N)."""
        with self._lock:
            try:
                self._socket.send(json.dumps({"op": "reap", "pid": pid}).encode())
            except OSError:
                return -signal.SIGKILL  # the server is gone; init reaps its orphan
            reply = self._receive(None)
            self.children.discard(pid)
        return int(reply.get("returncode", -signal.SIGKILL))

    def _receive(self, timeout_s: float | None) -> dict[str, Any]:
        readable, _, _ = select.select([self._socket], [], [], timeout_s)
        data = self._socket.recv(MESSAGE_BYTES) if readable else b""
        if not data:
            return {"reason": f"the fork server ended ({self._stderr_tail()})"}
        return json.loads(data)

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no message"

    def close(self) -> None:
        """End the server (its children end with their own parent's lifeline, not with it)."""
        with contextlib.suppress(OSError):
            self._socket.close()
        with contextlib.suppress(OSError):
            self._process.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self._process.wait(timeout=10)
        self._stderr.close()


MAX_SERVERS = 4
"""Servers kept at once; starting another ends the least recently used one with no child."""
_servers: dict[tuple[Any, ...], WarmServer | WarmStartUnavailable] = {}
_servers_lock = threading.Lock()


def warm_server(framework: str, env: Mapping[str, str]) -> WarmServer:
    """The running server for `framework` and `env`'s start-up variables (started on first use).

    Raises WarmStartUnavailable (remembered: the next call fails at once) when it cannot start.
    """
    key = (framework, *sorted((k, v) for k, v in env.items() if k.startswith(START_UP_PREFIXES)))
    with _servers_lock:
        known = _servers.pop(key, None)
        if known is None:
            _evict_idle()
            try:
                known = WarmServer(framework, env)
            except WarmStartUnavailable as exc:
                known = exc
            except OSError as exc:
                known = WarmStartUnavailable(f"{framework}: the fork server did not start: {exc}")
        _servers[key] = known  # (re)inserted last: the most recently used
    if isinstance(known, WarmStartUnavailable):
        raise known
    return known


def warm_fork(
    framework: str, argv: Sequence[str], env: Mapping[str, str], fds: Sequence[int]
) -> WarmChild | None:
    """`WarmServer.fork` on `framework`'s server for `env`; None (start cold) when it cannot.

    A server that fails is remembered as the reason (`warm_start_problems`), so the next
    children start cold at once.
    """
    try:
        server = warm_server(framework, env)
    except WarmStartUnavailable:
        return None
    try:
        return server.fork(argv, env, fds)
    except WarmStartUnavailable as exc:
        with _servers_lock:
            for key, known in list(_servers.items()):
                if known is server:
                    _servers[key] = exc
        server.close()
        return None


def _evict_idle() -> None:
    """End the least recently used servers with no child until one more fits MAX_SERVERS."""
    running = [key for key, server in _servers.items() if isinstance(server, WarmServer)]
    for key in running[: max(0, len(running) - MAX_SERVERS + 1)]:
        server = _servers[key]
        if isinstance(server, WarmServer) and not server.children:
            server.close()
            del _servers[key]


def warm_start_problems() -> list[str]:
    """Why warm servers of frameworks that can start warm failed here, so their trials started
    cold (one line each; frameworks not fork-safe by design are left out)."""
    with _servers_lock:
        return sorted(
            {
                str(known)
                for known in _servers.values()
                if isinstance(known, WarmStartUnavailable) and not isinstance(known, NotForkSafe)
            }
        )


def close_servers() -> None:
    """End every warm server this process started."""
    with _servers_lock:
        for server in _servers.values():
            if isinstance(server, WarmServer):
                server.close()
        _servers.clear()


atexit.register(close_servers)


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def serve(control: socket.socket, preload: Sequence[str]) -> int:
    """The server's loop: import `preload`, say whether forking is safe, then fork and reap."""
    import numpy  # noqa: F401  (its BLAS pool: the threads a fork may meet)

    baseline = _thread_count()
    try:
        for name in preload:
            importlib.import_module(name)
    except Exception as exc:
        control.send(json.dumps({"reason": f"importing failed: {exc}"}).encode())
        return 1
    started = _thread_count() - baseline
    if started > 0:
        reason = f"importing {', '.join(preload)} started {started} thread(s); a fork is not safe"
        control.send(json.dumps({"reason": reason}).encode())
        return 1
    control.send(json.dumps({"ready": True}).encode())
    children: set[int] = set()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, MESSAGE_BYTES, 2)
        except OSError:
            data = b""
        if not data:  # the parent is gone: SIGTERM makes each child clean up and end its group
            for pid in children:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
            return 0
        request = json.loads(data)
        if request["op"] == "reap":
            pid = int(request["pid"])
            _, status = os.waitpid(pid, 0)
            children.discard(pid)
            control.send(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode())
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12 on BLAS threads
            pid = os.fork()
        if pid == 0:
            _become_child(control, request, fds)
        for fd in fds:
            os.close(fd)
        children.add(pid)
        control.send(json.dumps({"pid": pid}).encode())


def _become_child(control: socket.socket, request: Mapping[str, Any], fds: list[int]) -> None:
    """In the forked process: become a cold child's equal, run `lifeline.main`, never return."""
    code = 1
    try:
        lifeline, stderr = fds
        control.close()
        os.setsid()
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGCHLD):
            signal.signal(signum, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(stderr, 2)
        for fd in (devnull, stderr):
            os.close(fd)
        env = dict(request["env"])
        env[LIFELINE_ENV] = f"{lifeline}:{os.fstat(lifeline).st_ino}"
        env[TRIAL_START_ENV] = "warm"
        os.environ.clear()
        os.environ.update(env)
        _reseed_unseeded()
        argv = [str(arg) for arg in request["argv"]]
        set_command_line([sys.executable, "-m", "nnr_profile.profiler.runner.lifeline", *argv])
        from nnr_profile.profiler.runner import lifeline

        sys.argv = [lifeline.__file__, *argv]

        code = lifeline.main(argv)
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def set_command_line(words: Sequence[str]) -> bool:
    """Show `words` as this process's command line (`ps`, /proc/PID/cmdline); False if not.

    A warm child would otherwise show its server's: it writes over the memory the kernel reads
    the command line from (Linux; cut to the server's length), so `ps` and the checks that find
    a trial by its folder see it as they see a cold child. Python keeps its own copy of argv.
    """
    try:
        fields = stat_fields()
        start, end = int(fields[45]), int(fields[46])  # fields 48 and 49: arg_start, arg_end
        text = b"\0".join(word.encode() for word in words)[: end - start - 1]
        with open("/proc/self/mem", "r+b", buffering=0) as memory:
            memory.seek(start)
            memory.write(text.ljust(end - start, b"\0"))
    except (OSError, IndexError, ValueError):
        return False
    return True


def _reseed_unseeded() -> None:
    """Give Python's and NumPy's global generators fresh OS entropy, as a new interpreter has.

    A fork inherits the server's state, so code that draws without seeding would draw alike in
    every warm child and hide the run-to-run differences `verify` looks for. (PyTorch's default
    generator starts from one fixed seed in any process, warm or cold.)
    """
    import random

    import numpy

    random.seed()
    numpy.random.seed()


def server_main(preload: Sequence[str]) -> int:
    """Entry point: serve on the socket named by SOCKET_ENV until its other end closes.

    Only the parent holds that end, so the server ends with the parent however it ends (no
    parent-death signal: the kernel would send it when the parent's *thread* that started the
    server ends, and a sweep's worker threads end after each round).
    """
    control = socket.socket(fileno=int(os.environ.pop(SOCKET_ENV)))
    return serve(control, preload)


if __name__ == "__main__":
    sys.exit(server_main(sys.argv[1:]))
