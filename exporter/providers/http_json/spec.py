"""What an http_json account says, key by key: the request, where the key goes, where each
pool's values and the timestamps are in the answer. Each model checks itself; what depends on
the whole account (placeholders against ``params``, a relative URL against ``base_url``) is
checked by :class:`~exporter.providers.http_json.account.HttpJsonAccount`."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from ...accounts import yaml_float
from .paths import PathStr, check_path
from .templates import json_strings, url_problem

#: An HTTP token: a header name, an auth scheme.
TOKEN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
_BODY_FIELD = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
_HOST = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$"
UnitName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_%/.-]+$")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _shorthand_path(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


class TimeField(_Spec):
    """Where a timestamp is and how it is written."""

    path: PathStr
    format: Literal["auto", "iso", "date", "epoch", "epoch_ms"] = "auto"
    optional: bool = False


TimeRef = Annotated[TimeField, BeforeValidator(_shorthand_path)]

Sentinel = float | str | None


def _finite(value: Any) -> float | None:
    """A YAML number as a float (None: not a number); ValueError when no float holds it."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    number = yaml_float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number (too large, infinite or NaN)")
    return number


def _sentinel(value: Any) -> Sentinel:
    if value is None or isinstance(value, str):
        return value
    number = _finite(value)
    if number is not None:
        return number
    raise ValueError(f"{value!r}: an unlimited value is a number, a string or null")


SentinelValue = Annotated[Any, AfterValidator(_sentinel)]


def _pool_key(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", value):
        raise ValueError(
            f'invalid pool name "{value}" (lower-case letters, digits, _ and -; at most 64)'
        )
    return value


PoolKey = Annotated[str, AfterValidator(_pool_key)]


class ValueField(_Spec):
    """Where a pool's value is; ``optional``: a path missing from an answer leaves the value
    absent (instead of failing the poll, or leaving the whole pool out)."""

    path: PathStr
    optional: bool = False


def _shorthand_value(value: Any) -> Any:
    # A bad path written as a plain string is reported at the value's own place.
    return {"path": check_path(value)} if isinstance(value, str) else value


ValueRef = Annotated[ValueField, BeforeValidator(_shorthand_value)]


class PoolSpec(_Spec):
    """One pool, or with ``for_each`` one pool per element of a list."""

    remaining: ValueRef | None = None
    used: ValueRef | None = None
    limit: ValueRef | None = None
    for_each: PathStr | None = None
    name: PathStr | None = None
    unlimited: tuple[SentinelValue, ...] = ()
    scale: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    allow_negative: bool = False
    optional: bool = False
    unit: Annotated[str, Field(pattern=r"^([A-Za-z0-9_%/.-]+|\{pool\})$")] | None = None
    #: The unit when the request goes to one of these hosts (e.g. Moonshot: CNY on the China
    #: host), instead of ``unit``.
    unit_by_host: dict[Annotated[str, Field(pattern=_HOST)], UnitName] = Field(default_factory=dict)
    #: What a null value or name of this pool means (e.g. Twilio: a subaccount has no balance of
    #: its own): the poll fails with this explanation instead of a bare "is null".
    null_means: Annotated[str, Field(min_length=1, max_length=300)] | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.remaining is None and self.used is None and self.limit is None:
            raise ValueError("needs at least one of remaining, used, limit")
        if self.for_each is not None and self.name is None:
            raise ValueError("for_each needs name: the path (in each element) of the pool name")
        if self.unit == "{pool}" and self.name is None:
            raise ValueError('unit "{pool}" needs a pool named from the response (name)')
        if self.unit_by_host and self.unit == "{pool}":
            raise ValueError('unit_by_host and unit "{pool}" cannot be used together')
        return self


class RequestSpec(_Spec):
    method: Literal["GET", "POST"] = "GET"
    url: str
    headers: dict[Annotated[str, Field(pattern=TOKEN)], str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return url

    @field_validator("headers")
    @classmethod
    def _header_values(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name}: line breaks are not allowed")
        return headers

    @field_validator("body")
    @classmethod
    def _body_json(cls, body: dict[str, Any] | None) -> dict[str, Any] | None:
        if body is not None:
            list(json_strings(body, ""))  # ValueError for anything that is not JSON
        return body

    @model_validator(mode="after")
    def _body_only_for_post(self) -> Self:
        if self.body is not None and self.method != "POST":
            raise ValueError("body needs method POST")
        return self


class AuthSpec(_Spec):
    """Where the key goes. ``type``: bearer (``Authorization: Bearer <key>``), header (``name``,
    optional ``scheme``), query (parameter ``name``), body (dotted ``field`` of the JSON body),
    basic (HTTP Basic, ``username`` from params, the key as password)."""

    type: Literal["bearer", "header", "query", "body", "basic"]
    name: str | None = None
    scheme: Annotated[str, Field(pattern=TOKEN)] | None = None
    field: Annotated[str, Field(pattern=_BODY_FIELD)] | None = None
    username: str | None = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> Self:
        allowed = {
            "bearer": set(),
            "header": {"name", "scheme"},
            "query": {"name"},
            "body": {"field"},
            "basic": {"username"},
        }[self.type]
        required = {"header": {"name"}, "query": {"name"}, "body": {"field"}}.get(self.type, set())
        given = {k for k in ("name", "scheme", "field", "username") if getattr(self, k) is not None}
        extra = sorted(given - allowed)
        if extra:
            verb = "is" if len(extra) == 1 else "are"
            raise ValueError(f"{', '.join(extra)} {verb} not used by auth type {self.type}")
        missing = sorted(required - given)
        if missing:
            raise ValueError(f"auth type {self.type} needs {', '.join(missing)}")
        if self.type == "header" and not re.fullmatch(TOKEN, self.name or ""):
            raise ValueError(f'invalid header name "{self.name}"')
        if self.type == "query" and not (self.name or "").strip():
            raise ValueError("query parameter name is empty")
        if self.type == "basic":
            if self.username is None:
                raise ValueError('auth type basic needs username (e.g. "{account_sid}")')
            if ":" in self.username:
                raise ValueError("a Basic auth username cannot contain ':'")
        return self


#: What a JSON scalar of an answer may be compared with.
Scalar = str | float | bool | None


def _scalar(value: Any) -> Scalar:
    if value is None or isinstance(value, str | bool):
        return value
    number = _finite(value)
    if number is not None:
        # An integer stays one: compared exactly (2**53 + 1 is not 2**53 as a float is).
        return value if isinstance(value, int) else number
    raise ValueError(f"{value!r}: compare with a string, a number, true, false or null")


ScalarValue = Annotated[Any, AfterValidator(_scalar)]
ErrorReason = Literal[
    "auth", "payment_required", "rate_limited", "client_error", "server_error", "bad_response"
]


class ErrorRule(_Spec):
    """An error an API reports inside a successful answer (e.g. ``{"errorId": 1}``): when the
    value at ``path`` is one of ``equals`` (or none of ``not_equals``), the poll fails with
    ``reason``, saying what ``means`` says and quoting the API's own text at ``message``. A
    ``path`` missing from the answer is no error."""

    path: PathStr
    equals: tuple[ScalarValue, ...] | None = None
    not_equals: tuple[ScalarValue, ...] | None = None
    reason: ErrorReason = "bad_response"
    means: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    message: PathStr | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Self:
        if (self.equals is None) == (self.not_equals is None):
            raise ValueError("needs exactly one of equals or not_equals (a list of values)")
        if not (self.equals or self.not_equals):
            raise ValueError("equals or not_equals needs at least one value")
        return self
