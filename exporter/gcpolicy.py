"""Keep Python's cycle collector off the start-up and off the mass of long-lived objects.

With 10,000 accounts the process holds a few hundred thousand long-lived objects (the config,
the store, the readings). A full (generation 2) collection walks all of them and holds the
event loop for a few hundred milliseconds, again and again while the process grows at
start-up. So:

- :func:`pause_for_startup` (the command line does it first thing) turns automatic collection
  off while the config loads and every account is polled the first time; that alone takes a
  tenth off the start-up of 1,000 accounts;
- :func:`freeze` before the polling loops start moves the config and the store into the
  permanent generation, which collections skip;
- :func:`end_startup`, once every account was polled (or after :data:`STARTUP_LIMIT`
  seconds), freezes what the first polls left and turns collection back on.

Neither collects first: a full collection then walks every object (25 ms for 1,000 accounts,
ten times that for 10,000) to find a few thousand objects of garbage that importing, parsing
and the first polls left in reference cycles (2,000 and 400 for 1,000 accounts, well under a
megabyte), which thus stay frozen once and for all.

Objects that die later are still freed by reference counting as usual. A reload lets the
collector see everything again (:func:`thaw`), so that the stopped loops' garbage is
collected, and freezes the survivors after the next full collection.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from .log import get_logger

log = get_logger("exporter.gc")

#: The longest start-up may keep automatic collection off (a slow first poll of thousands of
#: accounts must not let garbage pile up without end).
STARTUP_LIMIT = 60.0

_paused_until: float | None = None


def pause_for_startup() -> None:
    global _paused_until
    gc.disable()
    _paused_until = time.monotonic() + STARTUP_LIMIT


def in_startup() -> bool:
    return _paused_until is not None


def startup_overdue() -> bool:
    return _paused_until is not None and time.monotonic() > _paused_until


def freeze(why: str, *, collect: bool = False) -> None:
    """Move every object alive into the permanent generation (``collect``: collect first,
    so that no garbage is frozen with them)."""
    if collect:
        gc.collect()
    gc.freeze()  # moves whole lists: O(1) (get_freeze_count() would walk them all)
    log.debug("objects frozen", why=why)


def end_startup() -> None:
    """Start-up is over: freeze what it left, collect automatically again (without a paused
    start-up, e.g. an in-process daemon, just freeze)."""
    global _paused_until
    freeze("start-up over")
    if _paused_until is not None:
        _paused_until = None
        gc.enable()


def _refreeze_after_full_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation") == 2:
        gc.callbacks.remove(_refreeze_after_full_collection)
        freeze("after the full collection that followed a reload")


def thaw() -> None:
    """Let the collector see every object again until its next full collection."""
    gc.unfreeze()
    if _refreeze_after_full_collection not in gc.callbacks:
        gc.callbacks.append(_refreeze_after_full_collection)
