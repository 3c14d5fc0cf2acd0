"""Reading values out of an answer, strictly: numbers (with "unlimited" sentinels),
timestamps in any documented form, pool names taken from the answer, the API's own error text.
Anything else is a ``bad_response`` naming the path, never a 0."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any

from ...model import PollError, Reason
from ...redaction import holds_secret, quote
from ..base import ABSURD, bad, json_type, number_in_string
from .paths import resolve
from .spec import ErrorRule, Scalar, Sentinel

MAX_TIMESTAMP = 253402300799.0  # 9999-12-31T23:59:59Z
EPOCH_MS_THRESHOLD = 1e11
"""``format: auto``: epoch numbers at or above this are milliseconds (1e11 s is the year 5138,
1e11 ms is 1973)."""


def _is_sentinel(raw: Any, number: float | None, sentinels: tuple[Sentinel, ...]) -> bool:
    for s in sentinels:
        if s is None:
            if raw is None:
                return True
        elif isinstance(s, str):
            if isinstance(raw, str) and raw.strip() == s:
                return True
        elif number is not None and number == s:
            return True
    return False


def read_number(
    raw: Any, where: str, *, sentinels: tuple[Sentinel, ...] = (), allow_negative: bool = False
) -> float | None:
    """A JSON number, or a number written as a string; ``None`` for an "unlimited" sentinel."""
    if _is_sentinel(raw, None, sentinels):
        return None
    if raw is None:
        raise bad(f"{where} is null")
    if isinstance(raw, bool):
        raise bad(f"{where} should be a number, got boolean")
    if isinstance(raw, str):
        number = number_in_string(raw, where)
    elif isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:
            raise bad(f"{where} is not a plausible number") from None
    else:
        raise bad(f"{where} should be a number, got {json_type(raw)}")
    if _is_sentinel(raw, number, sentinels):
        return None
    if not math.isfinite(number) or abs(number) > ABSURD:
        raise bad(f"{where} is not a plausible number ({quote(raw)})")
    if number < 0 and not allow_negative:
        raise bad(f"{where} is negative ({number:g})")
    return number


_NUMERIC_TEXT = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")


def read_timestamp(raw: Any, where: str, fmt: str = "auto") -> float:
    """ISO 8601 date-time, plain date, epoch seconds or milliseconds -> epoch seconds."""
    numeric = (isinstance(raw, int | float) and not isinstance(raw, bool)) or (
        isinstance(raw, str) and _NUMERIC_TEXT.match(raw) is not None
    )
    if numeric and fmt in ("auto", "epoch", "epoch_ms"):
        try:
            ts = float(raw)
        except OverflowError:
            raise bad(f"{where} is not a plausible timestamp") from None
        if fmt == "epoch_ms" or (fmt == "auto" and abs(ts) >= EPOCH_MS_THRESHOLD):
            ts /= 1000.0
    elif fmt in ("epoch", "epoch_ms"):
        raise bad(f"{where} should be an epoch timestamp (a number), got {json_type(raw)}")
    elif not isinstance(raw, str) or not raw.strip():
        raise bad(f"{where} should be a date or date-time string, got {json_type(raw)}")
    else:
        text = raw.strip()
        try:
            if fmt == "date" or len(text) == 10:
                d = date.fromisoformat(text)
                ts = datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
            else:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
                if dt.tzinfo is None:
                    dt = dt.replace(tzinfo=UTC)
                ts = dt.timestamp()
        except (ValueError, OverflowError):
            kind = "date" if fmt == "date" else "date or date-time"
            raise bad(f'{where} is not a valid {kind} ("{quote(text)}")') from None
    if not math.isfinite(ts) or not 0 <= ts <= MAX_TIMESTAMP:
        raise bad(f"{where} is not a plausible timestamp ({quote(raw)})")
    return ts


_SPACES = re.compile(r"\s+")
_DYNAMIC_POOL = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


def pool_name(raw: Any, where: str, secrets: Iterable[str] = ()) -> str:
    """A pool named by the response: trimmed, lower-cased, inner spaces as ``_``. A name that
    holds the key (any of ``secrets``, the forms of the account's key on the wire) or a run of
    8 or more of its characters, in any case, is refused: it would publish the key as a label
    (an upstream that echoes the request into the field the name is read from)."""
    if not isinstance(raw, str):
        raise bad(f"{where} should be a string naming the pool, got {json_type(raw)}")
    spaced = _SPACES.sub(" ", raw.strip())
    name = spaced.replace(" ", "_").lower()
    if not _DYNAMIC_POOL.match(name):
        raise bad(f'{where} ("{quote(raw)}") is not a usable pool name')
    if holds_secret(spaced, secrets):  # a short name: the check costs little
        raise bad(f"{where} holds the account's key (or part of it): not a usable pool name")
    return name


_ERROR_PATHS = (
    "error.message",
    "detail.message",
    "errors[0].details",
    "errors[0].message",
    "errors[0].detail",
    "message",
    "detail",
    "error",
    "error_description",
    "title",
)


def error_message_reader(path: str | None) -> Callable[[Any], str | None]:
    """The API's own error text from an error body: ``path`` if given, else common places."""
    paths = (path, *_ERROR_PATHS) if path else _ERROR_PATHS

    def read(data: Any) -> str | None:
        for p in paths:
            try:
                value = resolve(data, p)
            except PollError:
                continue
            if isinstance(value, str) and value.strip():
                return value
        return None

    return read


def _same(raw: Any, value: Scalar) -> bool:
    """Whether an answer's ``raw`` value is the rule's ``value`` (numbers by value, a boolean
    only a boolean, a string only the same string)."""
    if isinstance(raw, bool) or isinstance(value, bool):
        return isinstance(raw, bool) and isinstance(value, bool) and raw == value
    if isinstance(raw, int | float) and isinstance(value, int | float):
        return raw == value  # exact, and no float() of an integer too large for one
    return raw == value if raw is None or isinstance(raw, str) else False


def _shown(raw: Any) -> str:
    """An answer's scalar for a message: a number or a literal as JSON writes it, a string
    quoted (so that only the exporter's words reach the status page)."""
    if isinstance(raw, str):
        return f'"{quote(raw)}"'
    if isinstance(raw, bool) or raw is None:
        return "true" if raw is True else "false" if raw is False else "null"
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:  # an integer beyond any float
            return "a number too large to show"
        return f"{number:g}" if math.isfinite(number) else "not a number"
    return f"a JSON {json_type(raw)}"


def body_error(data: Any, rules: tuple[ErrorRule, ...]) -> PollError | None:
    """The error the first matching ``error_when`` rule finds in a successful answer."""
    for rule in rules:
        try:
            raw = resolve(data, rule.path)
        except PollError:  # missing, or the answer has another shape: no error said here
            continue
        if rule.equals is not None:
            hit = any(_same(raw, v) for v in rule.equals)
        else:
            hit = not any(_same(raw, v) for v in rule.not_equals or ())
        if not hit:
            continue
        text = f"{rule.path} is {_shown(raw)}"
        if rule.means:
            text += f": {rule.means}"
        try:
            detail = resolve(data, rule.message) if rule.message else None
        except PollError:
            detail = None
        if isinstance(detail, str) and detail.strip():
            text += f' ("{quote(detail.strip())}")'
        return PollError(Reason(rule.reason), text)
    return None
