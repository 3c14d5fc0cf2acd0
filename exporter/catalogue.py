"""Every metric family /metrics publishes, declared once, and the samples of one account.

A :class:`Family` says what the ``# HELP`` and ``# TYPE`` lines say and which labels its
samples carry (an account's static ``labels:`` from the config come on top of the account
families' own). :data:`ACCOUNT_FAMILIES` lists the per-account families in exposition order,
:data:`EXPORTER_FAMILIES` the exporter's own.

:func:`account_samples` is the one place that says which samples an account has and with what
values; the serializer (:mod:`exporter.exposition`) writes them. :func:`pool_figures` is the
per-pool part of it, which the status page reads too, so that both say the same (the runway
above all: :func:`runway_seconds`).
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from . import __version__
from .model import Reading, Reason
from .store import AccountState

GAUGE, COUNTER = "gauge", "counter"

#: Label names of the account families (static labels come on top).
ACCOUNT = ("provider", "account")
POOL = ("provider", "account", "pool")
ENDPOINT = ("provider", "account", "api_endpoint")

_POLLED = "Polled from the provider's API on an interval and cached; scrapes never call it."


def _polled(text: str) -> str:
    return f"{text} {_POLLED}"


@dataclass(frozen=True, eq=False, slots=True)
class Family:
    """One metric family. ``name`` is the family's name (a counter's samples add ``_total``:
    :attr:`sample_name`); ``unit`` the base unit the name ends with, if any."""

    name: str
    type: str
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""

    @property
    def sample_name(self) -> str:
        return f"{self.name}_total" if self.type == COUNTER else self.name


# -- the account's values: dropped with its readings after max_staleness

REMAINING = Family("credits_remaining", GAUGE, _polled("Credits that can still be spent."), POOL)
USED = Family(
    "credits_used",
    GAUGE,
    _polled("Credits used in the current billing cycle, where the provider says."),
    POOL,
)
LIMIT = Family(
    "credits_limit",
    GAUGE,
    _polled("Credits granted for the current billing cycle, where known."),
    POOL,
)
EXPIRY = Family(
    "credits_expiry_timestamp_seconds",
    GAUGE,
    _polled("When the earliest remaining credits expire (Unix time)."),
    ACCOUNT,
    "seconds",
)
CYCLE_START = Family(
    "credits_billing_cycle_start_timestamp_seconds",
    GAUGE,
    _polled("Start of the current billing cycle."),
    ACCOUNT,
    "seconds",
)
CYCLE_END = Family(
    "credits_billing_cycle_end_timestamp_seconds",
    GAUGE,
    _polled("End of the current billing cycle (credits reset)."),
    ACCOUNT,
    "seconds",
)
SEATS = Family("credits_seats", GAUGE, _polled("Seats on the plan."), ACCOUNT)
CONSUMED = Family(
    "credits_consumed",
    COUNTER,
    _polled(
        "Credits consumed since the exporter started watching, from the provider's daily "
        "history; never double-counts a day, never decreases."
    ),
    POOL,
)
CONSUMPTION = Family(
    "credits_consumption",
    GAUGE,
    _polled(
        "Credits consumed in the trailing window (calendar days in the account's timezone, "
        "today included) per the provider's own history."
    ),
    (*POOL, "window"),
)
RUNWAY = Family(
    "credits_runway_seconds",
    GAUGE,
    _polled(
        "Time until the pool is empty at the recent burn rate: remaining / (7-day consumption "
        "/ 7 days), in seconds. Absent when nothing was consumed in 7 days."
    ),
    POOL,
    "seconds",
)
THRESHOLD = Family(
    "credits_low_threshold",
    GAUGE,
    "The configured low-credit threshold for this pool.",
    POOL,
)

# -- the account's poll health: stays

UP = Family(
    "credits_up",
    GAUGE,
    "1 if the last poll of this endpoint succeeded, 0 if it failed.",
    ENDPOINT,
)
LAST_SUCCESS = Family(
    "credits_last_success_timestamp_seconds",
    GAUGE,
    "When this endpoint was last polled successfully (Unix time).",
    ENDPOINT,
    "seconds",
)
DURATION = Family(
    "credits_poll_duration_seconds",
    GAUGE,
    "How long the last poll of this endpoint took.",
    ENDPOINT,
    "seconds",
)
POLLS = Family("credits_polls", COUNTER, "Polls of this endpoint attempted.", ENDPOINT)
ERRORS = Family(
    "credits_poll_errors",
    COUNTER,
    "Failed polls of this endpoint by reason.",
    (*ENDPOINT, "reason"),
)

# -- the exporter's own

BUILD_INFO = Family(
    "credits_exporter_build_info",
    GAUGE,
    "Build information; always 1.",
    ("version", "python_version"),
)
RELOAD_OK = Family(
    "credits_exporter_config_last_reload_successful",
    GAUGE,
    "1 if the last config load or reload succeeded, 0 if it was refused.",
)
RELOAD_TS = Family(
    "credits_exporter_config_last_reload_success_timestamp_seconds",
    GAUGE,
    "When the config was last loaded successfully (Unix time).",
    (),
    "seconds",
)

#: The per-account families, in exposition order.
ACCOUNT_FAMILIES: tuple[Family, ...] = (
    REMAINING,
    USED,
    LIMIT,
    EXPIRY,
    CYCLE_START,
    CYCLE_END,
    SEATS,
    CONSUMED,
    CONSUMPTION,
    RUNWAY,
    THRESHOLD,
    UP,
    LAST_SUCCESS,
    DURATION,
    POLLS,
    ERRORS,
)
#: The exporter's own families, after the accounts'; a family without a sample is left out.
EXPORTER_FAMILIES: tuple[Family, ...] = (BUILD_INFO, RELOAD_OK, RELOAD_TS)

#: One sample: its family, its label values in the order of the family's ``labels``, its value.
Sample = tuple[Family, tuple[str, ...], float]

WEEK_SECONDS = 7 * 86400
_REASONS = tuple(Reason)


def ran_out(remaining: float | None, limit: float | None) -> bool:
    """Nothing left: ``remaining`` <= 0 (a negative balance included), unless the limit is a
    known 0 (nothing was ever there to run out of, e.g. add-on credits never bought, which
    CreditsExhausted leaves alone too). Such a pool's runway is 0, never a negative time."""
    return remaining is not None and remaining <= 0 and limit != 0


def runway_seconds(
    remaining: float | None, consumed_7d: float | None, limit: float | None = None
) -> float | None:
    """How long ``remaining`` lasts at the average burn of the last 7 days (remaining /
    (consumed_7d / 7 days)); 0 once it :func:`ran_out`, whatever the burn. None without a
    balance, without the pool's consumption history (``consumed_7d`` None), or with credits
    left and no burn."""
    if remaining is None or consumed_7d is None:
        return None
    if ran_out(remaining, limit):
        return 0.0
    if remaining <= 0 or not consumed_7d:
        return None
    return remaining / consumed_7d * WEEK_SECONDS


@dataclass(frozen=True, slots=True)
class PoolFigures:
    """What the account's fresh readings say of one pool, and what follows from its config:
    the values of the pool families. ``None``: absent."""

    pool: str
    remaining: float | None
    used: float | None
    limit: float | None
    threshold: float | None
    #: Window (``1d``, ``7d``, ``30d``) -> credits consumed in it.
    consumption: Mapping[str, float]
    runway_seconds: float | None


def pool_figures(state: AccountState, merged: Reading) -> Iterator[PoolFigures]:
    """Every pool of ``merged`` (the account's :meth:`~exporter.store.AccountState.merged`
    reading), in its order."""
    threshold_for = state.account.threshold_for
    for pool, values in merged.pools.items():
        windows = merged.consumption.get(pool, {})
        yield PoolFigures(
            pool,
            values.remaining,
            values.used,
            values.limit,
            threshold_for(pool),
            windows,
            runway_seconds(values.remaining, windows.get("7d"), values.limit),
        )


def account_samples(state: AccountState, now: float) -> Iterator[Sample]:
    """Every sample of the account at ``now``; within a family, in exposition order. Samples
    that share their labels share the very tuple (the serializer formats it once)."""
    provider, account = state.provider.label, state.name
    merged = state.merged(now)
    labels: tuple[str, ...]
    for p in pool_figures(state, merged):
        labels = (provider, account, p.pool)
        for family, maybe in (
            (REMAINING, p.remaining),
            (USED, p.used),
            (LIMIT, p.limit),
            (THRESHOLD, p.threshold),
            (RUNWAY, p.runway_seconds),
        ):
            if maybe is not None:
                yield family, labels, maybe
        for window, value in p.consumption.items():
            yield CONSUMPTION, (provider, account, p.pool, window), value
    labels = (provider, account)
    for family, maybe in (
        (EXPIRY, merged.expiry_timestamp),
        (CYCLE_START, merged.cycle_start_timestamp),
        (CYCLE_END, merged.cycle_end_timestamp),
        (SEATS, merged.seats),
    ):
        if maybe is not None:
            yield family, labels, maybe
    if state.counters and state.fresh_readings(now):
        for pool, counter in sorted(state.counters.items()):
            yield CONSUMED, (provider, account, pool), counter.total
    for endpoint, ep in state.endpoints.items():
        labels = (provider, account, endpoint)
        if ep.up is not None:
            yield UP, labels, 1.0 if ep.up else 0.0
        if ep.last_success is not None:
            yield LAST_SUCCESS, labels, ep.last_success
        if ep.last_duration is not None:
            yield DURATION, labels, ep.last_duration
        yield POLLS, labels, ep.polls_total
        if ep.errors_total:
            for reason in _REASONS:
                count = ep.errors_total.get(reason)
                if count:
                    yield ERRORS, (provider, account, endpoint, reason.value), count


def exporter_samples(reload_successful: bool, reload_ts: float | None) -> Iterator[Sample]:
    """The exporter's own samples."""
    yield BUILD_INFO, (__version__, platform.python_version()), 1.0
    yield RELOAD_OK, (), 1.0 if reload_successful else 0.0
    if reload_ts is not None:
        yield RELOAD_TS, (), reload_ts
