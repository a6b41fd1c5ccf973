"""One registry helper: name -> entry, for workloads, collectors, trace formats, report tables
and launchers, built-ins and plugins alike.

A registry fills itself the first time it is read, from three sources:

- `modules`: built-in modules, each of which registers its entries when imported
  (e.g. with ``@registry.register(name)``);
- `lazy(name, "module:attr")`: one built-in entry named up front, imported only when that
  entry is asked for, so listing the names imports nothing (`lazy(name, "module")`: the module
  registers `name` itself when imported);
- an entry-point `group`, read the same two ways: an entry point naming a module
  (``mynet = "pkg.workloads"``) is imported with the modules; one naming an object
  (``toy = "pkg.mod:Toy"``) is a lazy entry under the entry point's name.

A plugin that fails to import, or that `check` refuses, is left out and recorded in `broken`
(name -> why) instead of raised: one broken plugin must not take the others down. A built-in
that fails is a bug and raises.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from nnr_profile.core.errors import UsageError

T = TypeVar("T")


def load_reference(reference: str) -> Any:
    """The object a ``"module:attr"`` reference names (the module alone without ``:attr``)."""
    module, _, attr = reference.partition(":")
    found: Any = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        found = getattr(found, part)
    return found


def _reason(exc: BaseException) -> str:
    """An exception as one line: its type and message."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


@dataclass(frozen=True)
class _Pending:
    """An entry named but not imported yet: where it is, and whether it is a plugin's."""

    reference: str
    load: Callable[[], Any]
    plugin: bool


class Registry(Generic[T]):
    """Entries of one kind by name, in the order they were registered (see the module doc)."""

    def __init__(
        self,
        kind: str,
        *,
        modules: Iterable[str] = (),
        group: str | None = None,
        check: Callable[[str, Any], str | None] | None = None,
    ) -> None:
        self.kind = kind
        self.modules = tuple(modules)
        self.group = group
        self.check = check
        self.broken: dict[str, str] = {}
        """Plugins left out: name -> why (filled as the registry loads)."""
        self._slots: dict[str, Any] = {}
        """name -> its entry, or the `_Pending` that will import it; in registration order."""
        self._loaded = False
        self._loading = False
        self._lock = threading.RLock()
        """Held while loading or importing a lazy entry: threads see a registry whole."""

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, entry: T) -> T: ...

    def register(self, name: str, entry: Any = None) -> Any:
        """Add (or replace) `entry` as `name` and return it; without `entry`, a decorator."""
        if entry is None:
            return lambda decorated: self.register(name, decorated)
        self._slots[name] = entry
        return entry

    def lazy(self, name: str, reference: str) -> None:
        """Name a built-in entry imported when first asked for: ``"module:attr"``, or a module
        that registers `name` when imported."""
        self._slots.setdefault(name, _Pending(reference, lambda: load_reference(reference), False))

    def unregister(self, name: str) -> None:
        """Remove `name` (registered, lazy or broken); nothing happens when it is unknown."""
        self._slots.pop(name, None)
        self.broken.pop(name, None)

    def load(self) -> None:
        """Import the built-in modules and read the entry-point group, once per process."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded or self._loading:
                return  # done meanwhile, or asked again by a module this thread imports
            self._loading = True
            try:
                for module in self.modules:
                    importlib.import_module(module)
                if self.group is not None:
                    self._read_group(self.group)
                self._loaded = True
            finally:
                self._loading = False

    def names(self) -> list[str]:
        """Every name not known to be broken, in registration order (lazy ones not imported)."""
        self.load()
        return list(self._slots)

    def get(self, name: str) -> T:
        """The entry `name`; a UsageError saying why it is broken or naming the choices."""
        self.load()
        self._resolve(name)
        if name in self._slots:
            return self._slots[name]
        if name in self.broken:
            raise UsageError(f"{self.kind} plugin {name!r} cannot be used: {self.broken[name]}")
        choices = ", ".join(self.names()) or "none is registered"
        raise UsageError(f"unknown {self.kind} {name!r}: use {choices}")

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) of every usable entry in registration order, lazy ones imported."""
        for name in self.names():
            self._resolve(name)
        return list(self._slots.items())

    def values(self) -> list[T]:
        """Every usable entry in registration order, lazy ones imported."""
        return [entry for _, entry in self.items()]

    def problems(self) -> list[str]:
        """One line per broken plugin (lazy ones imported first): kind, name and why."""
        self.items()
        return [f"{self.kind} plugin {name!r}: {why}" for name, why in self.broken.items()]

    def __getitem__(self, name: str) -> T:
        self.load()
        self._resolve(name)
        return self._slots[name]

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def _read_group(self, group: str) -> None:
        from importlib.metadata import entry_points

        for ep in entry_points(group=group):
            if ep.name in self._slots or ep.name in self.broken:
                continue  # a registered entry wins; of two plugins, the first found
            if ep.attr:
                self._slots[ep.name] = _Pending(ep.value, ep.load, True)
                continue
            try:
                ep.load()
            except Exception as exc:  # any error of a third party's import
                self.broken[ep.name] = f"{ep.value} failed to import ({_reason(exc)})"

    def _resolve(self, name: str) -> None:
        """Import `name` when it is lazy: kept when it loads and passes `check`, else recorded."""
        if not isinstance(self._slots.get(name), _Pending):
            return
        with self._lock:
            self._resolve_pending(name)

    def _resolve_pending(self, name: str) -> None:
        """`_resolve` under the lock (another thread may have resolved `name` meanwhile)."""
        pending = self._slots.get(name)
        if not isinstance(pending, _Pending):
            return
        try:
            entry = pending.load()
        except Exception as exc:
            if not pending.plugin:
                raise
            del self._slots[name]
            self.broken[name] = f"{pending.reference} failed to import ({_reason(exc)})"
            return
        if self._slots.get(name) is not pending:
            return  # the module registered `name` while it was imported
        problem = self.check(name, entry) if self.check is not None else None
        if problem is None:
            self._slots[name] = entry
        elif pending.plugin:
            del self._slots[name]
            self.broken[name] = f"{pending.reference} {problem}"
        else:
            raise TypeError(f"built-in {self.kind} {name!r} ({pending.reference}) {problem}")
