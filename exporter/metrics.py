"""The exposition cache that /metrics serves.

/metrics never renders: it serves :attr:`ExpositionCache.current`, the bytes of the latest
rendering, which :class:`~exporter.exposition.IncrementalRenderer` keeps up to date with the
store at the cost of the accounts that changed, so that /metrics costs what serving fixed bytes
costs even at 10,000 accounts. Every rendering published is reported to the store's
:class:`~exporter.readiness.Readiness` (/readyz).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from .exposition import Exposition, IncrementalRenderer
from .log import get_logger
from .store import Store

__all__ = ["Exposition", "ExpositionCache"]

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

log = get_logger("exporter.metrics")

#: Render interval until every account's first poll is rendered (then ``min_interval``).
STARTUP_INTERVAL = 0.1
#: The cache looks for changes at least this often, even when nothing announced one.
REFRESH_SECONDS = 60.0


class ExpositionCache:
    """Keeps the text, OpenMetrics and gzip bytes of the store ready; /metrics only ever reads
    :attr:`current`. Re-renders when the store changed (at most every ``min_interval``) or when
    an account's output changes with time alone (a reading passing ``max_staleness``), and then
    only the accounts concerned (:class:`~exporter.exposition.IncrementalRenderer`)."""

    def __init__(
        self,
        store: Store,
        *,
        min_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.min_interval = min_interval
        self.clock = clock
        self.renderer = IncrementalRenderer(store, clock=clock)
        self.current = self.render()

    def render(self) -> Exposition:
        """Bring the exposition up to date synchronously and publish it (construction,
        ``once``, tests)."""
        return self._publish(self.renderer.render())

    async def refresh(self) -> None:
        """Bring the exposition up to date without holding the event loop, and publish it."""
        self._publish(await self.renderer.render_async())

    def _publish(self, exposition: Exposition) -> Exposition:
        self.current = exposition
        self.store.readiness.published(exposition.round)
        return exposition

    async def run(self) -> None:
        """Re-render whenever the store changes (at most every ``min_interval``) or an
        account's output is due to change with time. Runs until cancelled."""
        while True:
            due = self.renderer.next_due - self.clock()
            timeout = max(0.0, min(REFRESH_SECONDS, due))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.renderer.feed.wait(), timeout=timeout)
            try:
                await self.refresh()
            except Exception:
                # A bug in rendering must not freeze /metrics for good: keep serving the last
                # exposition and try again after the interval (the renderer kept the changes
                # it did not render).
                log.error("render failed", exc_info=True)
                await asyncio.sleep(self.min_interval)
                continue
            if self.current.ready:
                await asyncio.sleep(self.min_interval)
            else:
                # Not every first poll rendered yet: render in small steps, and at once when
                # the last one is in, so that /readyz does not wait out the interval.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.store.readiness.wait_polled(),
                        min(self.min_interval, STARTUP_INTERVAL),
                    )
