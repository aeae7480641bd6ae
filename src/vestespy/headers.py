"""``Headers``: an ordered, case-insensitive multi-map of header fields.

Fields are kept as ``(lower-cased name, name as spelled, value)`` triples in the order they
were received or added, so that iteration gives back exactly what the client sent while
lookups need no case folding beyond the one done on insertion.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar, overload

from ._mypyc import mypyc_attr

__all__ = ["Headers"]


# Users may subclass it: mypyc must allow that when compiled.
@mypyc_attr(allow_interpreted_subclasses=True)
class Headers:
    """An ordered, case-insensitive multi-map of ``str`` header fields.

    Iterating yields ``(name, value)`` pairs in the order received, with names as the peer
    spelled them. Lookups ignore case.

    Example:
        >>> from vestespy import Headers
        >>> h = Headers([("Host", "example.com"), ("Accept", "a"), ("accept", "b")])
        >>> h.get("HOST")
        'example.com'
        >>> h.get_all("Accept")
        ['a', 'b']
        >>> "accept" in h, len(h)
        (True, 3)
        >>> list(h)[0]
        ('Host', 'example.com')
    """

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        """Create a header map.

        Args:
            fields: ``(name, value)`` pairs, kept in order.
        """
        # Every request and response makes empty ones: skip the comprehension for those.
        self._fields: list[tuple[str, str, str]] = (
            [(name.lower(), name, value) for name, value in fields] if fields else []
        )

    def __iter__(self) -> Iterator[tuple[str, str]]:
        """Yield ``(name, value)`` pairs in order, names as spelled."""
        for _, name, value in self._fields:
            yield name, value

    def __len__(self) -> int:
        """Return the number of fields (a repeated name counts each time)."""
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        """Return whether a field called ``name`` (any case) is present."""
        if not isinstance(name, str):
            return False
        lower = name.lower()
        return any(field[0] == lower for field in self._fields)

    def __eq__(self, other: object) -> bool:
        """Compare as ordered lists of ``(name, value)`` pairs, ignoring the case of names."""
        if isinstance(other, Headers):
            return [(f[0], f[2]) for f in self._fields] == [(f[0], f[2]) for f in other._fields]
        return NotImplemented

    __hash__: ClassVar[None] = None  # type: ignore[assignment]  # unhashable (mutable), typed as list is

    def __repr__(self) -> str:
        return f"Headers({list(self)!r})"

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    @overload
    def get(self, name: str, default: None) -> str | None: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of ``name`` (any case), or ``default``.

        Args:
            name: The field name.
            default: Returned when the field is absent.

        Returns:
            The first value, or ``default``.
        """
        lower = name.lower()
        for field in self._fields:
            if field[0] == lower:
                return field[2]
        return default

    def get_all(self, name: str) -> list[str]:
        """Return every value of ``name`` (any case), in order; empty if absent."""
        lower = name.lower()
        return [field[2] for field in self._fields if field[0] == lower]

    def items(self) -> list[tuple[str, str]]:
        """Return the ``(name, value)`` pairs as a new list."""
        return [(name, value) for _, name, value in self._fields]

    def add(self, name: str, value: str) -> None:
        """Append a field, keeping any already present with the same name."""
        self._fields.append((name.lower(), name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` (any case) by one field, in the first's place."""
        lower = name.lower()
        fields = self._fields
        for index, field in enumerate(fields):
            if field[0] == lower:
                fields[index] = (lower, name, value)
                fields[index + 1 :] = [f for f in fields[index + 1 :] if f[0] != lower]
                return
        fields.append((lower, name, value))

    def remove(self, name: str) -> None:
        """Remove every field called ``name`` (any case); absent names are ignored."""
        lower = name.lower()
        self._fields = [field for field in self._fields if field[0] != lower]
