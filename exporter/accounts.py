"""What every account's config shares: its fields (:class:`AccountBase`), the defaults they
fall back to, and the durations, sizes, rates and thresholds they are written in, with their
parsers. Each provider's module declares its own account model on top of :class:`AccountBase`;
:mod:`exporter.config` loads a document into them.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from .redaction import EXCERPT

# --------------------------------------------------------------------------- durations

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def yaml_float(value: int | float) -> float:
    """A YAML number as a float: an integer beyond any float is infinite (and refused as
    such), not an OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def parse_duration(value: object) -> float:
    """``30s``, ``5m``, ``1h30m``, ``1.5h``, ``500ms`` -> seconds. Plain numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        seconds = yaml_float(value)
    elif isinstance(value, str):
        text = value.strip()
        pos, seconds = 0, 0.0
        for match in _DURATION_RE.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if not text or pos != len(text):
            raise ValueError(f'invalid duration "{value}" (use e.g. 30s, 5m, 1h30m)')
    else:
        raise ValueError(f"invalid duration {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {repr(value)[:EXCERPT]} (not a finite number)")
    if seconds <= 0:
        raise ValueError(f'duration must be positive, got "{value}"')
    return seconds


def format_duration(seconds: float) -> str:
    """Inverse of :func:`parse_duration` for display: 5400 -> ``1h30m``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    out, rest = "", round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out or "0s"


def _within(low: float, high: float) -> AfterValidator:
    def check(seconds: float) -> float:
        if not low <= seconds <= high:
            raise ValueError(
                f"must be between {format_duration(low)} and {format_duration(high)}, "
                f"got {format_duration(seconds)}"
            )
        return seconds

    return AfterValidator(check)


DAY = 86400.0
#: (shortest, longest) of each duration. Below 100ms is a typo (``1ms`` for ``1m``) that
#: would poll a provider hundreds of times a second; above, a value that never comes.
INTERVAL_BOUNDS = (0.1, 30 * DAY)
TIMEOUT_BOUNDS = (0.1, 600.0)
MAX_STALENESS_BOUNDS = (0.1, 365 * DAY)
Interval = Annotated[float, BeforeValidator(parse_duration), _within(*INTERVAL_BOUNDS)]
Timeout = Annotated[float, BeforeValidator(parse_duration), _within(*TIMEOUT_BOUNDS)]
MaxStaleness = Annotated[float, BeforeValidator(parse_duration), _within(*MAX_STALENESS_BOUNDS)]

# --------------------------------------------------------------------------- rate limits

_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\S+)\s*$")
UNLIMITED = math.inf


def parse_rate_limit(value: object) -> float:
    """``4/s``, ``60/m``, ``1000/h``, ``500/d``, ``10/5m`` -> requests per second;
    ``unlimited`` -> ``inf`` (no limit, not even the provider's default)."""
    if isinstance(value, str) and value.strip().lower() == "unlimited":
        return UNLIMITED
    hint = "use e.g. 4/s, 60/m, 1000/h, 10/5m or unlimited"
    match = _RATE_RE.match(value) if isinstance(value, str) else None
    if match is None:
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        raise ValueError(f"invalid rate limit {shown} ({hint})")
    count, period = float(match.group(1)), match.group(2)
    if count <= 0:
        raise ValueError(f'rate limit must allow at least some requests, got "{value}"')
    try:
        seconds = parse_duration(f"1{period}" if period in _UNIT_SECONDS else period)
    except ValueError:
        raise ValueError(f'invalid rate limit "{value}": bad period "{period}" ({hint})') from None
    return count / seconds


RateLimit = Annotated[float, BeforeValidator(parse_rate_limit)]
"""Requests per second (``inf``: unlimited), written in the config as ``4/s``, ``60/m``..."""


# --------------------------------------------------------------------------- sizes

_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
DEFAULT_MAX_RESPONSE_SIZE = 1024 * 1024
MIN_RESPONSE_SIZE = 1024
MAX_RESPONSE_SIZE = 1024**3


def parse_size(value: object) -> int:
    """``1MiB``, ``512KiB``, ``2MB``, ``4096`` (bytes) -> bytes, between 1 KiB and 1 GiB."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE_RE.fullmatch(value.strip())
        if match is None:
            raise ValueError(
                f'invalid size "{value[:EXCERPT]}" (use e.g. 1MiB, 512KiB, 2MB or bytes)'
            )
        number = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
        size = int(number) if math.isfinite(number) else MAX_RESPONSE_SIZE + 1
    else:
        raise ValueError(
            f"invalid size {repr(value)[:EXCERPT]} (use e.g. 1MiB, 512KiB, 2MB or bytes)"
        )
    if not MIN_RESPONSE_SIZE <= size <= MAX_RESPONSE_SIZE:
        raise ValueError(f'size "{str(value)[:EXCERPT]}" is out of range (1KiB to 1GiB)')
    return size


ByteSize = Annotated[int, BeforeValidator(parse_size)]


# --------------------------------------------------------------------------- accounts


class Strict(BaseModel):
    """Unknown keys are errors; a loaded value is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


#: ``max_staleness`` must last this many of the longest time between two polls: one late or
#: failed poll may not drop an account's values.
STALENESS_POLLS = 2

Problem = tuple[tuple[str, ...], str]
"""A problem found across fields: its place (keys inside the model) and what is wrong."""


def staleness_problem(staleness: float, key: str, seconds: float) -> Problem | None:
    """``max_staleness`` too short for polls ``seconds`` apart (``key`` sets them), or None."""
    if staleness >= STALENESS_POLLS * seconds:
        return None
    return (
        ("max_staleness",),
        f"{format_duration(staleness)} is less than twice {key} ({format_duration(seconds)}): "
        "the values would be dropped between two polls; raise max_staleness to at least "
        f"{format_duration(STALENESS_POLLS * seconds)} or lower {key}",
    )


def problem_details(problems: Iterable[Problem]) -> list[InitErrorDetails]:
    """``problems`` as the details of a ValidationError, each at its place."""
    return [
        InitErrorDetails(
            type=PydanticCustomError("value_error", "Value error, {problem}", {"problem": text}),
            loc=loc,
            input=None,
        )
        for loc, text in problems
    ]


def raise_problems(model: BaseModel, problems: Iterable[Problem | None]) -> None:
    """Raise every problem at once, each at its place (a model validator's ValueError would be
    placed at the model itself)."""
    details = problem_details(p for p in problems if p is not None)
    if details:
        raise ValidationError.from_exception_data(type(model).__name__, details)


class Defaults(Strict):
    interval: Interval = 300.0
    timeout: Timeout = 15.0
    max_staleness: MaxStaleness = 21600.0
    max_response_size: ByteSize = DEFAULT_MAX_RESPONSE_SIZE

    @model_validator(mode="after")
    def _fresh_between_polls(self) -> Self:
        raise_problems(self, [staleness_problem(self.max_staleness, "interval", self.interval)])
        return self


#: No threshold is larger (in size) than any plausible balance.
MAX_THRESHOLD = 1e15


def _threshold_number(value: object, pool: str | None = None) -> float:
    where = f"pool {pool}: " if pool is not None else ""
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = yaml_float(value)
    elif isinstance(value, str):  # e.g. from ${THRESHOLD}
        with contextlib.suppress(ValueError):
            number = float(value.strip())
    if number is None:
        raise ValueError(f"{where}must be a number, got {repr(value)[:EXCERPT]}")
    if not math.isfinite(number) or abs(number) > MAX_THRESHOLD:
        raise ValueError(
            f"{where}must be a finite number between -1e15 and 1e15, got {repr(value)[:EXCERPT]}"
        )
    return number


def parse_threshold(value: object) -> float | dict[str, float]:
    """A number (every pool) or a map of pool to number; finite, at most 1e15 in size."""
    if isinstance(value, dict):
        return {str(pool): _threshold_number(v, str(pool)) for pool, v in value.items()}
    return _threshold_number(value)


Threshold = Annotated[float | dict[str, float], BeforeValidator(parse_threshold)]
LabelName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]
_PROMETHEUS = "Prometheus sets it on every target"
_OPERATOR = "the Prometheus Operator sets it on the targets it discovers"
_EXPORTER = "the exporter sets it"
#: Label names an account's static ``labels`` may not take, and who owns each. A static label
#: that shadows one of these overrides a target label (scraped with honor_labels) or is renamed
#: ``exported_<name>`` (without it), or clashes with the exporter's own labels. Names starting
#: with ``__`` are Prometheus's too.
RESERVED_LABELS: Mapping[str, str] = {
    "job": _PROMETHEUS,
    "instance": _PROMETHEUS,
    **dict.fromkeys(("namespace", "service", "pod", "container", "endpoint"), _OPERATOR),
    **dict.fromkeys(("provider", "account", "pool", "api_endpoint", "reason", "window"), _EXPORTER),
    **dict.fromkeys(("version", "python_version"), _EXPORTER),
}


def reserved_label(name: str) -> str | None:
    """Why a static label may not be called ``name`` (None: it may)."""
    if name.startswith("__"):
        return "names starting with __ are reserved by Prometheus"
    return RESERVED_LABELS.get(name)


class AccountBase(Strict):
    """Fields every account takes. After loading, ``interval``/``timeout``/``max_staleness``
    hold the effective value (the account's own, else the defaults'), ``max_response_size``
    the account's own or the one the defaults set (None: each endpoint's default, see
    :meth:`~exporter.providers.base.Provider.max_response_size`), and ``api_key`` holds the
    secret whether it came inline or from ``api_key_file``."""

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")]
    provider: str
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    base_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = None
    interval: Interval | None = None
    timeout: Timeout | None = None
    max_staleness: MaxStaleness | None = None
    max_response_size: ByteSize | None = None
    low_credit_threshold: Threshold | None = None
    labels: dict[LabelName, str] = Field(default_factory=dict)
    #: Requests per second for this account's key; None: the provider's setting or default.
    rate_limit: RateLimit | None = None

    @field_validator("labels")
    @classmethod
    def _no_reserved_labels(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        clashes = [f'"{k}" ({why})' for k in sorted(value) if (why := reserved_label(k))]
        if clashes:
            name = info.data.get("name")
            whose = f'account "{name}": ' if isinstance(name, str) else ""
            plural = "s" if len(clashes) > 1 else ""
            raise ValueError(f"{whose}reserved label name{plural}: {', '.join(clashes)}")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> AccountBase:
        if (self.api_key is None) == (self.api_key_file is None):
            raise ValueError("exactly one of api_key or api_key_file must be set")
        return self

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        """Checks across fields (the defaults filled in, as :mod:`exporter.config` loads an
        account): ``max_staleness`` outlasts two of the account's longest times between polls,
        and a threshold by pool names pools the account has."""
        problems: list[Problem | None] = []
        if self.interval is not None and self.max_staleness is not None:
            problems.append(staleness_problem(self.max_staleness, *self.slowest_poll()))
        pools = self.pool_names()
        if isinstance(self.low_credit_threshold, dict) and pools is not None:
            known = ", ".join(pools)
            problems += [
                (("low_credit_threshold", pool), f"unknown pool (this account's pools: {known})")
                for pool in self.low_credit_threshold
                if pool not in pools
            ]
        raise_problems(self, problems)
        return self

    def slowest_poll(self) -> tuple[str, float]:
        """The longest time between two polls of one of the account's endpoints, and the key
        that sets it. A provider that polls an endpoint less often than ``interval`` says so."""
        return "interval", self.effective_interval

    def pool_names(self) -> tuple[str, ...] | None:
        """The pools this account reports (None: known only from the provider's answers)."""
        return None

    # -- helpers used by the rest of the exporter

    @property
    def secret(self) -> str:
        assert self.api_key is not None, "config loading resolves api_key_file"
        return self.api_key.get_secret_value()

    @property
    def effective_interval(self) -> float:
        assert self.interval is not None
        return self.interval

    @property
    def effective_timeout(self) -> float:
        assert self.timeout is not None
        return self.timeout

    @property
    def effective_max_staleness(self) -> float:
        assert self.max_staleness is not None
        return self.max_staleness

    def threshold_for(self, pool: str) -> float | None:
        t = self.low_credit_threshold
        if t is None or isinstance(t, float | int):
            return t
        return t.get(pool)

    def identity(self) -> str:
        """What this account polls: its provider, ``base_url`` and provider options (the request
        and how the answer is read). A reload that keeps the identity keeps the account's state
        (last values, consumed-credits counters, history, error counters) and applies the
        rest (:data:`TUNABLE`: key, schedule, thresholds, labels...) in place."""
        return self.model_dump_json(exclude=set(TUNABLE))


#: Account keys a reload changes without starting the account afresh.
TUNABLE = (
    "api_key",
    "api_key_file",
    "interval",
    "timeout",
    "max_staleness",
    "max_response_size",
    "low_credit_threshold",
    "labels",
    "rate_limit",
)
