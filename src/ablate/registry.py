"""A tiny name → class registry: one per ablation axis, mirrored by a config group in ``conf/``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")


class Choice(str, Enum):
    """A config value with a fixed set of choices. As an Enum field of the schema, OmegaConf rejects any other
    value at compose time (naming the key and the valid choices); as a ``str`` it compares, prints and
    serialises as its value."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def _missing_(cls, value: object) -> None:
        raise ValueError(f"{value!r} is not one of: {', '.join(m.value for m in cls)}")


class Registry(Generic[T]):
    """Maps a config choice (``csq=C``) to the class that implements it."""

    def __init__(self, axis: str) -> None:
        self.axis = axis
        self._entries: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def add(cls: type[T]) -> type[T]:
            if name in self._entries:
                raise KeyError(f"{self.axis}: {name!r} is registered twice")
            self._entries[name] = cls
            return cls

        return add

    def get(self, name: str) -> type[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"unknown {self.axis} {name!r}; valid choices: {', '.join(self._entries)}") from None

    def names(self) -> list[str]:
        return list(self._entries)

    def choices(self, name: str) -> type[Choice]:
        """The registered names as a ``Choice`` enum, for a schema field that takes exactly these."""
        return Choice(name, {n: n for n in self._entries})  # type: ignore[return-value]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
