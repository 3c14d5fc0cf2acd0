"""The one interface every provider implements, and the strict field readers they share.

A provider turns one account's config into HTTP calls (``fetch``) and turns each response into
a :class:`~exporter.model.Reading` (``parse``, pure, so it can be property-tested). Anything
missing or mistyped in a response raises ``PollError(BAD_RESPONSE)``: never a 0.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from ..accounts import DEFAULT_MAX_RESPONSE_SIZE, AccountBase
from ..credentials import Credential, plain
from ..http import AccountClient
from ..model import PollError, PoolValues, Reading, Reason
from ..redaction import quote

# Larger than any credit balance seen in the wild; beyond it a number is a bug, not a balance.
ABSURD = 1e15


def bad(message: str) -> PollError:
    return PollError(Reason.BAD_RESPONSE, message)


def require_object(data: Any, where: str = "response") -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise bad(f"{where} should be a JSON object, got {json_type(data)}")
    return data


def require_list(data: Any, where: str = "response") -> list[Any]:
    if not isinstance(data, list):
        raise bad(f"{where} should be a JSON array, got {json_type(data)}")
    return data


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def number_in_string(text: str, where: str) -> float:
    """The number a string writes (``"12.5"``, ``" 3 "``); ``bad_response`` for any other."""
    try:
        if "_" in text:  # float() would take "1_000"; an API would not mean it
            raise ValueError
        return float(text.strip())
    except ValueError:
        raise bad(f'{where} should be a number, got the string "{quote(text)}"') from None


def check_number(
    value: Any, where: str, *, allow_negative: bool = False, strings: bool = False
) -> float:
    """A finite, sane JSON number (``strings``: also a number written as a string)."""
    if strings and isinstance(value, str):
        value = number_in_string(value, where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(f"{where} should be a number, got {json_type(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise bad(f"{where} is not a plausible number (too large)") from None
    if not math.isfinite(number) or abs(number) > ABSURD:
        raise bad(f"{where} is not a plausible number ({quote(repr(value))})")
    if number < 0 and not allow_negative:
        raise bad(f"{where} is negative ({number:g})")
    return number


def require_number(
    obj: Mapping[str, Any], key: str, *, where: str = "", allow_negative: bool = False
) -> float:
    if key not in obj:
        raise bad(f"{where}{key} is missing")
    return check_number(obj[key], f"{where}{key}", allow_negative=allow_negative)


def parse_timestamp(value: Any, where: str) -> float:
    """ISO 8601 date-time (``Z`` or offset; naive means UTC) or plain date -> epoch seconds."""
    if not isinstance(value, str) or not value.strip():
        raise bad(f"{where} should be an ISO 8601 date-time string, got {json_type(value)}")
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad(f'{where} is not a valid date-time ("{quote(text)}")') from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        ts = dt.timestamp()
    except (OverflowError, OSError, ValueError):  # e.g. year 1 with a positive offset
        raise bad(f'{where} is out of range ("{quote(text)}")') from None
    if not math.isfinite(ts):
        raise bad(f"{where} is out of range")
    return ts


def optional_timestamp(obj: Mapping[str, Any], key: str, where: str = "") -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    return parse_timestamp(value, f"{where}{key}")


def merge_pools(*parts: Mapping[str, PoolValues]) -> dict[str, PoolValues]:
    """Overlay pool values field by field: a later non-None value wins."""
    out: dict[str, PoolValues] = {}
    for part in parts:
        for pool, values in part.items():
            prev = out.get(pool)
            if prev is None:
                out[pool] = values
                continue
            out[pool] = PoolValues(
                remaining=values.remaining if values.remaining is not None else prev.remaining,
                used=values.used if values.used is not None else prev.used,
                limit=values.limit if values.limit is not None else prev.limit,
            )
    return out


class Provider(ABC):
    """One account of one provider. Instances are cheap and hold no connection."""

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    #: Requests per second allowed per API key by default (``None``: no documented limit).
    default_rate_limit: ClassVar[float | None] = None

    def __init__(self, account: AccountBase) -> None:
        self.account = account
        self.base_url = (account.base_url or self.default_base_url).rstrip("/")

    @classmethod
    def credential(cls, account: AccountBase) -> Credential:
        """How this provider's requests carry ``account``'s key, and every form of it they put
        on the wire (redacted wherever a poll's text is kept or shown). Default: the key as
        itself (in a JSON body or a header of its own); a provider that sends it otherwise
        says so here and builds its request from the same value."""
        return plain(account.secret)

    def max_response_size(self, endpoint: str) -> int:
        """The largest body accepted from ``endpoint``, in bytes: the account's
        ``max_response_size`` (its own, else the defaults') when the config sets one, else
        :meth:`default_max_response_size`."""
        return self.account.max_response_size or self.default_max_response_size(endpoint)

    def default_max_response_size(self, endpoint: str) -> int:
        """The body cap of ``endpoint`` when the config sets none: 1 MiB; a provider whose
        endpoint answers with more (a long history) declares its own."""
        return DEFAULT_MAX_RESPONSE_SIZE

    @classmethod
    def documented_rate(cls, account: AccountBase) -> float | None:
        """Requests per second per key the provider documents for ``account``: the key's rate
        limit unless the config sets one (None: no documented limit)."""
        return cls.default_rate_limit

    @property
    def label(self) -> str:
        """The ``provider`` label value."""
        return self.name

    @property
    @abstractmethod
    def endpoints(self) -> tuple[str, ...]:
        """The ``endpoint`` label values this account polls, one scheduler loop each."""

    @abstractmethod
    async def fetch(self, endpoint: str, client: AccountClient) -> Reading:
        """Call ``endpoint`` once (one request: the scheduler waited for the key's turn) with
        ``client``, which has the account's key forms, timeout and the endpoint's body cap
        bound, and parse the answer; raise PollError on any failure."""

    def poll_interval(self, endpoint: str) -> float:
        """Seconds between polls of ``endpoint`` (before jitter): the account's ``interval``;
        a provider may poll an endpoint whose data changes slowly upstream less often."""
        return self.account.effective_interval

    def derive(self, merged: Reading, readings: Mapping[str, Reading]) -> Reading:
        """Settle values that need more than one endpoint's answer. ``merged`` overlays the
        fresh ``readings`` (endpoint -> its last good reading); default: ``merged`` as is."""
        return merged

    def units(self) -> Mapping[str, str]:
        """Unit of each pool for display (e.g. ``characters``, ``usd``); default: credits."""
        return {}
