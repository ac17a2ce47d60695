"""Registries: the named things a lower floor uses and the apps above it provide (health checks,
metric collectors, search engines, execution backends, runtimes, snippet languages).

Every registry is filled the same way: an app adds its entries in its `AppConfig.ready()`,
once Django has loaded every app, by calling `add`. Nothing registers itself as a side effect
of being imported, so what is registered does not depend on which module happened to be
imported first, and the floor that owns a registry never imports the apps that fill it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T, *, replace: bool = False) -> T:
        """Add `entry` under `name`. Adding a name twice is a mistake (two apps claiming it),
        unless `replace` says the new entry is meant to take the old one's place."""
        if name in self._entries and not replace:
            raise ValueError(f"the {self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries) or "none"
            raise LookupError(f"unknown {self.kind} {name!r} (registered: {known})") from None

    def names(self) -> list[str]:
        """In the order they were added."""
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)
