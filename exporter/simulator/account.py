"""What every simulated account holds: its key, the common misbehaviour switches, its
rate-limit history, and the lazy settling of simulated time.

A simulated API subclasses :class:`SimAccount` with its own fields (each with a converter from
:mod:`.fields`) and, if its state moves with time, :meth:`SimAccount.advance_state`.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from .fields import Converter, non_negative, opt_positive_int, to_bool, to_int, to_str

MALFORMED_MODES: tuple[str, ...] = (
    "html",  # 200 text/html error page (a proxy's or CDN's)
    "invalid_json",  # 200 application/json, truncated JSON
    "wrong_shape",  # an array where an object belongs, or the reverse
    "missing_field",  # the endpoint's key field is absent
    "string_number",  # numbers sent as strings ("5000")
    "null_field",  # the endpoint's key field is null
    "negative",  # numeric fields negative
    "absurd",  # numeric fields absurdly large (1e18)
    "huge_body",  # valid JSON padded past 2 MiB
    "trickle",  # headers, then one byte a second for up to 60 s
    "reset",  # headers and half the body, then the connection is dropped
)


def _malformed(value: Any) -> str | None:
    if value is None:
        return None
    if value not in MALFORMED_MODES:
        raise ValueError(f"unknown malformed mode {value!r}; one of {', '.join(MALFORMED_MODES)}")
    return str(value)


def _fail(value: Any) -> dict[str, Any] | None:
    """``{"status": int, "body": str | JSON, "retry_after": str, "content_type": str,
    "headers": {name: value}}`` (``headers`` e.g. a ``Location`` for a redirect)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"fail: expected an object, got {type(value).__name__}")
    unknown = set(value) - {"status", "body", "retry_after", "content_type", "headers"}
    if unknown:
        raise ValueError(f"fail: unknown keys {sorted(unknown)}")
    status = to_int(value.get("status"))
    if not 100 <= status <= 599:
        raise ValueError(f"fail: status {status} is not an HTTP status")
    spec: dict[str, Any] = {"status": status}
    if value.get("body") is not None:
        spec["body"] = value["body"]
    if value.get("retry_after") is not None:
        spec["retry_after"] = str(value["retry_after"])
    if value.get("content_type") is not None:
        spec["content_type"] = to_str(value["content_type"])
    if value.get("headers") is not None:
        if not isinstance(value["headers"], Mapping):
            raise TypeError("fail.headers: expected an object of header name -> value")
        spec["headers"] = {to_str(k): to_str(v) for k, v in value["headers"].items()}
    return spec


def _paths_fail(value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"paths_fail: expected an object, got {type(value).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for suffix, spec in value.items():
        checked = _fail(spec)
        if checked is not None:
            out[to_str(suffix)] = checked
    return out


COMMON_FIELDS: dict[str, Converter] = {
    "latency": non_negative,
    "fail": _fail,
    "paths_fail": _paths_fail,
    "revoked": to_bool,
    "malformed": _malformed,
    "rate_limit_per_second": opt_positive_int,
    "rate_limit_per_minute": opt_positive_int,
}


@dataclass(kw_only=True)
class SimAccount:
    """State common to every simulated account; subclasses add a provider's own fields."""

    provider: ClassVar[str] = ""
    FIELDS: ClassVar[dict[str, Converter]] = {}

    api_key: str
    last_settle: float
    burn_anchor: float
    latency: float = 0.0
    fail: dict[str, Any] | None = None
    paths_fail: dict[str, dict[str, Any]] = field(default_factory=dict)
    revoked: bool = False
    malformed: str | None = None
    rate_limit_per_second: int | None = None
    rate_limit_per_minute: int | None = None
    hits: deque[float] = field(default_factory=deque)

    @classmethod
    def all_fields(cls) -> dict[str, Converter]:
        return {**COMMON_FIELDS, **cls.FIELDS}

    @classmethod
    def create(cls, api_key: str, now: float) -> Self:
        state = cls(api_key=api_key, last_settle=now, burn_anchor=now)
        state.init_defaults(now)
        return state

    def init_defaults(self, now: float) -> None:
        """Set defaults that depend on the simulated time (subclasses)."""

    def apply(self, fields: Mapping[str, Any], now: float) -> None:
        """Settle up to ``now``, then validate and set ``fields`` (all or nothing)."""
        known = self.all_fields()
        converted: dict[str, Any] = {}
        for name, value in fields.items():
            converter = known.get(name)
            if converter is None:
                raise ValueError(f"{self.provider}: unknown field {name!r}")
            try:
                converted[name] = converter(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{self.provider}.{name}: {exc}") from None
        self.settle(now)
        if any(name.startswith("burn_") for name in converted):
            self.burn_anchor = now
        for name, value in converted.items():
            self.set_field(name, value)

    def set_field(self, name: str, value: Any) -> None:
        setattr(self, name, value)

    def settle(self, now: float) -> None:
        """Apply the burn between the last settle and ``now``."""
        if now > self.last_settle:
            self.advance_state(self.last_settle, now)
            self.last_settle = now

    def advance_state(self, t0: float, t1: float) -> None:
        """Move the provider's state from ``t0`` to ``t1`` (subclasses)."""

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": self.provider}
        for name in self.all_fields():
            out[name] = copy.deepcopy(getattr(self, name, None))
        return out
