"""A lock-free, exact counter for counts bumped on every span."""

from __future__ import annotations

import itertools


class Tally:
    """A counter that any thread bumps without a lock, for the per-span counts.

    ``next()`` on an ``itertools.count`` is a single C call, atomic under the GIL, where
    ``self.n += 1`` is a read, an add and a write that two threads can interleave, losing a
    count. ``add`` is that bound
    ``__next__``; the value is read from the counter's repr, ``count(N)``, without advancing it.
    """

    __slots__ = ("_counter", "add")

    def __init__(self) -> None:
        self._counter = itertools.count()
        self.add = self._counter.__next__

    @property
    def value(self) -> int:
        return int(repr(self._counter)[6:-1])
