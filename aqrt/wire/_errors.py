"""The one error the wire codec raises."""

from __future__ import annotations

from ..errors import InvalidInputError

__all__ = ["WireError"]


class WireError(InvalidInputError):
    """A payload (or an object to encode) that the Runtime JSON codec refuses.

    ``tag`` is the ``__type__`` at fault (``None`` for plain JSON), ``path`` the place in the
    document, as keys and indices from the root. The message names both, e.g.
    ``ndarray: the decompressed data exceeds the limit of 1024 bytes (at $.pubs[0][2])``.
    """

    def __init__(self, problem: str, *, tag: str | None = None) -> None:
        self.problem = problem
        self.tag = tag
        self.path: list[str | int] = []
        super().__init__(problem)

    def at(self, segment: str | int) -> WireError:
        """Prepend one path segment while the error travels up the document; returns self."""
        self.path.insert(0, segment)
        return self

    @property
    def location(self) -> str:
        """The path as ``$.key[index]...``."""
        return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in self.path)

    def __str__(self) -> str:
        head = f"{self.tag}: {self.problem}" if self.tag else self.problem
        return f"{head} (at {self.location})" if self.path else head
