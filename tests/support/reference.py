"""The reference exposition: prometheus_client rendering the store through a custom collector.

:class:`StoreCollector` builds fresh metric families from the store on every collect (the
prometheus_client way for data that lives elsewhere), independently of the exporter's own
per-account samples (exporter.catalogue.account_samples) and serializer (exporter.exposition):
only the families' declarations (name, type, help, labels) are shared. The parity tests hold
the exporter's /metrics equal to what prometheus_client writes from it, byte for byte.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

from exporter import __version__, catalogue
from exporter.catalogue import COUNTER, Family
from exporter.model import Reason
from exporter.store import Store

WEEK = 7 * 86400


def new_family(family: Family, extra: list[str]) -> GaugeMetricFamily | CounterMetricFamily:
    cls = CounterMetricFamily if family.type == COUNTER else GaugeMetricFamily
    return cls(family.name, family.help, labels=[*family.labels, *extra])


class StoreCollector(Collector):
    """Yields a fresh set of families from the store on every collect."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        extra = sorted({k for s in self.store.accounts.values() for k in s.account.labels})
        f = {family: new_family(family, extra) for family in catalogue.ACCOUNT_FAMILIES}
        for state in list(self.store.accounts.values()):
            ext = [state.account.labels.get(k, "") for k in extra]
            base = [state.provider.label, state.name]
            merged = state.merged(now)
            for pool, values in merged.pools.items():
                labels = [*base, pool, *ext]
                for family, value in (
                    (catalogue.REMAINING, values.remaining),
                    (catalogue.USED, values.used),
                    (catalogue.LIMIT, values.limit),
                    (catalogue.THRESHOLD, state.account.threshold_for(pool)),
                ):
                    if value is not None:
                        f[family].add_metric(labels, value)
                windows = merged.consumption.get(pool, {})
                for window, value in windows.items():
                    f[catalogue.CONSUMPTION].add_metric([*base, pool, window, *ext], value)
                week = windows.get("7d")
                if values.remaining is not None and week:
                    f[catalogue.RUNWAY].add_metric(labels, values.remaining / week * WEEK)
            for family, maybe in (
                (catalogue.EXPIRY, merged.expiry_timestamp),
                (catalogue.CYCLE_START, merged.cycle_start_timestamp),
                (catalogue.CYCLE_END, merged.cycle_end_timestamp),
                (catalogue.SEATS, merged.seats),
            ):
                if maybe is not None:
                    f[family].add_metric([*base, *ext], maybe)
            if state.fresh_readings(now):
                for pool, counter in sorted(state.counters.items()):
                    f[catalogue.CONSUMED].add_metric([*base, pool, *ext], counter.total)
            for endpoint, ep in state.endpoints.items():
                labels = [*base, endpoint, *ext]
                if ep.up is not None:
                    f[catalogue.UP].add_metric(labels, 1.0 if ep.up else 0.0)
                if ep.last_success is not None:
                    f[catalogue.LAST_SUCCESS].add_metric(labels, ep.last_success)
                if ep.last_duration is not None:
                    f[catalogue.DURATION].add_metric(labels, ep.last_duration)
                f[catalogue.POLLS].add_metric(labels, ep.polls_total)
                for reason in Reason:
                    count = ep.errors_total.get(reason)
                    if count:
                        f[catalogue.ERRORS].add_metric([*base, endpoint, reason.value, *ext], count)
        yield from f.values()

        build = new_family(catalogue.BUILD_INFO, [])
        build.add_metric([__version__, platform.python_version()], 1.0)
        yield build
        reload_ok = new_family(catalogue.RELOAD_OK, [])
        reload_ok.add_metric([], 1.0 if self.store.reload_successful else 0.0)
        yield reload_ok
        if self.store.reload_success_timestamp is not None:
            reload_ts = new_family(catalogue.RELOAD_TS, [])
            reload_ts.add_metric([], self.store.reload_success_timestamp)
            yield reload_ts


def reference(store: Store, clock: Callable[[], float]) -> tuple[bytes, bytes]:
    """(text, OpenMetrics) as prometheus_client writes them for the store at ``clock()``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, clock))
    return generate_latest(registry), generate_openmetrics(registry)  # type: ignore[no-untyped-call]
