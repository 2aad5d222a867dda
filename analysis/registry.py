"""The analysis' own small registry (analysis imports nothing below it): name -> entry, a
``register`` decorator that rejects a second entry under a taken name, and ``get`` with the house
error ``kind: got X; allowed: ...``. Used for the claim rules (:data:`analysis.rules.RULES`) and
the named figures (:data:`analysis.figures.FIGURES`)."""

from __future__ import annotations

from typing import Callable, Iterator


class UnknownName(KeyError, ValueError):
    """A name that is not registered; the message is the house one-liner."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry:
    """``field`` is the config field that names an entry (``kind`` for a rule, ``figure`` for a
    figure): the error messages start with it."""

    def __init__(self, field: str):
        self.field = field
        self._entries: dict[str, Callable] = {}

    def register(self, name: str) -> Callable[[Callable], Callable]:
        """Decorator: register ``fn`` under ``name``; a taken name is an error."""

        def deco(fn: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(
                    f"{self.field}: {name!r} is registered twice ({self._entries[name].__module__} and {fn.__module__})"
                )
            self._entries[name] = fn
            return fn

        return deco

    def get(self, name: str) -> Callable:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownName(f"{self.field}: got {name!r}; allowed: {', '.join(sorted(self._entries))}") from None

    __getitem__ = get

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)
