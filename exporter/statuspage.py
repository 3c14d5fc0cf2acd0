"""The status page (``/``) and its data as JSON (``/api/status``).

Both come from one :class:`Status` snapshot of the store, so the page and the JSON always say
the same thing. The page is server-rendered HTML with inline CSS and inline SVG: no script, no
external asset, so it works offline and with scripting disabled, and it is served with a strict
Content-Security-Policy (no script at all; only this module's own stylesheet, by hash).

What the page may show is deliberately narrow: names, labels and numbers from the config and the
readings, and for a failing endpoint its reason, HTTP status and a short message the exporter
itself wrote (see :func:`public_error`). Never a key, a URL path or query string, or any part of
an upstream response body. Everything that comes from the config is HTML-escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import __version__
from .accounts import format_duration
from .model import PollError, PoolValues, Reason, runway_seconds
from .store import HISTORY_SPAN, AccountState, Store

REFRESH_SECONDS = 30
DEFAULT_UNIT = "credits"
#: Styling hints, matching the shipped alerts (CreditsRunningOut, CreditsExpiringSoon).
RUNWAY_WARN_DAYS = 7.0
EXPIRY_WARN_DAYS = 14.0
USAGE_WARN_RATIO = 0.75
USAGE_CRIT_RATIO = 0.9
MAX_MESSAGE = 120

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
_REASON_HINT = {
    Reason.AUTH: "the key was refused",
    Reason.PAYMENT_REQUIRED: "payment required",
    Reason.RATE_LIMITED: "rate limited",
    Reason.CLIENT_ERROR: "request refused",
    Reason.SERVER_ERROR: "provider error",
    Reason.TIMEOUT: "timed out",
    Reason.CONNECTION: "connection failed",
    Reason.BAD_RESPONSE: "unexpected response",
}
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_URL_TAIL = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/?#]+)[^\s]*", re.IGNORECASE)


# --------------------------------------------------------------------------- the snapshot


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
    runway_days: float | None
    history: tuple[tuple[float, float], ...]


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
    pools: tuple[PoolStatus, ...]
    notes: Mapping[str, str] = field(default_factory=dict)
    """Pool (or topic) -> why the readings leave a value out or ignored part of an answer."""

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self.severity]


@dataclass(frozen=True, slots=True)
class Status:
    generated_at: float
    version: str
    reload_successful: bool
    reload_success_timestamp: float | None
    accounts: tuple[AccountStatus, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(SEVERITY_RANK, 0)
        for a in self.accounts:
            out[a.severity] += 1
        return out


def public_error(error: PollError, secret: str | None = None) -> ErrorInfo:
    """What the page and ``/api/status`` may say about a failed poll.

    For an HTTP error status: the reason and ``HTTP <status>`` only (the provider's own message
    comes from its response body; the log has it). Otherwise the exporter's own message, with
    anything quoted (fragments of the response) elided, URLs cut to scheme and host, the key
    removed, and the length capped.
    """
    if error.status is not None and error.status >= 400 and error.reason in _HTTP_REASONS:
        message = f"HTTP {error.status}"
    else:
        message = sanitize_message(error.message, secret)
    return ErrorInfo(reason=error.reason.value, status=error.status, message=message)


def sanitize_message(text: str, secret: str | None = None) -> str:
    s = " ".join(text.split())
    if secret:
        s = s.replace(secret, "[REDACTED]")
    s = _QUOTED.sub('"\u2026"', s)
    s = _URL_TAIL.sub(r"\1", s)
    if len(s) > MAX_MESSAGE:
        s = s[: MAX_MESSAGE - 1].rstrip() + "\u2026"
    return s


def runway_days(remaining: float | None, consumed_7d: float | None) -> float | None:
    """``credits_runway_seconds`` in days; absent with no burn."""
    seconds = runway_seconds(remaining, consumed_7d)
    return None if seconds is None else seconds / 86400


def _pool_status(
    state: AccountState,
    pool: str,
    values: PoolValues,
    consumption: Mapping[str, Mapping[str, float]],
    now: float,
) -> PoolStatus:
    units = state.provider.units()
    threshold = state.account.threshold_for(pool)
    remaining, used, limit = values.remaining, values.used, values.limit
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
    week = consumption.get(pool, {}).get("7d")
    points = state.history.get(pool, ())
    history = tuple((t, v) for t, v in list(points) if now - t <= HISTORY_SPAN)
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
        runway_days=runway_days(remaining, week),
        history=history,
    )


def account_status(state: AccountState, now: float) -> AccountStatus:
    merged = state.merged(now)
    endpoints = state.endpoints.values()
    last_success = max((ep.last_success for ep in endpoints if ep.last_success), default=None)
    last_attempt = max((ep.last_attempt for ep in endpoints if ep.last_attempt), default=None)
    secret = state.account.secret
    errors = {
        name: public_error(ep.last_error, secret)
        for name, ep in state.endpoints.items()
        if ep.last_error is not None and ep.up is False
    }
    stale = last_success is not None and now - last_success > state.account.effective_max_staleness
    if errors:
        status = "failing"
    elif stale:
        status = "stale"
    elif all(ep.polls_total == 0 for ep in endpoints):
        status = "never_polled"
    else:
        status = "ok"
    pools = tuple(
        _pool_status(state, pool, values, merged.consumption, now)
        for pool, values in merged.pools.items()
    )
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
        max_staleness_seconds=state.account.effective_max_staleness,
        pools=pools,
        notes=dict(merged.notes),
    )


def sort_accounts(accounts: Iterable[AccountStatus]) -> list[AccountStatus]:
    """Problems first (failing, stale, never polled, low, ok); config order within a rank."""
    return sorted(accounts, key=lambda a: a.rank)


def snapshot(store: Store, now: float | None = None) -> Status:
    now = store.clock() if now is None else now
    accounts = [account_status(s, now) for s in list(store.accounts.values())]
    return Status(
        generated_at=now,
        version=__version__,
        reload_successful=store.reload_successful,
        reload_success_timestamp=store.reload_success_timestamp,
        accounts=tuple(sort_accounts(accounts)),
    )


# --------------------------------------------------------------------------- JSON


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def status_json(status: Status) -> dict[str, Any]:
    """``/api/status``. Keys ``version``, ``config_reload_successful`` and
    ``accounts[].{account, provider, state, last_success, errors, pools}`` are stable; accounts
    come in the page's order (problems first)."""
    return {
        "version": status.version,
        "generated_at": status.generated_at,
        "refresh_seconds": REFRESH_SECONDS,
        "config_reload_successful": status.reload_successful,
        "config_last_reload_success_timestamp": status.reload_success_timestamp,
        "history_span_seconds": HISTORY_SPAN,
        "severity_rank": SEVERITY_RANK,
        "counts": status.counts(),
        "accounts": [
            {
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
                        "runway_days": _num(p.runway_days),
                        "history": [[round(t), v] for t, v in p.history],
                    }
                    for p in a.pools
                },
            }
            for a in status.accounts
        ],
    }


# --------------------------------------------------------------------------- formatting


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def format_number(value: float | None) -> str:
    """Thousands separators, at most two decimals, no trailing zeros; an en dash for absent."""
    if value is None or not math.isfinite(value):
        return "\u2013"
    if abs(value - round(value)) < 0.005:
        text = f"{round(value):,}"
    else:
        text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_days(days: float | None) -> str:
    """A duration given in days, in the unit that reads best (``27 days``, ``3.4 days``,
    ``5 h``); negative means in the past."""
    if days is None or not math.isfinite(days):
        return "\u2013"
    d = abs(days)
    if d < 1:
        hours = d * 24
        text = "< 1 h" if hours < 1 else f"{hours:.0f} h"
    elif d < 10:
        text = f"{d:.1f} days"
    else:
        text = f"{d:,.0f} days"
    return f"{text} ago" if days < 0 else text


def format_age(seconds: float | None) -> str:
    """How long ago: ``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 days ago``."""
    if seconds is None or not math.isfinite(seconds):
        return "never"
    s = max(0.0, seconds)
    if s < 60:
        return f"{s:.0f} s ago"
    if s < 3600:
        return f"{s // 60:.0f} min ago"
    if s < 86400:
        return f"{s / 3600:.1f} h ago".replace(".0 h", " h")
    days = f"{s / 86400:.1f}".removesuffix(".0")
    return f"{days} {'day' if days == '1' else 'days'} ago"


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _time(ts: float | None, text: str) -> str:
    if ts is None:
        return esc(text)
    return f'<time datetime="{iso_utc(ts)}" title="{human_utc(ts)}">{esc(text)}</time>'


# --------------------------------------------------------------------------- SVG pieces

SPARK_W, SPARK_H, SPARK_PAD = 120, 28, 2.5
BAR_W, BAR_H = 120, 8
SPARK_MAX_POINTS = 60
SPARK_MIN_SPAN = 60.0  # seconds of history before a line means anything


def sparkline_svg(
    points: Sequence[tuple[float, float]], now: float, label: str, css_class: str = ""
) -> str:
    """Remaining over (up to) the last 24 h as an inline SVG line with a shaded area.

    The x axis runs from the first point to the last; the y axis from the lowest to the highest
    value (a flat series is drawn mid-height). Until the points span a minute: a short text.
    """
    pts = [(t, v) for t, v in points if now - t <= HISTORY_SPAN and math.isfinite(v)]
    if len(pts) < 2 or pts[-1][0] - pts[0][0] < SPARK_MIN_SPAN:
        return '<span class="muted small">collecting\u2026</span>'
    if len(pts) > SPARK_MAX_POINTS:  # about one point per 2 px is all the eye can see
        step = (len(pts) - 1) / (SPARK_MAX_POINTS - 1)
        pts = [pts[round(i * step)] for i in range(SPARK_MAX_POINTS)]
    t0, t1 = pts[0][0], pts[-1][0]
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    w, h, pad = SPARK_W, SPARK_H, SPARK_PAD
    span_t = (t1 - t0) or 1.0

    def xy(t: float, v: float) -> tuple[float, float]:
        x = pad + (t - t0) / span_t * (w - 2 * pad)
        y = h / 2 if hi == lo else pad + (hi - v) / (hi - lo) * (h - 2 * pad)
        return round(x, 1), round(y, 1)

    coords = [xy(t, v) for t, v in pts]
    line = "M" + " L".join(f"{x:g},{y:g}" for x, y in coords)
    area = f"{line} L{coords[-1][0]:g},{h} L{coords[0][0]:g},{h} Z"
    lx, ly = coords[-1]
    cls = f"spark {css_class}".strip()
    return (
        f'<svg class="{esc(cls)}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        f'aria-label="{esc(label)}"><title>{esc(label)}</title>'
        f'<path class="spark-area" d="{area}"/><path class="spark-line" d="{line}"/>'
        f'<circle class="spark-dot" cx="{lx:g}" cy="{ly:g}" r="2.2"/></svg>'
    )


def usage_bar_svg(ratio: float, label: str) -> str:
    """A used/limit bar; the fill turns amber at 75 % and red at 90 % used."""
    r = min(max(ratio, 0.0), 1.0)
    level = "crit" if ratio >= USAGE_CRIT_RATIO else "warn" if ratio >= USAGE_WARN_RATIO else "ok"
    fill = round(r * BAR_W, 1)
    return (
        f'<svg class="bar" width="{BAR_W}" height="{BAR_H}" viewBox="0 0 {BAR_W} {BAR_H}" '
        f'role="img" aria-label="{esc(label)}"><title>{esc(label)}</title>'
        f'<rect class="bar-track" width="{BAR_W}" height="{BAR_H}" rx="4"/>'
        f'<rect class="bar-fill {level}" width="{fill:g}" height="{BAR_H}" rx="4"/></svg>'
    )


# --------------------------------------------------------------------------- HTML


def _badge(account: AccountStatus) -> str:
    sev = account.severity
    text = SEVERITY_TEXT[sev]
    if sev == "failing":
        reasons = sorted({e.reason for e in account.errors.values()})
        text = f"Failing: {', '.join(reasons)}"
    return f'<span class="badge {sev}">{esc(text)}</span>'


def _state_detail(a: AccountStatus, now: float) -> str:
    parts: list[str] = []
    if a.state == "failing":
        # One line per distinct message, naming the endpoints that share it.
        by_message: dict[str, list[str]] = {}
        for ep, e in a.errors.items():
            msg = e.message
            if e.status is not None and msg == f"HTTP {e.status}":
                msg = f"{msg}, {_REASON_HINT[Reason(e.reason)]}"
            by_message.setdefault(msg, []).append(ep)
        for msg, eps in by_message.items():
            parts.append(f'<span class="detail">{esc(", ".join(eps))}: {esc(msg)}</span>')
    elif a.state == "stale":
        since = format_age(now - a.last_success if a.last_success else None)
        parts.append(f'<span class="detail">last success {esc(since)}</span>')
    elif a.state == "never_polled":
        parts.append('<span class="detail">waiting for the first poll</span>')
    elif a.severity == "low":
        low = ", ".join(p.pool for p in a.pools if p.low)
        parts.append(f'<span class="detail">below threshold: {esc(low)}</span>')
    for about, note in sorted(a.notes.items()):
        parts.append(f'<span class="detail note">{esc(about)}: {esc(note)}</span>')
    return "".join(parts)


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    chips = "".join(
        f'<span class="label">{esc(k)}={esc(v)}</span>' for k, v in sorted(labels.items())
    )
    return f'<span class="labels">{chips}</span>'


def _days_cell(
    name: str, days: float | None, ts: float | None, warn: float | None, attrs: str
) -> str:
    cls = f"num {name}"
    if days is not None and warn is not None and days < warn:
        cls += " warn-text"
    return f'<td class="{cls}"{attrs}>{_time(ts, format_days(days))}</td>'


def _pool_cells(a: AccountStatus, p: PoolStatus, now: float) -> str:
    unit = f' <span class="unit">{esc(p.unit)}</span>'
    rem_cls = "num remaining" + (" low" if p.low else "")
    value_cls = "value" if p.remaining is not None else "value absent"
    remaining = f'<span class="{value_cls}">{format_number(p.remaining)}</span>'
    if p.remaining is not None:
        remaining += unit
    if p.low and p.threshold is not None:
        remaining += f'<span class="sub">below {format_number(p.threshold)}</span>'
    elif p.remaining is None:
        remaining += '<span class="sub">not reported</span>'

    if p.used_ratio is not None and p.limit is not None:
        used = p.used if p.used is not None else p.limit - (p.remaining or 0.0)
        pct = p.used_ratio * 100
        label = (
            f"{a.account} {p.pool}: {format_number(used)} of {format_number(p.limit)} "
            f"{p.unit} used ({pct:.0f}%)"
        )
        usage = (
            f'{usage_bar_svg(p.used_ratio, label)}<span class="sub">'
            f"{format_number(used)} / {format_number(p.limit)} &middot; {pct:.0f}%</span>"
        )
    elif p.limit is not None:
        usage = f'<span class="sub">limit {format_number(p.limit)}</span>'
    elif p.used is not None:
        usage = f'<span class="sub">{format_number(p.used)} used</span>'
    else:
        usage = '<span class="muted">\u2013</span>'

    if p.history:
        first, last = p.history[0][1], p.history[-1][1]
        since = format_age(now - p.history[0][0]).removesuffix(" ago")
        lowest = format_number(min(v for _, v in p.history))
        spark_label = (
            f"{a.account} {p.pool} remaining over the last {since}: from {format_number(first)} "
            f"to {format_number(last)} {p.unit} (lowest {lowest})"
        )
    else:
        spark_label = ""
    spark = sparkline_svg(p.history, now, spark_label, "low" if p.low else "")

    runway_cls = "num runway"
    if p.runway_days is not None and p.runway_days < RUNWAY_WARN_DAYS:
        runway_cls += " warn-text"
    runway = format_days(p.runway_days)
    runway_title = (
        f' title="at {format_number(p.consumption_7d / 7)} {esc(p.unit)}/day (7-day average)"'
        if p.consumption_7d
        else ' title="no consumption history"'
    )
    return (
        f'<td class="pool">{esc(p.pool)}</td>'
        f'<td class="{rem_cls}">{remaining}</td>'
        f'<td class="usage">{usage}</td>'
        f'<td class="trend">{spark}</td>'
        f'<td class="{runway_cls}"{runway_title}>{runway}</td>'
    )


def _account_rows(a: AccountStatus, now: float) -> str:
    span = max(1, len(a.pools))
    rs = f' rowspan="{span}"' if span > 1 else ""
    age = format_age(now - a.last_success if a.last_success is not None else None)
    success_cls = "num last-success" + (" warn-text" if a.state in ("stale", "failing") else "")
    head = (
        f'<td class="state"{rs}>{_badge(a)}{_state_detail(a, now)}</td>'
        f'<th scope="rowgroup" class="account"{rs}><span class="name">{esc(a.account)}</span>'
        f"{_labels(a.labels)}</th>"
        f'<td class="provider"{rs}>{esc(a.provider)}</td>'
    )
    tail = (
        _days_cell("expiry", a.days_until_expiry, a.expiry_timestamp, EXPIRY_WARN_DAYS, rs)
        + _days_cell("cycle-end", a.days_until_cycle_end, a.cycle_end_timestamp, None, rs)
        + f'<td class="{success_cls}"{rs}>{_time(a.last_success, age)}</td>'
    )
    attrs = f'data-account="{esc(a.account)}" data-state="{a.state}" data-severity="{a.severity}"'
    if not a.pools:
        if a.state == "never_polled":
            why = "no data yet"
        elif a.stale:
            limit = format_duration(a.max_staleness_seconds)
            why = f"values dropped: older than max_staleness ({limit})"
        elif a.last_success is None:
            why = "no data: never polled successfully"
        else:
            why = "no values reported"
        return (
            f'<tbody class="acct {a.severity}" {attrs}><tr data-pool="">{head}'
            f'<td class="pool muted">\u2013</td><td class="empty" colspan="4">{esc(why)}</td>'
            f"{tail}</tr></tbody>"
        )
    rows = []
    for i, p in enumerate(a.pools):
        cells = _pool_cells(a, p, now)
        value = "" if p.remaining is None else repr(p.remaining)
        pattrs = f'data-pool="{esc(p.pool)}" data-remaining="{value}"'
        if i == 0:
            rows.append(f"<tr {pattrs}>{head}{cells}{tail}</tr>")
        else:
            rows.append(f"<tr {pattrs}>{cells}</tr>")
    return f'<tbody class="acct {a.severity}" {attrs}>{"".join(rows)}</tbody>'


def _summary(status: Status) -> str:
    counts = status.counts()
    chips = []
    for sev in SEVERITY_RANK:
        n = counts[sev]
        if n or sev == "ok":
            chips.append(
                f'<li class="chip {sev}"><span class="dot" aria-hidden="true"></span>'
                f"<strong>{n}</strong> {esc(SEVERITY_TEXT[sev].lower())}</li>"
            )
    pools = sum(len(a.pools) for a in status.accounts)
    n = len(status.accounts)
    totals = f"{n} account{'s' if n != 1 else ''} &middot; {pools} pool{'s' if pools != 1 else ''}"
    return (
        f'<section class="summary" aria-label="Summary"><p class="totals">{totals}</p>'
        f'<ul class="chips">{"".join(chips)}</ul></section>'
    )


def _reload_state(status: Status) -> str:
    now = status.generated_at
    ts = status.reload_success_timestamp
    when = f" {_time(ts, format_age(now - ts))}" if ts is not None else ""
    if status.reload_successful:
        return f'<span class="cfg ok">Config loaded{when}</span>'
    return f'<span class="cfg failed">Config reload failed; running the config loaded{when}</span>'


def _title(status: Status) -> str:
    counts = status.counts()
    problems = [
        f"{counts[s]} {SEVERITY_TEXT[s].lower()}"
        for s in ("failing", "stale", "never_polled", "low")
        if counts[s]
    ]
    return ("\u26a0 " + ", ".join(problems) + " \u00b7 " if problems else "") + "Credits"


FAVICON = (
    "data:image/svg+xml,"
    "%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Ccircle cx='8' cy='8' r='7' fill='%232563eb'/%3E"
    "%3Cpath d='M4 10.5 L7 7.5 L9 9 L12 5.5' stroke='white' stroke-width='1.6' fill='none'/%3E"
    "%3C/svg%3E"
)

LOGO = (
    '<svg class="logo" width="28" height="28" viewBox="0 0 16 16" aria-hidden="true">'
    '<circle cx="8" cy="8" r="7.5" class="logo-bg"/>'
    '<path d="M3.8 10.6 L6.8 7.4 L9 9.2 L12.2 5.4" class="logo-line"/></svg>'
)

CSS = """
:root{color-scheme:light dark;--bg:#f5f7fa;--card:#ffffff;--fg:#1f2933;--muted:#5f6b7a;
--line:#e3e8ee;--head:#f8fafc;--accent:#2563eb;--accent-soft:rgba(37,99,235,.14);
--ok:#127a3e;--ok-bg:#e3f5e9;--warn:#9a5b00;--warn-bg:#fff1d6;--warn-fill:#e59500;
--crit:#b42318;--crit-bg:#fde7e6;--crit-fill:#d92d20;--idle:#475467;--idle-bg:#eaecf0;
--track:#e8edf3;--row-hover:#f9fbfd}
@media (prefers-color-scheme:dark){:root{--bg:#0f1419;--card:#171d25;--fg:#e6e9ee;
--muted:#9aa5b4;--line:#2a323d;--head:#1b222b;--accent:#6ea8ff;--accent-soft:rgba(110,168,255,.18);
--ok:#5fd08a;--ok-bg:#123322;--warn:#f5b94f;--warn-bg:#3a2a0c;--warn-fill:#e5a52a;
--crit:#ff8a80;--crit-bg:#3d1714;--crit-fill:#f0645a;--idle:#c2c9d4;--idle-bg:#2a313b;
--track:#27303b;--row-hover:#1c242e}}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;padding:24px clamp(12px,3vw,40px) 32px;color:var(--fg);background:var(--bg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:var(--accent)}
a:focus-visible{outline:2px solid var(--accent);outline-offset:2px;border-radius:3px}
header.top{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:12px;
margin:0 auto 16px;max-width:1480px}
.brand{display:flex;align-items:center;gap:10px}
.logo-bg{fill:var(--accent)}
.logo-line{fill:none;stroke:#fff;stroke-width:1.6;stroke-linecap:round;stroke-linejoin:round}
h1{font-size:20px;margin:0;font-weight:650;letter-spacing:-.01em}
.version{color:var(--muted);font-size:12px;border:1px solid var(--line);border-radius:999px;
padding:1px 8px}
nav{display:flex;gap:6px}
nav a{text-decoration:none;font-weight:550;padding:6px 12px;border-radius:8px;
border:1px solid var(--line);background:var(--card)}
nav a:hover{background:var(--accent-soft)}
main{max-width:1480px;margin:0 auto}
.banner{border-radius:10px;padding:10px 14px;margin:0 0 14px;background:var(--crit-bg);
color:var(--crit);border:1px solid var(--crit);font-weight:550}
.summary{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:10px;
margin:0 0 12px}
.totals{margin:0;color:var(--muted)}
.chips{display:flex;flex-wrap:wrap;gap:8px;list-style:none;margin:0;padding:0}
.chip{display:flex;align-items:center;gap:6px;padding:4px 10px;border-radius:999px;
background:var(--card);border:1px solid var(--line);font-size:13px}
.dot{width:8px;height:8px;border-radius:50%;background:var(--idle)}
.chip.ok .dot{background:var(--ok)}.chip.low .dot{background:var(--warn-fill)}
.chip.failing .dot{background:var(--crit-fill)}.chip.stale .dot{background:var(--warn-fill)}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;overflow-x:auto;
box-shadow:0 1px 2px rgba(16,24,40,.05)}
table{border-collapse:collapse;width:100%;min-width:1080px}
caption{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
thead th{position:sticky;top:0;background:var(--head);color:var(--muted);font-size:12px;
font-weight:600;text-transform:uppercase;letter-spacing:.04em;text-align:left;padding:10px 12px;
border-bottom:1px solid var(--line);white-space:nowrap}
td,tbody th{padding:10px 12px;vertical-align:middle;text-align:left;font-weight:400}
tbody.acct{border-top:1px solid var(--line)}
tbody.acct:first-of-type{border-top:0}
tbody.acct:hover{background:var(--row-hover)}
tbody.acct.failing{box-shadow:inset 3px 0 0 var(--crit-fill)}
tbody.acct.stale,tbody.acct.low{box-shadow:inset 3px 0 0 var(--warn-fill)}
tbody.acct.never_polled{box-shadow:inset 3px 0 0 var(--idle)}
th.num,td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
.account .name{font-weight:650;display:block}
.labels{display:flex;flex-wrap:wrap;gap:4px;margin-top:3px}
.label{font-size:11px;color:var(--muted);background:var(--idle-bg);border-radius:4px;
padding:0 5px;white-space:nowrap}
.provider{color:var(--muted)}
.pool{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
.remaining .value{font-size:15px;font-weight:650}
.remaining.low .value{color:var(--warn)}
.remaining .value.absent{color:var(--muted);font-weight:400}
.unit{color:var(--muted);font-size:12px}
.sub{display:block;color:var(--muted);font-size:12px;white-space:nowrap}
.remaining.low .sub{color:var(--warn)}
.usage .sub{margin-top:3px}
.muted{color:var(--muted)}
.small{font-size:12px}
.empty{color:var(--muted);font-style:italic}
.warn-text{color:var(--warn)}
.badge{display:inline-block;padding:2px 9px;border-radius:999px;font-size:12px;font-weight:650;
white-space:nowrap;border:1px solid transparent}
.badge.ok{color:var(--ok);background:var(--ok-bg)}
.badge.low,.badge.stale{color:var(--warn);background:var(--warn-bg)}
.badge.failing{color:var(--crit);background:var(--crit-bg)}
.badge.never_polled{color:var(--idle);background:var(--idle-bg)}
.detail{display:block;margin-top:4px;color:var(--muted);font-size:12px;max-width:240px}
.acct.failing .detail{color:var(--crit)}
.acct .detail.note{color:var(--muted);font-style:italic}
.bar{display:block}
.bar-track{fill:var(--track)}
.bar-fill.ok{fill:var(--accent)}.bar-fill.warn{fill:var(--warn-fill)}
.bar-fill.crit{fill:var(--crit-fill)}
.spark{display:block;overflow:visible}
.spark-line{fill:none;stroke:var(--accent);stroke-width:1.6;stroke-linejoin:round;
stroke-linecap:round}
.spark-area{fill:var(--accent-soft);stroke:none}
.spark-dot{fill:var(--accent)}
.spark.low .spark-line{stroke:var(--warn-fill)}.spark.low .spark-dot{fill:var(--warn-fill)}
.spark.low .spark-area{fill:var(--warn-bg)}
.cfg.ok{color:var(--muted)}.cfg.failed{color:var(--crit);font-weight:600}
footer{max-width:1480px;margin:14px auto 0;color:var(--muted);font-size:12px;display:flex;
flex-wrap:wrap;gap:6px 16px;justify-content:space-between}
@media print{nav{display:none}body{background:#fff}}
""".strip()

_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()

#: Only this page's own stylesheet; no script, no connection, no frame, no form.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def render_html(status: Status) -> str:
    now = status.generated_at
    body = "".join(_account_rows(a, now) for a in status.accounts)
    if not status.accounts:
        body = '<tbody><tr><td colspan="11" class="empty">No accounts configured.</td></tr></tbody>'
    banner = (
        ""
        if status.reload_successful
        else '<p class="banner" role="alert">The last config reload failed: the exporter keeps '
        "running the previous config. See the log for the errors.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>{esc(_title(status))}</title>
<link rel="icon" href="{FAVICON}">
<style>{CSS}</style></head>
<body>
<header class="top"><div class="brand">{LOGO}<h1>Credits</h1>
<span class="version">credits-exporter {esc(status.version)}</span></div>
<nav aria-label="Other endpoints"><a href="/metrics">Metrics</a>
<a href="/api/status">JSON</a></nav></header>
<main>{banner}{_summary(status)}
<div class="card"><table>
<caption>Credit balances by account and pool, problems first</caption>
<thead><tr><th scope="col">State</th><th scope="col">Account</th><th scope="col">Provider</th>
<th scope="col">Pool</th><th scope="col" class="num">Remaining</th>
<th scope="col">Used of limit</th>
<th scope="col">Last 24 h</th><th scope="col" class="num">Runway</th>
<th scope="col" class="num">Expires in</th><th scope="col" class="num">Cycle ends in</th>
<th scope="col" class="num">Last success</th></tr></thead>
{body}</table></div></main>
<footer><span>{_reload_state(status)} &middot; updated {_time(now, human_utc(now))} &middot;
refreshes every {REFRESH_SECONDS} s</span>
<span>Values are polled on each account's interval and cached; this page never calls a
provider. Runway is remaining at the 7-day average burn.</span></footer>
</body></html>
"""


def render_page(store: Store) -> bytes:
    """The page for the store as it is now (runs in a worker thread, like the exposition)."""
    return render_html(snapshot(store)).encode()


def render_json(store: Store) -> bytes:
    """``/api/status`` for the store as it is now (runs in a worker thread)."""
    return json.dumps(status_json(snapshot(store)), separators=(",", ":")).encode()
