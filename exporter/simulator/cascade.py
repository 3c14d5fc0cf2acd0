"""Windsurf's CascadeAnalytics as the simulator serves it: the ``cascade_runs`` rows of a
consumption history and the answer to a request's ``query_requests``.

The history is kept in 15-minute buckets (UTC start -> hundredths of a credit). A request's
days are the UTC dates of its ``start_timestamp``..``end_timestamp``; each day with consumption
has one conversation per 3 hours (or as many as the account says: a larger team's answer), each
on two paid models and a free one (whose row leaves ``promptsUsed`` out, as protobuf JSON writes
a 0). Days without consumption have no rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from .api import JSON
from .clock import DAY, parse_iso
from .fields import non_negative, to_str

DAY_FORMS = ("timestamp", "date")
"""How a row writes its ``day`` ("Date in RFC 3339 format"): ``timestamp``
``2026-03-10T00:00:00Z``, ``date`` ``2026-03-10``."""
BUCKET = 900
"""History granularity in seconds."""
BLOCK = 3 * 3600
"""One conversation per 3 hours of a day."""
PAID_MODELS = (
    ("Claude Sonnet 4", "CONVERSATIONAL_PLANNER_MODE_DEFAULT"),
    ("GPT-4.1", "CONVERSATIONAL_PLANNER_MODE_READ_ONLY"),
)
FREE_MODEL = ("SWE-1", "CONVERSATIONAL_PLANNER_MODE_NO_TOOL")
DATA_SOURCES = {
    "cascade_lines": "cascadeLines",
    "cascade_runs": "cascadeRuns",
    "cascade_tool_usage": "cascadeToolUsage",
}
_CONVERSATIONS = uuid.UUID("7d0f4c3e-5b1a-4e63-9f2a-1c8b6d5e4a39")

Rows = Callable[[date, date], list[dict[str, Any]]]


def days_field(value: Any) -> dict[date, int]:
    """The ``cascade_days`` field: ``{"2026-03-10": credits}`` -> day -> hundredths."""
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object of date -> credits, got {type(value).__name__}")
    return {
        date.fromisoformat(to_str(day)): round(non_negative(credits) * 100)
        for day, credits in value.items()
    }


def runs(
    buckets: Mapping[int, int],
    first: date,
    last: date,
    day_form: str,
    reported_until: float | None = None,
    conversations: int = 1,
) -> list[dict[str, Any]]:
    """The rows of the days ``first``..``last``, with integer values; with
    ``reported_until``, only from the buckets that ended by then (data that lags). Each
    3-hour block's credits are shared by ``conversations`` conversations."""
    blocks: dict[int, int] = {}
    for start, cents in buckets.items():
        if reported_until is not None and start + BUCKET > reported_until:
            continue
        if first <= datetime.fromtimestamp(start, UTC).date() <= last:
            blocks[start - start % BLOCK] = blocks.get(start - start % BLOCK, 0) + cents
    rows = []
    for block, total in sorted(blocks.items()):
        day = datetime.fromtimestamp(block, UTC).date().isoformat()
        for n in range(conversations):
            cents = total // conversations + (total % conversations if n == 0 else 0)
            second = cents // 3
            conversation = str(uuid.uuid5(_CONVERSATIONS, f"{block}/{n}" if n else str(block)))
            for (model, mode), used in zip(
                (*PAID_MODELS, FREE_MODEL), (cents - second, second, 0), strict=True
            ):
                rows.append(
                    {
                        "day": f"{day}T00:00:00Z" if day_form == "timestamp" else day,
                        "model": model,
                        "mode": mode,
                        "messagesSent": 1 + used // 100,
                        "cascadeId": conversation,
                        "promptsUsed": used,
                    }
                )
    return rows


def day_range(body: Mapping[str, Any], now: float) -> tuple[date, date]:
    """The UTC days ``start_timestamp``..``end_timestamp`` cover (by default the last 30 days);
    ValueError saying what is wrong with them."""
    moments = {}
    for name, default in (("start_timestamp", now - 30 * DAY), ("end_timestamp", now)):
        value = body.get(name)
        if value is None:
            moments[name] = datetime.fromtimestamp(default, UTC)
            continue
        parsed = parse_iso(value) if isinstance(value, str) else None
        if parsed is None:
            raise ValueError(f"invalid {name}: expected an RFC 3339 time")
        moments[name] = parsed.astimezone(UTC)
    start, end = moments["start_timestamp"], moments["end_timestamp"]
    if start > end:
        raise ValueError("start_timestamp must not be after end_timestamp")
    return start.date(), end.date()


def answer(body: JSON, now: float, rows: Rows) -> tuple[int, JSON]:
    """(status, body) for a request: one result per query request, in their order; 400 with
    Windsurf's ``{"error": ...}`` for a request without queries, with an unknown data source,
    or with timestamps that are not RFC 3339 or out of order."""
    request = body if isinstance(body, dict) else {}
    queries = request.get("query_requests")
    if not isinstance(queries, list) or not queries:
        return 400, {"error": "query_requests is required"}
    try:
        first, last = day_range(request, now)
    except ValueError as exc:
        return 400, {"error": str(exc)}
    results = []
    for query in queries:
        source = next(iter(query), None) if isinstance(query, dict) and len(query) == 1 else None
        if source not in DATA_SOURCES:
            return 400, {"error": "each query request needs one known data source"}
        found = rows(first, last) if source == "cascade_runs" else []
        key = DATA_SOURCES[source]
        results.append({key: {key: found} if found else {}})
    return 200, {"queryResults": results}
