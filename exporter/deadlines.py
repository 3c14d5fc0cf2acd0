"""When each account's rendered output next changes with time alone: a heap with lazy deletion,
shared by the /metrics renderer and the status cache."""

from __future__ import annotations

import heapq
import math


class Deadlines:
    """Names with the time each is next due. Setting a name's deadline again supersedes the
    earlier one (which stays in the heap until it comes up, and is then skipped)."""

    __slots__ = ("_heap", "_when")

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._when: dict[str, float] = {}

    def set(self, name: str, when: float) -> None:
        """``name`` is due at ``when`` (``inf``: never)."""
        if when == math.inf:
            self._when.pop(name, None)
            return
        self._when[name] = when
        heapq.heappush(self._heap, (when, name))

    def pop_due(self, now: float) -> list[str]:
        """The names due at ``now`` (each then has no deadline until set again)."""
        heap, when_of = self._heap, self._when
        due = []
        while heap and heap[0][0] <= now:
            when, name = heapq.heappop(heap)
            if when_of.get(name) == when:
                del when_of[name]
                due.append(name)
        if len(heap) > 2 * len(when_of) + 64:  # drop superseded deadlines
            self._heap = [(w, n) for n, w in when_of.items()]
            heapq.heapify(self._heap)
        return due

    @property
    def next(self) -> float:
        """When the next name is due (``inf``: none is)."""
        heap, when_of = self._heap, self._when
        while heap:
            when, name = heap[0]
            if when_of.get(name) == when:
                return when
            heapq.heappop(heap)
        return math.inf
