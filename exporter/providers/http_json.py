"""``provider: http_json``: any JSON credit or quota API described in YAML, and its presets.

An account says how to call the API (``request``: method, URL with ``{param}`` placeholders,
headers, JSON body), where the key goes (``auth``: Bearer, a named header with an optional scheme,
a query parameter, a field of the JSON body, or HTTP Basic), and how to read the answer
(``pools``: paths to ``remaining``/``used``/``limit``, optionally one pool per element of a list;
``expiry``, ``cycle_start``, ``cycle_end``). See docs/providers.md for the reference and a worked
example.

Presets (``provider: openrouter`` ...) are the same declarative form stored as YAML files in
``presets/``: the account's own keys are merged over the preset's (RFC 7396 merge patch: maps
merge key by key, ``null`` removes a key, anything else replaces), then validated like any
``http_json`` account, so errors still name the account's place.

At run time every value is read strictly: a path missing from a response is a ``bad_response``
error naming the path, never a 0. The key never appears in a URL this module holds (query-string
auth travels as a separate parameter), in an error message or in a log line.
"""

from __future__ import annotations

import base64
import contextvars
import copy
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, date, datetime
from importlib import resources
from typing import Annotated, Any, ClassVar, Literal, Self, cast
from urllib.parse import quote

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..config import ACCOUNT_MODELS, AccountBase, register_account_model
from ..http import HttpClient
from ..model import PollError, PoolValues, Reading, Reason
from ..redaction import excerpt
from .base import ABSURD, Provider, json_type

# --------------------------------------------------------------------------- limits

MAX_POOLS = 50
"""More pools than this from one response is a bad response (a label-cardinality guard)."""
MAX_TIMESTAMP = 253402300799.0  # 9999-12-31T23:59:59Z
EPOCH_MS_THRESHOLD = 1e11
"""``format: auto``: epoch numbers at or above this are milliseconds (1e11 s is the year 5138,
1e11 ms is 1973)."""
DEFAULT_ENDPOINT = "balance"


def bad(message: str) -> PollError:
    return PollError(Reason.BAD_RESPONSE, message)


class MissingPath(PollError):
    """A path absent from a response: ``bad_response``, unless the pool or field is optional."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.BAD_RESPONSE, message)


# --------------------------------------------------------------------------- paths

# ``data.items[0].value``, ``["key.with.dots"]``, ``[-1]`` (last element), ``$`` (the whole
# document, or the whole element under ``for_each``); a leading ``$.`` is allowed and ignored.
_PATH_TOKEN = re.compile(r'(\.)?([^.\[\]"\s]+)|\[(-?\d+)\]|\["([^"\]]+)"\]')

PathPart = str | int


def parse_path(text: str) -> tuple[PathPart, ...]:
    """Split a path into keys and list indexes; ``ValueError`` naming the path if invalid."""
    if text == "$":
        return ()
    parts: list[PathPart] = []
    pos = 0
    if text.startswith(("$.", "$[")):  # JSONPath habit: "$.data.x" is "data.x"
        text = text[2:] if text[1] == "." else text[1:]
        if not text or text[0] == ".":
            raise ValueError(f'invalid path "${text}"')
    while pos < len(text):
        match = _PATH_TOKEN.match(text, pos)
        if match is None:
            break
        dot, key, index, quoted = match.groups()
        if key is not None:
            # A bare key needs a dot before it, except at the very start.
            if (pos == 0) == (dot is not None):
                break
            parts.append(key)
        elif index is not None:
            parts.append(int(index))
        else:
            parts.append(quoted)
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(
            f'invalid path "{text}" (use e.g. data.total, items[0].value, ["odd.key"], or $)'
        )
    return tuple(parts)


def _check_path(text: str) -> str:
    parse_path(text)
    return text


PathStr = Annotated[str, AfterValidator(_check_path)]


def join_path(prefix: str, path: str) -> str:
    """Display name of ``path`` read inside the element at ``prefix`` (for messages)."""
    if path == "$":
        return prefix
    if not prefix:
        return path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def _part_text(parts: tuple[PathPart, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r'[^.\[\]"\s]+', part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out or "$"


def resolve(data: Any, path: str, where: str = "") -> Any:
    """The value at ``path`` in ``data``. ``MissingPath`` when a key or index is absent,
    ``PollError(BAD_RESPONSE)`` when the document has another shape (e.g. a string where an
    object belongs). Messages name the full path, prefixed by ``where``."""
    parts = parse_path(path)
    shown = join_path(where, path) if where else path
    current = data
    for i, part in enumerate(parts):
        at = _part_text(parts[:i]) if i else "$"
        if isinstance(part, int):
            if not isinstance(current, list):
                raise bad(f"{shown}: expected an array at {at}, got {json_type(current)}")
            if not -len(current) <= part < len(current):
                raise MissingPath(f"{shown} is missing (the array at {at} has {len(current)})")
            current = current[part]
        else:
            if not isinstance(current, dict):
                raise bad(f"{shown}: expected an object at {at}, got {json_type(current)}")
            if part not in current:
                raise MissingPath(f"{shown} is missing")
            current = current[part]
    return current


# --------------------------------------------------------------------------- templates

_TEMPLATE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders(text: str) -> list[str]:
    """Names of the ``{param}`` placeholders in ``text`` (``{{`` and ``}}`` are literal braces;
    any other brace is literal too)."""
    return [m.group(1) for m in _TEMPLATE.finditer(text) if m.group(1) is not None]


def render(text: str, params: Mapping[str, str], encode: Callable[[str], str] = str) -> str:
    def sub(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return encode(params[match.group(1)])

    return _TEMPLATE.sub(sub, text)


def _url_encode(value: str) -> str:
    return quote(value, safe="")


# The account being validated: its params and base URL, so nested models can check that every
# placeholder is defined and name the place of the one that is not.
_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "http_json_context", default=None
)


def _check_placeholders(text: str, what: str = "placeholder") -> None:
    ctx = _CONTEXT.get()
    if ctx is None:
        return
    params = ctx.get("params")
    if not isinstance(params, dict):
        return  # params themselves are invalid; that error is reported on its own
    missing = [name for name in placeholders(text) if name not in params]
    if missing:
        names = ", ".join(f"{{{n}}}" for n in dict.fromkeys(missing))
        defined = ", ".join(sorted(params)) or "none"
        raise ValueError(f"{what} {names} is not defined: add it to params (defined: {defined})")


def _template(text: str) -> str:
    _check_placeholders(text)
    return text


TemplateStr = Annotated[str, AfterValidator(_template)]


def _url_template(text: str) -> str:
    _check_placeholders(text)
    if any(c.isspace() for c in text):
        raise ValueError(f'invalid URL "{text}" (contains whitespace)')
    return text


def _absolute(url: str) -> bool:
    return re.match(r"^https?://[^/\s]+", url) is not None


# --------------------------------------------------------------------------- config models


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


def _sentinel(value: Any) -> Sentinel:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
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
    return {"path": _check_path(value)} if isinstance(value, str) else value


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
        return self


class RequestSpec(_Spec):
    method: Literal["GET", "POST"] = "GET"
    url: Annotated[str, AfterValidator(_url_template)]
    headers: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")], TemplateStr] = (
        Field(default_factory=dict)
    )
    body: dict[str, Any] | None = None

    @field_validator("url")
    @classmethod
    def _url_resolvable(cls, url: str) -> str:
        ctx = _CONTEXT.get()
        if _absolute(url):
            return url
        if url.startswith("//") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", url):
            raise ValueError(f'invalid URL "{url}" (use http:// or https://, or a path)')
        if ctx is not None and not ctx.get("base_url"):
            raise ValueError(f'"{url}" is relative, so base_url must be set (or give a full URL)')
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
        if body is None:
            return None
        for where, text in _strings(body, ""):
            try:
                _check_placeholders(text)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        return body

    @model_validator(mode="after")
    def _body_only_for_post(self) -> Self:
        if self.body is not None and self.method != "POST":
            raise ValueError("body needs method POST")
        return self


def _strings(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string (keys included) of a YAML-loaded JSON value, with its place."""
    here = where or "$"
    if isinstance(node, str):
        yield here, node
    elif isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise ValueError(f"{here}: keys must be strings, got {key!r}")
            yield f"{here} (key {key!r})", key
            yield from _strings(value, f"{where}.{key}" if where else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{where}[{i}]")
    elif node is not None and not isinstance(node, bool | int | float):
        raise ValueError(f"{here}: {type(node).__name__} is not a JSON value")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ValueError(f"{here}: {node} is not a JSON number")


_BODY_FIELD = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"


class AuthSpec(_Spec):
    """Where the key goes. ``type``: bearer (``Authorization: Bearer <key>``), header (``name``,
    optional ``scheme``), query (parameter ``name``), body (dotted ``field`` of the JSON body),
    basic (HTTP Basic, ``username`` from params, the key as password)."""

    type: Literal["bearer", "header", "query", "body", "basic"]
    name: str | None = None
    scheme: Annotated[str, Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")] | None = None
    field: Annotated[str, Field(pattern=_BODY_FIELD)] | None = None
    username: TemplateStr | None = None

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
        if self.type == "header" and not re.fullmatch(_HEADER_NAME, self.name or ""):
            raise ValueError(f'invalid header name "{self.name}"')
        if self.type == "query" and not (self.name or "").strip():
            raise ValueError("query parameter name is empty")
        if self.type == "basic":
            if self.username is None:
                raise ValueError('auth type basic needs username (e.g. "{account_sid}")')
            if ":" in self.username:
                raise ValueError("a Basic auth username cannot contain ':'")
        return self


def _param_value(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


ParamName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ParamValue = Annotated[str, BeforeValidator(_param_value)]


class HttpJsonAccount(AccountBase):
    """``provider: http_json`` (and every preset, a subclass with ``PRESET`` set)."""

    PRESET: ClassVar[str | None] = None
    PRESET_DATA: ClassVar[Mapping[str, Any]] = {}

    provider: str
    provider_name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    endpoint: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")] = DEFAULT_ENDPOINT
    params: dict[ParamName, ParamValue] = Field(default_factory=dict)
    base_url_if_key_suffix: dict[
        Annotated[str, Field(min_length=1)],
        Annotated[str, Field(pattern=r"^https?://[^\s]+$"), AfterValidator(_url_template)],
    ] = Field(default_factory=dict)
    request: RequestSpec
    auth: AuthSpec
    pools: Annotated[dict[PoolKey, PoolSpec], Field(min_length=1)]
    expiry: TimeRef | None = None
    cycle_start: TimeRef | None = None
    cycle_end: TimeRef | None = None
    error_message: PathStr | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _merge_preset_and_check(
        cls, data: Any, handler: ModelWrapValidatorHandler[HttpJsonAccount]
    ) -> HttpJsonAccount:
        if isinstance(data, dict) and cls.PRESET_DATA:
            data = merge_preset(cls.PRESET_DATA, data)
        ctx = None
        if isinstance(data, dict):
            ctx = {"params": data.get("params", {}), "base_url": data.get("base_url")}
        token = _CONTEXT.set(ctx)
        try:
            return handler(data)
        finally:
            _CONTEXT.reset(token)

    @field_validator("provider")
    @classmethod
    def _provider_matches(cls, value: str) -> str:
        expected = cls.PRESET or "http_json"
        if value != expected:
            raise ValueError(f'expected "{expected}"')
        return value

    @field_validator("provider_name")
    @classmethod
    def _not_a_builtin(cls, value: str) -> str:
        if value != cls.PRESET and (value in ACCOUNT_MODELS or value == "http_json"):
            hint = (
                f" (use provider: {value} and override its keys instead)"
                if value in PRESETS
                else ""
            )
            raise ValueError(f'"{value}" is the name of a built-in provider{hint}')
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url_placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            _check_placeholders(value)
        return value

    @field_validator("auth")
    @classmethod
    def _auth_fits_request(cls, auth: AuthSpec, info: ValidationInfo) -> AuthSpec:
        request = info.data.get("request")
        if not isinstance(request, RequestSpec):
            return auth
        if auth.type == "body":
            if request.method != "POST":
                raise ValueError("auth type body needs request.method POST")
            node: Any = request.body or {}
            *parents, last = (auth.field or "").split(".")
            for part in parents:
                node = node.get(part, {}) if isinstance(node, dict) else None
                if not isinstance(node, dict):
                    raise ValueError(
                        f'field "{auth.field}" goes through a value of request.body '
                        "that is not an object"
                    )
            if last in node:
                raise ValueError(f'request.body already sets "{auth.field}", which carries the key')
        header = {"bearer": "Authorization", "basic": "Authorization", "header": auth.name}.get(
            auth.type
        )
        if header is not None and header.lower() in {h.lower() for h in request.headers}:
            raise ValueError(f"request.headers also sets {header}, which carries the key")
        return auth


def merge_preset(preset: Mapping[str, Any], account: Mapping[str, Any]) -> dict[str, Any]:
    """The account's keys merged over its preset's (:func:`merge_patch`); an ``auth`` of
    another ``type`` replaces the preset's whole instead of merging with it."""
    base = copy.deepcopy(dict(preset))
    auth, preset_auth = account.get("auth"), base.get("auth")
    if (
        isinstance(auth, dict)
        and isinstance(preset_auth, dict)
        and "type" in auth
        and auth["type"] != preset_auth.get("type")
    ):
        del base["auth"]
    merged = merge_patch(base, dict(account))
    assert isinstance(merged, dict)
    return merged


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: maps merge recursively, ``None`` deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --------------------------------------------------------------------------- reading values


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
        try:
            if "_" in raw:  # float() would take "1_000"; an API would not mean it
                raise ValueError
            number = float(raw.strip())
        except ValueError:
            raise bad(f'{where} should be a number, got the string "{excerpt(raw)}"') from None
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
        raise bad(f"{where} is not a plausible number ({excerpt(raw)})")
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
            raise bad(f'{where} is not a valid {kind} ("{excerpt(text)}")') from None
    if not math.isfinite(ts) or not 0 <= ts <= MAX_TIMESTAMP:
        raise bad(f"{where} is not a plausible timestamp ({excerpt(raw)})")
    return ts


_SPACES = re.compile(r"\s+")
_DYNAMIC_POOL = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


def pool_name(raw: Any, where: str) -> str:
    """A pool named by the response: trimmed, lower-cased, inner spaces as ``_``."""
    if not isinstance(raw, str):
        raise bad(f"{where} should be a string naming the pool, got {json_type(raw)}")
    name = _SPACES.sub("_", raw.strip()).lower()
    if not _DYNAMIC_POOL.match(name):
        raise bad(f'{where} ("{excerpt(raw)}") is not a usable pool name')
    return name


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- the provider


@dataclass(frozen=True, slots=True)
class _Request:
    """One call, key included: the fields that can hold it stay out of ``repr``."""

    method: str
    url: str
    headers: Mapping[str, str] = dc_field(repr=False)
    params: Mapping[str, str] | None = dc_field(repr=False)
    body: Any = dc_field(repr=False)


class HttpJson(Provider):
    name = "http_json"
    default_base_url = ""

    account: HttpJsonAccount

    def __init__(self, account: HttpJsonAccount) -> None:
        self.account = account
        params = account.params
        base = account.base_url or ""
        secret = account.secret
        for suffix in sorted(account.base_url_if_key_suffix, key=len, reverse=True):
            if secret.endswith(suffix):
                base = account.base_url_if_key_suffix[suffix]
                break
        self.base_url = render(base, params, _url_encode).rstrip("/")
        url = render(account.request.url, params, _url_encode)
        if not _absolute(url):
            url = f"{self.base_url}/{url.lstrip('/')}"
        #: The URL polled. Never holds the key: query-string auth is sent as a parameter.
        self.url = url
        self._static_units: dict[str, str] = {
            key: spec.unit
            for key, spec in account.pools.items()
            if spec.unit is not None and spec.name is None
        }
        #: Units of the pools of the last good answer (pools named by it included).
        self._units = dict(self._static_units)
        self._error_message = error_message_reader(account.error_message)

    @property
    def label(self) -> str:
        return self.account.provider_name

    @property
    def endpoints(self) -> tuple[str, ...]:
        return (self.account.endpoint,)

    def units(self) -> Mapping[str, str]:
        return dict(self._units)

    def build_request(self) -> _Request:
        """The call to make, key included (so never log or show it)."""
        account = self.account
        secret = account.secret
        params = account.params
        headers = {k: render(v, params) for k, v in account.request.headers.items()}
        body = _render_json(account.request.body, params) if account.request.body else None
        query: dict[str, str] | None = None
        auth = account.auth
        if auth.type == "bearer":
            headers["Authorization"] = f"Bearer {secret}"
        elif auth.type == "header":
            assert auth.name is not None
            headers[auth.name] = f"{auth.scheme} {secret}" if auth.scheme else secret
        elif auth.type == "query":
            assert auth.name is not None
            query = {auth.name: secret}
        elif auth.type == "body":
            assert auth.field is not None
            body = body if isinstance(body, dict) else {}
            node = body
            *parents, last = auth.field.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = secret
        else:
            assert auth.username is not None
            pair = f"{render(auth.username, params)}:{secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        if account.request.method == "POST" and body is None:
            body = {}
        return _Request(account.request.method, self.url, headers, query, body)

    async def fetch(self, endpoint: str, http: HttpClient) -> Reading:
        req = self.build_request()
        resp = await http.request_json(
            req.method,
            req.url,
            headers=req.headers,
            params=req.params,
            json_body=req.body,
            timeout=self.account.effective_timeout,
            secret=self.account.secret,
            error_message=self._error_message,
        )
        return self.parse(resp.data)

    # -- parsing (pure but for remembering the units of the pools of the last good answer)

    def parse(self, data: Any) -> Reading:
        """Read a response into a Reading; ``PollError(BAD_RESPONSE)`` naming the path on any
        missing or mistyped value."""
        pools: dict[str, PoolValues] = {}
        units: dict[str, str] = {}
        skipped: list[str] = []
        for key, spec in self.account.pools.items():
            for name, values in self._read_pools(data, key, spec, skipped):
                if name in pools:
                    raise bad(f'two pools are named "{name}" (pools.{key})')
                if len(pools) >= MAX_POOLS:
                    raise bad(f"more than {MAX_POOLS} pools in one response")
                pools[name] = values
                if spec.unit is not None:
                    units[name] = name if spec.unit == "{pool}" else spec.unit
        if not pools and skipped:
            # Optional pools tolerate plans that lack a meter, not an answer that lacks them all.
            raise bad(f"none of the pools is in the response ({skipped[0]})")
        account = self.account
        reading = Reading(
            pools=pools,
            expiry_timestamp=self._time(data, account.expiry),
            cycle_start_timestamp=self._time(data, account.cycle_start),
            cycle_end_timestamp=self._time(data, account.cycle_end),
        )
        self._units = {**self._static_units, **units}
        return reading

    def _read_pools(
        self, data: Any, key: str, spec: PoolSpec, skipped: list[str]
    ) -> Iterator[tuple[str, PoolValues]]:
        if spec.for_each is None:
            try:
                name = key
                if spec.name is not None:
                    name = pool_name(
                        _not_null(resolve(data, spec.name), spec.name, spec), spec.name
                    )
                values = self._values(data, spec, "")
            except MissingPath as exc:
                if spec.optional:
                    skipped.append(exc.message)
                    return
                raise
            yield name, values
            return
        try:
            items = resolve(data, spec.for_each)
        except MissingPath as exc:
            if spec.optional:
                skipped.append(exc.message)
                return
            raise
        if not isinstance(items, list):
            raise bad(f"{spec.for_each} should be an array, got {json_type(items)}")
        assert spec.name is not None
        for i, item in enumerate(items):
            where = f"{spec.for_each}[{i}]" if spec.for_each != "$" else f"[{i}]"
            try:
                shown = join_path(where, spec.name)
                name = pool_name(_not_null(resolve(item, spec.name, where), shown, spec), shown)
                values = self._values(item, spec, where)
            except MissingPath:
                if spec.optional:
                    continue
                raise
            yield name, values

    @staticmethod
    def _values(data: Any, spec: PoolSpec, where: str) -> PoolValues:
        def number(ref: ValueField | None, sentinels: tuple[Sentinel, ...]) -> float | None:
            if ref is None:
                return None
            shown = join_path(where, ref.path)
            try:
                raw = resolve(data, ref.path, where)
            except MissingPath:
                if ref.optional:
                    return None
                raise
            if None not in sentinels:
                _not_null(raw, shown, spec)
            value = read_number(raw, shown, sentinels=sentinels, allow_negative=spec.allow_negative)
            if value is None:
                return None
            scaled = value * spec.scale
            if not math.isfinite(scaled) or abs(scaled) > ABSURD:
                raise bad(f"{shown} times scale is not a plausible number")
            return scaled

        remaining = number(spec.remaining, spec.unlimited)
        used = number(spec.used, ())
        limit = number(spec.limit, spec.unlimited)
        if spec.remaining is None and limit is not None and used is not None:
            remaining = limit - used
        return PoolValues(remaining=remaining, used=used, limit=limit)

    @staticmethod
    def _time(data: Any, ref: TimeField | None) -> float | None:
        if ref is None:
            return None
        try:
            raw = resolve(data, ref.path)
        except MissingPath:
            if ref.optional:
                return None
            raise
        if raw is None:
            if ref.optional:
                return None
            raise bad(f"{ref.path} is null")
        return read_timestamp(raw, ref.path, ref.format)


def _not_null(raw: Any, where: str, spec: PoolSpec) -> Any:
    """``raw``; a null with the pool's ``null_means`` fails the poll with that explanation."""
    if raw is None and spec.null_means is not None:
        raise bad(f"{where} is null: {spec.null_means}")
    return raw


def _render_json(node: Any, params: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return render(node, params)
    if isinstance(node, dict):
        return {render(k, params): _render_json(v, params) for k, v in node.items()}
    if isinstance(node, list):
        return [_render_json(v, params) for v in node]
    return node


# --------------------------------------------------------------------------- presets


# libyaml's loader when PyYAML has it (start-up time).
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_presets() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    folder = resources.files(__package__ or "exporter.providers").joinpath("presets")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.load(entry.read_text(encoding="utf-8"), Loader=_SafeLoader)
        if not isinstance(data, dict):
            raise RuntimeError(f"preset {entry.name} is not a mapping")
        out[entry.name.removesuffix(".yaml")] = data
    if not out:  # package data missing: a broken install, not "no presets"
        raise RuntimeError(f"no preset files in {folder}")
    return out


PRESETS: dict[str, dict[str, Any]] = _load_presets()
"""Preset name -> its account keys (what ``provider: <name>`` merges the account over)."""


def preset_model(name: str, data: Mapping[str, Any]) -> type[HttpJsonAccount]:
    """The config model of ``provider: <name>``: http_json with ``data`` merged under."""
    model = type(
        f"{name.title().replace('_', '')}PresetAccount",
        (HttpJsonAccount,),
        {
            "PRESET": name,
            "PRESET_DATA": data,
            "__module__": __name__,
            # Validation schema built when a config first uses the preset, not at import
            # (six presets cost the exporter's start-up ~25 ms otherwise).
            "model_config": {**HttpJsonAccount.model_config, "defer_build": True},
        },
    )
    return cast(type[HttpJsonAccount], model)


register_account_model("http_json", HttpJsonAccount)
for _name, _data in PRESETS.items():
    register_account_model(_name, preset_model(_name, _data))

__all__ = [
    "PRESETS",
    "HttpJson",
    "HttpJsonAccount",
    "MissingPath",
    "merge_patch",
    "merge_preset",
    "parse_path",
    "pool_name",
    "read_number",
    "read_timestamp",
    "resolve",
]
