"""Keep Python's cycle collector off the mass of long-lived objects.

With 10,000 accounts the process holds a few hundred thousand long-lived objects (the config,
the store, one task per polling loop, the readings). A full (generation 2) collection walks
all of them and holds the event loop for a few hundred milliseconds, again and again while
the process grows. Once start-up is over, :func:`freeze` moves everything alive into the
permanent generation, which collections skip; objects that die later are still freed by
reference counting as usual. A reload lets the collector see everything again
(:func:`thaw`) so that the stopped loops' garbage is collected, and freezes the survivors
after the next full collection.
"""

from __future__ import annotations

import gc
from typing import Any

from .log import get_logger

log = get_logger("exporter.gc")


def freeze(why: str) -> None:
    gc.freeze()  # moves whole lists: O(1) (get_freeze_count() would walk them all)
    log.debug("objects frozen", why=why)


def _refreeze_after_full_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation") == 2:
        gc.callbacks.remove(_refreeze_after_full_collection)
        freeze("after the full collection that followed a reload")


def thaw() -> None:
    """Let the collector see every object again until its next full collection."""
    gc.unfreeze()
    if _refreeze_after_full_collection not in gc.callbacks:
        gc.callbacks.append(_refreeze_after_full_collection)
