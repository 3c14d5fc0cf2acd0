"""The status page's HTML: Jinja2 templates kept as package data (``exporter/templates``),
autoescaped, and the numbers, times and SVG geometry they show.

An account's rows are rendered once per change of the account and kept as a fragment; a page is
its shell around a slice of those fragments (:mod:`exporter.statuscache`). Texts that change
with time alone (ages, countdowns) are left in a fragment as marks holding their timestamp, and
written when a page is put together (:func:`fill_times`), so that time alone never makes an
account render again, except where its state changes (:func:`valid_until`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup, escape

from .accounts import format_duration
from .model import Reason
from .statuspage import SEVERITY_TEXT, AccountStatus, PoolStatus
from .store import HISTORY_SPAN

REFRESH_SECONDS = 30
#: Styling hints, matching the shipped alerts (CreditsRunningOut, CreditsExpiringSoon).
RUNWAY_WARN_DAYS = 7.0
EXPIRY_WARN_DAYS = 14.0
USAGE_WARN_RATIO = 0.75
USAGE_CRIT_RATIO = 0.9

REASON_HINT = {
    Reason.AUTH: "the key was refused",
    Reason.PAYMENT_REQUIRED: "payment required",
    Reason.RATE_LIMITED: "rate limited",
    Reason.CLIENT_ERROR: "request refused",
    Reason.SERVER_ERROR: "provider error",
    Reason.TIMEOUT: "timed out",
    Reason.CONNECTION: "connection failed",
    Reason.BAD_RESPONSE: "unexpected response",
}

# --------------------------------------------------------------------------- numbers and times
#
# Texts that change with time alone are rounded to a step that depends on their size, and each
# has a companion that says how long the text stays the same, so that an account's fragment is
# rendered again exactly when one of its texts would change.

_MIN, _HOUR, _DAY = 60.0, 3600.0, 86400.0


def _half_up(x: float) -> int:
    return math.floor(x + 0.5)


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
        text = "< 1 h" if hours < 1 else f"{_half_up(hours)} h"
    elif d < 10:
        text = f"{_half_up(d * 10) / 10:.1f} days"
    else:
        text = f"{_half_up(d):,} days"
    return f"{text} ago" if days < 0 else text


def format_age(seconds: float | None) -> str:
    """How long ago: ``< 1 min ago``, ``5 min ago``, ``3.5 h ago``, ``2 days ago``."""
    if seconds is None or not math.isfinite(seconds):
        return "never"
    s = max(0.0, seconds)
    if s < _MIN:
        return "< 1 min ago"
    if s < _HOUR:
        return f"{math.floor(s / _MIN)} min ago"
    if s < _DAY:
        return f"{_half_up(s / 360) / 10:.1f} h ago".replace(".0 h", " h")
    days = f"{_half_up(s / 8640) / 10:.1f}".removesuffix(".0")
    return f"{days} {'day' if days == '1' else 'days'} ago"


def iso_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def human_utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def valid_until(a: AccountStatus, now: float) -> float:
    """Until when the fragment rendered for ``a`` at ``now`` stays true (``inf``: until the
    account changes): its values pass max_staleness (the account turns stale), or its expiry
    comes within :data:`EXPIRY_WARN_DAYS` (the cell turns amber). Ages and countdowns are
    written when a page is put together."""
    soon = [math.inf]
    if a.stale_at is not None:
        soon.append(a.stale_at)
    if a.expiry_timestamp is not None:
        warn_at = a.expiry_timestamp - EXPIRY_WARN_DAYS * _DAY
        if warn_at > now:
            soon.append(warn_at)
    return max(now, min(soon)) + 1e-3


# --------------------------------------------------------------------------- time marks

_MARK = re.compile(rb"<!--(age|since|days):(-?[0-9]+\.[0-9]+)-->")


def _mark(kind: str, ts: float) -> Markup:
    return Markup(f"<!--{kind}:{ts:.3f}-->")


def age_mark(ts: float) -> Markup:
    """``format_age(now - ts)``, written when the page is put together."""
    return _mark("age", ts)


def since_mark(ts: float) -> Markup:
    """The same without "ago" (``23.5 h``)."""
    return _mark("since", ts)


def days_mark(ts: float) -> Markup:
    """``format_days((ts - now) / 86400)``: a countdown."""
    return _mark("days", ts)


def fill_times(data: bytes, now: float) -> bytes:
    """Write the texts of the time marks in rendered rows as of ``now``."""

    def text(m: re.Match[bytes]) -> bytes:
        kind, ts = m.group(1), float(m.group(2))
        if kind == b"days":
            out = format_days((ts - now) / _DAY)
        else:
            out = format_age(now - ts)
            if kind == b"since":
                out = out.removesuffix(" ago")
        return str(escape(out)).encode()

    return _MARK.sub(text, data)


# --------------------------------------------------------------------------- SVG geometry

SPARK_W, SPARK_H, SPARK_PAD = 120, 28, 2.5
BAR_W, BAR_H = 120, 8
SPARK_MAX_POINTS = 60
SPARK_MIN_SPAN = 60.0  # seconds of history before a line means anything


def sparkline(points: Sequence[tuple[float, float]], now: float) -> dict[str, Any] | None:
    """Remaining over (up to) the last 24 h: the line, the shaded area and the last point, or
    None until the points span a minute.

    The x axis runs from the first point to the last; the y axis from the lowest to the highest
    value (a flat series is drawn mid-height)."""
    pts = [(t, v) for t, v in points if now - t <= HISTORY_SPAN and math.isfinite(v)]
    if len(pts) < 2 or pts[-1][0] - pts[0][0] < SPARK_MIN_SPAN:
        return None
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
    return {
        "line": line,
        "area": f"{line} L{coords[-1][0]:g},{h} L{coords[0][0]:g},{h} Z",
        "x": f"{coords[-1][0]:g}",
        "y": f"{coords[-1][1]:g}",
    }


def bar_level(ratio: float) -> str:
    """A used/limit bar's colour: amber from 75 % used, red from 90 %."""
    return "crit" if ratio >= USAGE_CRIT_RATIO else "warn" if ratio >= USAGE_WARN_RATIO else "ok"


def bar_fill(ratio: float) -> str:
    return f"{round(min(max(ratio, 0.0), 1.0) * BAR_W, 1):g}"


# --------------------------------------------------------------------------- per account


def badge_text(a: AccountStatus) -> str:
    if a.severity == "failing":
        return f"Failing: {', '.join(sorted({e.reason for e in a.errors.values()}))}"
    return SEVERITY_TEXT[a.severity]


def state_details(a: AccountStatus) -> list[str]:
    """The lines under the badge: one per distinct error message (naming the endpoints that
    share it), how long a stale account has been silent, or which pools are low."""
    if a.state == "failing":
        by_message: dict[str, list[str]] = {}
        for ep, e in a.errors.items():
            msg = e.message
            if e.status is not None and msg == f"HTTP {e.status}":
                msg = f"{msg}, {REASON_HINT[Reason(e.reason)]}"
            by_message.setdefault(msg, []).append(ep)
        return [f"{', '.join(eps)}: {msg}" for msg, eps in by_message.items()]
    if a.state == "stale":
        if a.last_success is None:
            return ["last success never"]
        return [Markup("last success ") + age_mark(a.last_success)]
    if a.state == "never_polled":
        return ["waiting for the first poll"]
    if a.severity == "low":
        return [f"below threshold: {', '.join(p.pool for p in a.pools if p.low)}"]
    return []


def why_empty(a: AccountStatus) -> str:
    """Why an account shows no pool."""
    if a.state == "never_polled":
        return "no data yet"
    if a.stale:
        return (
            f"values dropped: older than max_staleness ({format_duration(a.max_staleness_seconds)})"
        )
    if a.last_success is None:
        return "no data: never polled successfully"
    return "no values reported"


def spark_label(a: AccountStatus, p: PoolStatus) -> Markup:
    if not p.history:
        return Markup("")
    values = [v for _, v in p.history]
    tail = (
        f": from {format_number(values[0])} to {format_number(values[-1])} {p.unit} "
        f"(lowest {format_number(min(values))})"
    )
    return (
        escape(f"{a.account} {p.pool} remaining over the last ")
        + since_mark(p.history[0][0])
        + escape(tail)
    )


def runway_title(p: PoolStatus) -> str:
    if p.runway_days == 0:
        return f"nothing left: {format_number(p.remaining)} {p.unit} remaining"
    if p.burn_per_day is None:
        return "no consumption history; the balance did not fall"
    rate = f"at {format_number(p.burn_per_day)} {p.unit}/day"
    if p.runway_source == "consumption":
        return f"{rate} (7-day average)"
    return f"{rate}: the fall of the balance over the last 24 h, top-ups ignored"


def time_tag(ts: float | None, text: str | Markup) -> Markup:
    """``text`` in a ``<time>`` element with the UTC time on hover (just ``text`` without a
    time). Escaped by markupsafe, as the templates are."""
    if ts is None:
        return Markup("{}").format(text)
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        iso_utc(ts), human_utc(ts), text
    )


def rowspan(span: int) -> Markup:
    return Markup(' rowspan="{}"').format(span) if span > 1 else Markup("")


# --------------------------------------------------------------------------- templates

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("exporter", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)
ENV.filters.update(
    number=format_number, days=format_days, age=format_age, iso=iso_utc, human=human_utc
)
ENV.globals.update(
    badge_text=badge_text,
    state_details=state_details,
    why_empty=why_empty,
    spark_label=spark_label,
    sparkline=sparkline,
    bar_level=bar_level,
    bar_fill=bar_fill,
    runway_title=runway_title,
    time_tag=time_tag,
    rowspan=rowspan,
    age_mark=age_mark,
    days_mark=days_mark,
    SEVERITY_TEXT=SEVERITY_TEXT,
    REFRESH_SECONDS=REFRESH_SECONDS,
    RUNWAY_WARN_DAYS=RUNWAY_WARN_DAYS,
    EXPIRY_WARN_DAYS=EXPIRY_WARN_DAYS,
    SPARK_W=SPARK_W,
    SPARK_H=SPARK_H,
    BAR_W=BAR_W,
    BAR_H=BAR_H,
)

CSS = Markup(resources.files(__package__).joinpath("templates/status.css").read_text().strip())
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()

#: Only this page's own stylesheet; no script, no connection, no frame; the filter form submits
#: to the page itself.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; img-src data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

ROWS_MARK = "\x00rows\x00"


@functools.cache
def template(name: str) -> jinja2.Template:
    """A template, compiled on first use (not at import: the daemon's start-up does not wait
    for it)."""
    return ENV.get_template(name)


def warm_up() -> None:
    """Compile the templates now."""
    template("account.html")
    template("page.html")


def render_account(a: AccountStatus, now: float) -> str:
    """One account's ``<tbody>``: its rows, one per pool (with time marks: see
    :func:`fill_times`)."""
    return template("account.html").render(a=a, now=now)


def render_shell(**context: Any) -> tuple[str, str]:
    """The page around the rows: (what comes before them, what comes after)."""
    page = template("page.html").render(css=CSS, rows=Markup(ROWS_MARK), **context)
    head, _, tail = page.partition(ROWS_MARK)
    return head, tail
