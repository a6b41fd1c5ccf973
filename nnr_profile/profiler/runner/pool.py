"""One worker pool for sweeps and studies: worker threads that each run child processes in turn.

A worker takes tasks from its lane's queue (a device's own trial list, or a queue several
workers share), runs each (a child process it starts and waits for), stores the result and
reports progress. The thread that starts a child waits for it, so it lives as long as the child
(Linux ties the child's parent-death signal to that thread). Ctrl-C, SIGTERM or SIGHUP in the
main thread kill every running child's process group and remove its folder before the run ends:
Ctrl-C raises KeyboardInterrupt as usual, SIGTERM and SIGHUP then end this process by the same
signal. A killed or interrupted run resumes: stored results are skipped.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnr_profile.profiler.runner.child import ChildrenStopped, allow_children, stop_children

_running: list[threading.Event] = []
"""One event per worker thread, set when it ends (events, not `Thread.join`: in Python 3.11 a
Ctrl-C during `join` can leave a running thread marked as stopped)."""
WORKER_EXIT_WAIT_S = 10.0


@dataclass
class RunOutcome:
    """What a run did: counts, and the results (trials or replicas) that did not succeed."""

    ran: int = 0
    skipped: int = 0
    failed: list[Any] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, result: Any) -> None:
        """Count a finished result (thread-safe); keep it when its status is not 'ok'."""
        with self._lock:
            self.ran += 1
            if result.status != "ok":
                self.failed.append(result)

    def skip(self) -> None:
        """Count a cell that was already done (thread-safe)."""
        with self._lock:
            self.skipped += 1

    def merge(self, other: RunOutcome) -> None:
        """Add another run's counts and failures to these."""
        with self._lock:
            self.ran += other.ran
            self.skipped += other.skipped
            self.failed += other.failed


@dataclass(frozen=True)
class Lane:
    """Where a worker runs (`slot`, e.g. a device) and the queue it takes tasks from."""

    slot: Any
    tasks: queue.Queue


def lane_queue(tasks: Sequence[Any]) -> queue.Queue:
    """A queue holding `tasks` in order."""
    todo: queue.Queue = queue.Queue()
    for task in tasks:
        todo.put(task)
    return todo


def skip_done(
    cells: Iterable[Any],
    done: Container[str],
    key: Callable[[Any], str],
    outcome: RunOutcome,
    on_progress: Callable[[Any, Any], None] | None = None,
) -> list[Any]:
    """The cells whose `key(cell)` is not in `done`, in order; each done one is counted as
    skipped in `outcome` and reported as `on_progress(cell, None)`."""
    todo = []
    for cell in cells:
        if key(cell) in done:
            outcome.skip()
            if on_progress:
                on_progress(cell, None)
        else:
            todo.append(cell)
    return todo


def run_pool(
    lanes: Sequence[Lane],
    run_task: Callable[[Any, Any], Any],
    db_path: str | Path,
    record: Callable[[Any, Any], Any],
    outcome: RunOutcome,
    on_progress: Callable[[Any, Any], None] | None = None,
) -> RunOutcome:
    """Run every lane's tasks, one worker thread per lane; returns `outcome`, filled.

    `run_task(task, slot)` returns a result (with `.status` and `.spec`); `record(store,
    result)` stores it through the worker's own `Store(db_path)`; `on_progress(result.spec,
    result)` follows each. The first error a worker raises is re-raised once all have ended.
    """
    from nnr_profile.store.database import Store

    _settle_previous_run()
    errors: list[BaseException] = []

    def work(lane: Lane, finished: threading.Event) -> None:
        try:
            with contextlib.ExitStack() as stack:
                store = None  # opened at the first result: a worker left without work opens none
                while True:
                    try:
                        task = lane.tasks.get_nowait()
                    except queue.Empty:
                        return
                    result = run_task(task, lane.slot)
                    if store is None:
                        store = stack.enter_context(Store(db_path))
                    record(store, result)
                    outcome.add(result)
                    if on_progress:
                        on_progress(result.spec, result)
        except ChildrenStopped:
            return
        except BaseException as exc:
            errors.append(exc)
        finally:
            finished.set()

    events = [threading.Event() for _ in lanes]
    _running.extend(events)
    with _stop_children_on_signals():
        for i, (lane, finished) in enumerate(zip(lanes, events, strict=True)):
            name = f"nnr-worker-{i}"
            threading.Thread(target=work, args=(lane, finished), name=name, daemon=True).start()
        try:
            for finished in events:
                finished.wait()
        except BaseException:
            stop_children()
            if all(finished.wait(WORKER_EXIT_WAIT_S) for finished in events):
                allow_children()  # every worker has ended: none can start a child any more
            raise
    if errors:
        raise errors[0]
    return outcome


def _settle_previous_run() -> None:
    """Wait for workers of an interrupted earlier run in this process; then allow children."""
    while _running:
        _running.pop().wait(WORKER_EXIT_WAIT_S)
    allow_children()


@contextlib.contextmanager
def _stop_children_on_signals() -> Iterator[None]:
    """In the main thread: SIGTERM/SIGHUP kill the children, then end this process by it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        count = stop_children()
        name = signal.Signals(signum).name
        sys.stderr.write(
            f"nnr-profile: stopped by {name}; killed {count} running child process(es); "
            "run the same command again to resume\n"
        )
        sys.stderr.flush()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signums = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {signum: signal.signal(signum, stop) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
