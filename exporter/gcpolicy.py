"""Keep Python's cycle collector off the daemon's start-up and off its long-lived objects.

With 10,000 accounts the process holds a few hundred thousand long-lived objects (the config,
the store, the readings). A full (generation 2) collection walks all of them and holds the
event loop for a few hundred milliseconds, again and again while the process grows at
start-up. So the daemon, and nothing else, brackets its start-up with a :class:`StartupGc`:

- :meth:`StartupGc.start` turns automatic collection off while the config is parsed and every
  account is polled the first time;
- :meth:`StartupGc.stop`, once every account was polled (or after :data:`STARTUP_LIMIT`
  seconds, or when the daemon stops first), moves every object alive into the permanent
  generation, which collections skip, and turns collection back on.

It does not collect first: a full collection then walks every object (25 ms for 1,000 accounts,
ten times that for 10,000) to find a few thousand objects of garbage that importing, parsing
and the first polls left in reference cycles (2,000 and 400 for 1,000 accounts, well under a
megabyte), which thus stay frozen once and for all.

Objects that die later are still freed by reference counting as usual. A reload lets the
collector see everything again (:func:`thaw`), so that the stopped loops' garbage is
collected, and freezes the survivors after the next full collection.
"""

from __future__ import annotations

import gc
from typing import Any

from .log import get_logger

log = get_logger("exporter.gc")

#: The longest start-up may keep automatic collection off (a slow first poll of thousands of
#: accounts must not let garbage pile up without end).
STARTUP_LIMIT = 60.0


class StartupGc:
    """Automatic collection off from :meth:`start` to :meth:`stop` (which freezes what start-up
    left). Collection that was off before :meth:`start` stays off."""

    def __init__(self) -> None:
        self._running = False
        self._reenable = False

    def start(self) -> None:
        """Start-up begins (a second call does nothing)."""
        if self._running:
            return
        self._running = True
        self._reenable = gc.isenabled()
        gc.disable()

    def stop(self) -> None:
        """Start-up is over (a second call does nothing)."""
        if not self._running:
            return
        self._running = False
        gc.freeze()  # moves whole lists: O(1) (get_freeze_count() would walk them all)
        log.debug("objects frozen", why="start-up over")
        if self._reenable:
            gc.enable()


def _refreeze_after_full_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation") == 2:
        gc.callbacks.remove(_refreeze_after_full_collection)
        gc.freeze()
        log.debug("objects frozen", why="after the full collection that followed a reload")


def thaw() -> None:
    """Let the collector see every object again until its next full collection."""
    gc.unfreeze()
    if _refreeze_after_full_collection not in gc.callbacks:
        gc.callbacks.append(_refreeze_after_full_collection)
