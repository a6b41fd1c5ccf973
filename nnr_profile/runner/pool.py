"""Worker threads for sweeps and studies: each thread runs processes one after another."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


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


def run_threads(targets: Iterable[Callable[[], None]]) -> None:
    """Run each target in its own thread, wait for all, then re-raise the first error."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,), daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
