"""What the status page (``/``) and ``/api/status`` say about one account: an immutable
:class:`AccountStatus` taken from the store on the event loop, and its JSON form.

Readers never see the live store: :class:`~exporter.statuscache.StatusCache` takes these
snapshots on the loop (the store's records, e.g. a pool's history, change there) and renders
the page and the JSON from them (:mod:`exporter.statushtml`).

What they may show is deliberately narrow: names, labels and numbers from the config and the
readings, and for a failing endpoint its reason, HTTP status and a short message the exporter
itself wrote (see :func:`public_error`). Never a key, a URL path or query string, or any part of
an upstream response body.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .catalogue import PoolFigures, pool_figures, ran_out
from .model import PollError, Reason
from .redaction import public
from .store import HISTORY_SPAN, AccountState, Points

DEFAULT_UNIT = "credits"
MAX_MESSAGE = 120
#: The history must span this long before the fall of the balance gives a runway.
HISTORY_RUNWAY_MIN_SPAN = 3600.0

#: Problems first: the page and ``/api/status`` list accounts by this rank, then config order.
SEVERITY_RANK: dict[str, int] = {"failing": 0, "stale": 1, "never_polled": 2, "low": 3, "ok": 4}
SEVERITY_TEXT = {
    "failing": "Failing",
    "stale": "Stale",
    "never_polled": "Never polled",
    "low": "Low",
    "ok": "OK",
}

# Reasons whose HTTP status says it all; the provider's own message (part of its response body)
# is left out of the page and stays in the log.
_HTTP_REASONS = {
    Reason.AUTH,
    Reason.PAYMENT_REQUIRED,
    Reason.RATE_LIMITED,
    Reason.CLIENT_ERROR,
    Reason.SERVER_ERROR,
}


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A failing endpoint, as the page may show it."""

    reason: str
    status: int | None
    message: str


@dataclass(frozen=True, slots=True)
class PoolStatus:
    pool: str
    unit: str
    remaining: float | None
    used: float | None
    limit: float | None
    threshold: float | None
    low: bool
    used_ratio: float | None
    consumption_7d: float | None
    #: Credits a day the runway is computed at, and where that rate comes from:
    #: ``consumption`` (the provider's 7-day history) or ``balance_history`` (the fall of the
    #: balance in :attr:`history`, top-ups ignored); None without either.
    burn_per_day: float | None
    runway_source: str | None
    #: 0 once the pool ran out (:func:`~exporter.catalogue.ran_out`): shown as exhausted.
    runway_days: float | None
    history: Points


@dataclass(frozen=True, slots=True)
class AccountStatus:
    account: str
    provider: str
    labels: Mapping[str, str]
    state: str  # ok, failing, stale, never_polled
    severity: str  # state, or "low" for an ok account with a pool below its threshold
    stale: bool  # no success for max_staleness: values dropped (also while failing)
    last_success: float | None
    last_attempt: float | None
    errors: Mapping[str, ErrorInfo]
    expiry_timestamp: float | None
    days_until_expiry: float | None
    cycle_start_timestamp: float | None
    cycle_end_timestamp: float | None
    days_until_cycle_end: float | None
    seats: float | None
    interval_seconds: float
    max_staleness_seconds: float
    #: When a reading of this account passes max_staleness next (its values then drop).
    stale_at: float | None
    pools: tuple[PoolStatus, ...]
    notes: Mapping[str, str] = field(default_factory=dict)
    """Pool (or topic) -> why the readings leave a value out or ignored part of an answer."""

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.severity]


def public_error(error: PollError, *secrets: str) -> ErrorInfo:
    """What the page and ``/api/status`` may say about a failed poll.

    For an HTTP error status, or an error the provider reported in its answer (e.g. an
    ``"error"`` beside a 200): the reason and ``HTTP <status>`` only (the provider's own message
    comes from its response body; the log has it). Otherwise the exporter's own message, with
    anything quoted (fragments of the response) elided, URLs cut to scheme and host, every
    form of the key (``secrets``) removed, and the length capped.
    """
    http_error = error.status is not None and error.status >= 400 and error.reason in _HTTP_REASONS
    if error.status is not None and (http_error or error.provider_text):
        message = f"HTTP {error.status}"
    else:
        message = public(error.message, secrets, MAX_MESSAGE)
    return ErrorInfo(reason=error.reason.value, status=error.status, message=message)


def burn_from_history(points: Sequence[tuple[float, float]]) -> float | None:
    """Credits a day from the fall of the balance over ``points`` (time, remaining), the way
    the daily-decrease recording rule (prometheus/rules.yaml) counts it: each step between
    two points counts ``max(0, before - after)``, so a rise (top-up, cycle reset, refund)
    counts 0 instead of cancelling earlier falls. None until the points span
    :data:`HISTORY_RUNWAY_MIN_SPAN` or when the balance never fell (a flat line has no runway,
    not an infinite one)."""
    if len(points) < 2:
        return None
    span = points[-1][0] - points[0][0]
    if span < HISTORY_RUNWAY_MIN_SPAN:
        return None
    fall = 0.0
    before = points[0][1]
    for _, value in points[1:]:
        if value < before:
            fall += before - value
        before = value
    return fall / span * 86400 if fall > 0 else None


def _pool_status(state: AccountState, figures: PoolFigures, now: float) -> PoolStatus:
    """The pool as the page shows it: the figures /metrics publishes (the same runway), and
    what the page adds (low, the share used, the runway from the balance history)."""
    pool = figures.pool
    units = state.provider.units()
    threshold = figures.threshold
    remaining, used, limit = figures.remaining, figures.used, figures.limit
    # The CreditsLow alert: remaining < threshold, unless the limit is a known 0.
    low = (
        threshold is not None
        and remaining is not None
        and remaining < threshold
        and not (limit is not None and limit == 0)
    )
    used_ratio = None
    if limit is not None and limit > 0:
        spent = used if used is not None else (limit - remaining if remaining is not None else None)
        if spent is not None:
            used_ratio = max(0.0, spent / limit)
    week = figures.consumption.get("7d")
    kept = state.history.get(pool)
    # The store's own points (never changed once made): shared, not copied.
    history = kept.points.since(now - HISTORY_SPAN) if kept is not None else Points()
    if week:
        burn: float | None = week / 7
        source: str | None = "consumption"
        seconds = figures.runway_seconds  # the runway /metrics publishes, shown in days
        runway = None if seconds is None else seconds / 86400
    else:
        burn = burn_from_history(history)
        source = "balance_history" if burn is not None else None
        if ran_out(remaining, limit):
            runway = 0.0  # nothing left: exhausted, never a time in the past
        elif burn and remaining is not None and remaining > 0:
            runway = remaining / burn
        else:
            runway = None
    return PoolStatus(
        pool=pool,
        unit=units.get(pool, DEFAULT_UNIT),
        remaining=remaining,
        used=used,
        limit=limit,
        threshold=float(threshold) if threshold is not None else None,
        low=low,
        used_ratio=used_ratio,
        consumption_7d=week,
        burn_per_day=burn,
        runway_source=source,
        runway_days=runway,
        history=history,
    )


def account_status(state: AccountState, now: float) -> AccountStatus:
    """The account as it is at ``now``: call it on the event loop (it reads the live store)."""
    merged = state.merged(now)
    endpoints = state.endpoints.values()
    last_success = max((ep.last_success for ep in endpoints if ep.last_success), default=None)
    last_attempt = max((ep.last_attempt for ep in endpoints if ep.last_attempt), default=None)
    failed = {
        name: ep.last_error
        for name, ep in state.endpoints.items()
        if ep.last_error is not None and ep.up is False
    }
    errors: dict[str, ErrorInfo] = {}
    if failed:
        secrets = state.provider.credential(state.account).forms
        errors = {name: public_error(error, *secrets) for name, error in failed.items()}
    staleness = state.account.effective_max_staleness
    stale = last_success is not None and now - last_success > staleness
    if errors:
        status = "failing"
    elif stale:
        status = "stale"
    elif all(ep.polls_total == 0 for ep in endpoints):
        status = "never_polled"
    else:
        status = "ok"
    pools = tuple(_pool_status(state, figures, now) for figures in pool_figures(state, merged))
    severity = "low" if status == "ok" and any(p.low for p in pools) else status

    def days(ts: float | None) -> float | None:
        return None if ts is None else (ts - now) / 86400

    return AccountStatus(
        account=state.name,
        provider=state.provider.label,
        labels=dict(state.account.labels),
        state=status,
        severity=severity,
        stale=stale,
        last_success=last_success,
        last_attempt=last_attempt,
        errors=errors,
        expiry_timestamp=merged.expiry_timestamp,
        days_until_expiry=days(merged.expiry_timestamp),
        cycle_start_timestamp=merged.cycle_start_timestamp,
        cycle_end_timestamp=merged.cycle_end_timestamp,
        days_until_cycle_end=days(merged.cycle_end_timestamp),
        seats=merged.seats,
        interval_seconds=state.account.effective_interval,
        max_staleness_seconds=staleness,
        stale_at=state.stale_at(now),
        pools=pools,
        notes=dict(merged.notes),
    )


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def account_json(a: AccountStatus) -> dict[str, Any]:
    """One entry of ``/api/status``'s ``accounts``, without the pools' ``history``
    (:func:`add_history`)."""
    return {
        "account": a.account,
        "provider": a.provider,
        "labels": dict(a.labels),
        "state": a.state,
        "severity": a.severity,
        "rank": a.rank,
        "stale": a.stale,
        "last_success": a.last_success,
        "last_attempt": a.last_attempt,
        "errors": {
            ep: {"reason": e.reason, "status": e.status, "message": e.message}
            for ep, e in a.errors.items()
        },
        "expiry_timestamp": a.expiry_timestamp,
        "days_until_expiry": _num(a.days_until_expiry),
        "cycle_start_timestamp": a.cycle_start_timestamp,
        "cycle_end_timestamp": a.cycle_end_timestamp,
        "days_until_cycle_end": _num(a.days_until_cycle_end),
        "seats": a.seats,
        "interval_seconds": a.interval_seconds,
        "max_staleness_seconds": a.max_staleness_seconds,
        "notes": dict(a.notes),
        "pools": {
            p.pool: {
                "remaining": p.remaining,
                "used": p.used,
                "limit": p.limit,
                "unit": p.unit,
                "low_threshold": p.threshold,
                "low": p.low,
                "used_ratio": _num(p.used_ratio),
                "consumption_7d": p.consumption_7d,
                "burn_per_day": _num(p.burn_per_day),
                "runway_days": _num(p.runway_days),
                "runway_source": p.runway_source,
            }
            for p in a.pools
        },
    }


def add_history(entry: dict[str, Any], histories: Sequence[Points]) -> dict[str, Any]:
    """An entry of :func:`account_json` (as parsed back) with each pool's ``history``:
    ``histories`` in the order of its pools (``/api/status?history=1``)."""
    for pool, points in zip(entry["pools"].values(), histories, strict=True):
        pool["history"] = points.as_json()
    return entry
