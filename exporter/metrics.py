"""The custom Collector over the store, and the exposition cache that /metrics serves.

The collector builds fresh metric families from the store on every collect (the
prometheus_client way for data that lives elsewhere). It is the reference implementation: the
cache serves the output of :class:`~exporter.exposition.IncrementalRenderer`, which writes the
same exposition (a test holds them equal) but re-renders only the accounts that changed, so
/metrics costs what serving fixed bytes costs even at 10,000 accounts.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__, gcpolicy
from .exposition import Exposition, IncrementalRenderer
from .log import get_logger
from .model import Reading, Reason, runway_seconds
from .store import AccountState, Store

__all__ = ["HELP", "Exposition", "ExpositionCache", "StoreCollector"]

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"

_POLLED = "Polled from the provider's API on an interval and cached; scrapes never call it."

# name -> (kind, help). Kind "gauge" or "counter"; counters are named without "_total" here
# because prometheus_client adds it.
HELP: dict[str, str] = {
    "credits_remaining": "Credits that can still be spent.",
    "credits_used": "Credits used in the current billing cycle, where the provider says.",
    "credits_limit": "Credits granted for the current billing cycle, where known.",
    "credits_expiry_timestamp_seconds": "When the earliest remaining credits expire (Unix time).",
    "credits_billing_cycle_start_timestamp_seconds": "Start of the current billing cycle.",
    "credits_billing_cycle_end_timestamp_seconds": "End of the current billing cycle "
    "(credits reset).",
    "credits_seats": "Seats on the plan.",
    "credits_consumed": "Credits consumed since the exporter started watching, from the "
    "provider's daily history; never double-counts a day, never decreases.",
    "credits_consumption": "Credits consumed in the trailing window (calendar days in the "
    "account's timezone, today included) per the provider's own history.",
    "credits_runway_seconds": "Time until the pool is empty at the recent burn rate: remaining "
    "/ (7-day consumption / 7 days), in seconds. Absent when nothing was consumed in 7 days.",
    "credits_low_threshold": "The configured low-credit threshold for this pool.",
    "credits_up": "1 if the last poll of this endpoint succeeded, 0 if it failed.",
    "credits_last_success_timestamp_seconds": "When this endpoint was last polled "
    "successfully (Unix time).",
    "credits_poll_duration_seconds": "How long the last poll of this endpoint took.",
    "credits_polls": "Polls of this endpoint attempted.",
    "credits_poll_errors": "Failed polls of this endpoint by reason.",
    "credits_exporter_build_info": "Build information; always 1.",
    "credits_exporter_config_last_reload_successful": "1 if the last config load or reload "
    "succeeded, 0 if it was refused.",
    "credits_exporter_config_last_reload_success_timestamp_seconds": "When the config was "
    "last loaded successfully (Unix time).",
}

_ACCOUNT_VALUE_METRICS = {
    "credits_remaining",
    "credits_used",
    "credits_limit",
    "credits_expiry_timestamp_seconds",
    "credits_billing_cycle_start_timestamp_seconds",
    "credits_billing_cycle_end_timestamp_seconds",
    "credits_seats",
    "credits_consumed",
    "credits_consumption",
    "credits_runway_seconds",
}


def _help(name: str) -> str:
    text = HELP[name]
    return f"{text} {_POLLED}" if name in _ACCOUNT_VALUE_METRICS else text


class StoreCollector(Collector):
    """Yields a fresh set of families from the store on every collect."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        extra = sorted({k for s in self.store.accounts.values() for k in s.account.labels})
        pool_labels = ["provider", "account", "pool", *extra]
        account_labels = ["provider", "account", *extra]
        ep_labels = ["provider", "account", "api_endpoint", *extra]

        def gauge(name: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, _help(name), labels=labels)

        remaining = gauge("credits_remaining", pool_labels)
        used = gauge("credits_used", pool_labels)
        limit = gauge("credits_limit", pool_labels)
        expiry = gauge("credits_expiry_timestamp_seconds", account_labels)
        cycle_start = gauge("credits_billing_cycle_start_timestamp_seconds", account_labels)
        cycle_end = gauge("credits_billing_cycle_end_timestamp_seconds", account_labels)
        seats = gauge("credits_seats", account_labels)
        consumed = CounterMetricFamily(
            "credits_consumed", _help("credits_consumed"), labels=pool_labels
        )
        consumption = gauge("credits_consumption", [*pool_labels[:3], "window", *extra])
        runway = gauge("credits_runway_seconds", pool_labels)
        threshold = gauge("credits_low_threshold", pool_labels)
        up = gauge("credits_up", ep_labels)
        last_success = gauge("credits_last_success_timestamp_seconds", ep_labels)
        duration = gauge("credits_poll_duration_seconds", ep_labels)
        polls = CounterMetricFamily("credits_polls", _help("credits_polls"), labels=ep_labels)
        errors = CounterMetricFamily(
            "credits_poll_errors",
            _help("credits_poll_errors"),
            labels=[*ep_labels[:3], "reason", *extra],
        )

        # list(): the event loop may add or remove accounts while this runs in a thread.
        for state in list(self.store.accounts.values()):
            ext = [state.account.labels.get(k, "") for k in extra]
            base = [state.provider.label, state.name]
            merged = state.merged(now)
            self._account_values(
                state, merged, base, ext, remaining, used, limit, consumption, runway, threshold
            )
            for family, value in (
                (expiry, merged.expiry_timestamp),
                (cycle_start, merged.cycle_start_timestamp),
                (cycle_end, merged.cycle_end_timestamp),
                (seats, merged.seats),
            ):
                if value is not None:
                    family.add_metric([*base, *ext], value)
            if state.fresh_readings(now):
                for pool, counter in sorted(list(state.counters.items())):
                    consumed.add_metric([*base, pool, *ext], counter.total)
            for endpoint, ep in state.endpoints.items():
                labels = [*base, endpoint, *ext]
                if ep.up is not None:
                    up.add_metric(labels, 1.0 if ep.up else 0.0)
                if ep.last_success is not None:
                    last_success.add_metric(labels, ep.last_success)
                if ep.last_duration is not None:
                    duration.add_metric(labels, ep.last_duration)
                polls.add_metric(labels, ep.polls_total)
                for reason in Reason:
                    count = ep.errors_total.get(reason)
                    if count:
                        errors.add_metric([*base, endpoint, reason.value, *ext], count)

        build = GaugeMetricFamily(
            "credits_exporter_build_info",
            _help("credits_exporter_build_info"),
            labels=["version", "python_version"],
        )
        build.add_metric([__version__, platform.python_version()], 1.0)
        reload_ok = GaugeMetricFamily(
            "credits_exporter_config_last_reload_successful",
            _help("credits_exporter_config_last_reload_successful"),
            value=1.0 if self.store.reload_successful else 0.0,
        )
        families: list[Metric] = [
            remaining,
            used,
            limit,
            expiry,
            cycle_start,
            cycle_end,
            seats,
            consumed,
            consumption,
            runway,
            threshold,
            up,
            last_success,
            duration,
            polls,
            errors,
            build,
            reload_ok,
        ]
        if self.store.reload_success_timestamp is not None:
            families.append(
                GaugeMetricFamily(
                    "credits_exporter_config_last_reload_success_timestamp_seconds",
                    _help("credits_exporter_config_last_reload_success_timestamp_seconds"),
                    value=self.store.reload_success_timestamp,
                )
            )
        yield from families

    @staticmethod
    def _account_values(
        state: AccountState,
        merged: Reading,
        base: list[str],
        ext: list[str],
        remaining: GaugeMetricFamily,
        used: GaugeMetricFamily,
        limit: GaugeMetricFamily,
        consumption: GaugeMetricFamily,
        runway: GaugeMetricFamily,
        threshold: GaugeMetricFamily,
    ) -> None:
        for pool, values in merged.pools.items():
            labels = [*base, pool, *ext]
            if values.remaining is not None:
                remaining.add_metric(labels, values.remaining)
            if values.used is not None:
                used.add_metric(labels, values.used)
            if values.limit is not None:
                limit.add_metric(labels, values.limit)
            t = state.account.threshold_for(pool)
            if t is not None:
                threshold.add_metric(labels, t)
            windows = merged.consumption.get(pool, {})
            for window, value in windows.items():
                consumption.add_metric([*base, pool, window, *ext], value)
            seconds = runway_seconds(values.remaining, windows.get("7d"))
            if seconds is not None:
                runway.add_metric(labels, seconds)


log = get_logger("exporter.metrics")

#: Render interval until every account's first poll is rendered (then ``min_interval``).
STARTUP_INTERVAL = 0.1


class ExpositionCache:
    """Keeps the text, OpenMetrics and gzip bytes of the store ready; /metrics only ever reads
    :attr:`current`. Re-renders when the store changed (at most every ``min_interval``) or when
    an account's output changes with time alone (a reading passing ``max_staleness``), and then
    only the accounts concerned (:class:`~exporter.exposition.IncrementalRenderer`). It looks at
    least every ``refresh_seconds`` even when nothing announced a change."""

    def __init__(
        self,
        store: Store,
        *,
        refresh_seconds: float = 60.0,
        min_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.min_interval = min_interval
        self.clock = clock
        self.renderer = IncrementalRenderer(store, _help, clock=clock)
        self.current = self._render(store.version)

    @property
    def renders(self) -> int:
        """Expositions built (a wake-up that found nothing changed does not count)."""
        return self.renderer.stats.renders

    def _render(self, version: int) -> Exposition:
        """Bring the exposition up to date synchronously (start-up, ``once``, tests)."""
        return self.renderer.render(version)

    async def refresh(self) -> None:
        """Bring the exposition up to date without holding the event loop, and publish it."""
        self.store.changed.clear()
        self.current = await self.renderer.render_async(self.store.version)

    async def run(self) -> None:
        """Re-render whenever the store changes (at most every ``min_interval``) or an
        account's output is due to change with time. Runs until cancelled."""
        startup = True
        while True:
            due = self.renderer.next_due - self.clock()
            timeout = max(0.0, min(self.refresh_seconds, due))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.store.changed.wait(), timeout=timeout)
            if startup and (self.store.ready() or gcpolicy.startup_overdue()):
                # Every account polled: start-up ends (garbage collected, the long-lived
                # objects frozen, exporter.gcpolicy) before the rendering that makes us ready.
                gcpolicy.end_startup()
                startup = False
            try:
                await self.refresh()
            except Exception:
                # A bug in rendering must not freeze /metrics for good: keep serving the last
                # exposition and try again after the interval.
                log.error("render failed", exc_info=True)
                self.store.changed.set()  # the change that prompted it is still to render
                await asyncio.sleep(self.min_interval)
                continue
            if self.current.ready:
                await asyncio.sleep(self.min_interval)
            else:
                # Not every first poll rendered yet: render in small steps, and at once when
                # the last one is in, so that /readyz does not wait out the interval.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.store.ready_event.wait(), min(self.min_interval, STARTUP_INTERVAL)
                    )
