"""Configuration: YAML loading, ``${VAR}`` interpolation, ``*_file`` secrets, strict validation.

Every problem in a config is reported at once, each with its location in the file, e.g.
``accounts[2].interval: invalid duration "5 minutes"``. A config that loads is immutable.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import zoneinfo
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

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

from .redaction import excerpt
from .safefile import FileProblem, KiB, MiB, read_file
from .yamldoc import DocumentError, load_document

# --------------------------------------------------------------------------- durations

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: object) -> float:
    """``30s``, ``5m``, ``1h30m``, ``1.5h``, ``500ms`` -> seconds. Plain numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
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
        raise ValueError(f"invalid duration {value!r} (not a finite number)")
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


def format_rate_limit(per_second: float) -> str:
    if per_second == UNLIMITED:
        return "unlimited"
    for unit, size in (("s", 1), ("m", 60), ("h", 3600), ("d", 86400)):
        count = per_second * size
        if count >= 1 and abs(count - round(count)) < 1e-9:
            return f"{round(count)}/{unit}"
    return f"{per_second:g}/s"


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
            raise ValueError(f'invalid size "{value}" (use e.g. 1MiB, 512KiB, 2MB or bytes)')
        number = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
        size = int(number) if math.isfinite(number) else MAX_RESPONSE_SIZE + 1
    else:
        raise ValueError(f"invalid size {value!r} (use e.g. 1MiB, 512KiB, 2MB or bytes)")
    if not MIN_RESPONSE_SIZE <= size <= MAX_RESPONSE_SIZE:
        raise ValueError(f'size "{value}" is out of range (1KiB to 1GiB)')
    return size


ByteSize = Annotated[int, BeforeValidator(parse_size)]


# --------------------------------------------------------------------------- errors


class ConfigError(Exception):
    """A config that cannot be used; ``errors`` lists every problem as ``location: message``."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} error(s):\n" + "\n".join(errors))


def format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


# --------------------------------------------------------------------------- models


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    interval: Interval = 300.0
    timeout: Timeout = 15.0
    max_staleness: MaxStaleness = 21600.0
    max_response_size: ByteSize = DEFAULT_MAX_RESPONSE_SIZE


#: Requests in flight at once per provider, by default: enough that 1,000 accounts are all
#: polled within a few round trips at start-up (per-key rate limits protect each account).
DEFAULT_MAX_CONCURRENCY = 512


class ProviderSettings(_Strict):
    """Per-provider limits shared by every account of that provider."""

    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1, le=10000)
    #: Requests per second per API key; None: the provider's documented default.
    rate_limit: RateLimit | None = None


class TheirStackConsumption(_Strict):
    enabled: bool = True
    timezone: str = "UTC"
    lookback_days: int = Field(default=30, ge=7, le=365)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'unknown timezone "{value}" (use an IANA name)') from None
        return value


#: No threshold is larger (in size) than any plausible balance.
MAX_THRESHOLD = 1e15


def _threshold_number(value: object, pool: str | None = None) -> float:
    where = f"pool {pool}: " if pool is not None else ""
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):  # e.g. from ${THRESHOLD}
        with contextlib.suppress(ValueError):
            number = float(value.strip())
    if number is None:
        raise ValueError(f"{where}must be a number, got {excerpt(repr(value))}")
    if not math.isfinite(number) or abs(number) > MAX_THRESHOLD:
        raise ValueError(
            f"{where}must be a finite number between -1e15 and 1e15, got {excerpt(repr(value))}"
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


class AccountBase(_Strict):
    """Fields every account takes. After loading, ``interval``/``timeout``/``max_staleness``
    (and ``max_response_size``) hold the effective value (the account's own, else the
    defaults') and ``api_key`` holds the secret whether it came inline or from
    ``api_key_file``."""

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

    @property
    def effective_max_response_size(self) -> int:
        """The largest response body this account accepts, in bytes."""
        return self.max_response_size or DEFAULT_MAX_RESPONSE_SIZE

    def threshold_for(self, pool: str) -> float | None:
        t = self.low_credit_threshold
        if t is None or isinstance(t, float | int):
            return t
        return t.get(pool)

    def identity(self) -> str:
        """What this account polls: its provider, ``base_url`` and provider options (the request
        and how the answer is read). A reload that keeps the identity keeps the account's state
        (last values, ``credits_consumed_total``, history, error counters) and applies the
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


class TheirStackAccount(AccountBase):
    provider: Literal["theirstack"]
    consumption: TheirStackConsumption = Field(default_factory=TheirStackConsumption)


class WindsurfAccount(AccountBase):
    provider: Literal["windsurf"]
    prompt_usage: bool = False


class FullEnrichAccount(AccountBase):
    provider: Literal["fullenrich"]


ACCOUNT_MODELS: dict[str, type[AccountBase]] = {
    "theirstack": TheirStackAccount,
    "windsurf": WindsurfAccount,
    "fullenrich": FullEnrichAccount,
}


def register_account_model(provider: str, model: type[AccountBase]) -> None:
    """Providers defined outside this module (http_json, presets) add their config model."""
    ACCOUNT_MODELS[provider] = model


class Config(_Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    accounts: list[AccountBase] = Field(default_factory=list)

    def secrets(self) -> list[str]:
        """Every API key in the config, for log redaction."""
        return [a.secret for a in self.accounts if a.api_key is not None]

    def provider_settings(self, provider: str) -> ProviderSettings:
        return self.providers.get(provider) or ProviderSettings()

    def account(self, name: str) -> AccountBase:
        for a in self.accounts:
            if a.name == name:
                return a
        raise KeyError(name)


# --------------------------------------------------------------------------- interpolation

_VAR_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def _interpolate(
    node: Any, env: Mapping[str, str], loc: tuple[int | str, ...], errors: list[str]
) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, env, (*loc, str(k)), errors) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, (*loc, i), errors) for i, v in enumerate(node)]
    if not isinstance(node, str) or "$" not in node:
        return node

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        var, default = match.group(1), match.group(2)
        value = env.get(var)
        if value is None or (value == "" and default is not None):
            if default is None:
                errors.append(
                    f"{format_location(loc)}: environment variable {var} is not set "
                    f"(use ${{{var}:-default}} for a default)"
                )
                return ""
            return default
        return value

    return _VAR_RE.sub(sub, node)


# --------------------------------------------------------------------------- loading


#: The largest config file and key file read (a config of 10,000 accounts is about 2 MiB).
MAX_CONFIG_FILE = 32 * MiB
MAX_KEY_FILE = 64 * KiB


def _read_key_file(path: Path, base_dir: Path) -> str:
    full = path if path.is_absolute() else base_dir / path
    try:
        text = read_file(full, MAX_KEY_FILE).decode("utf-8")
    except FileProblem as exc:
        raise ValueError(f'api_key_file "{path}" {exc}') from None
    except UnicodeDecodeError as exc:
        raise ValueError(f'api_key_file "{path}" cannot be read: {type(exc).__name__}') from None
    key = text.rstrip("\r\n")
    if not key.strip():
        raise ValueError(f'api_key_file "{path}" is empty')
    return key


def _account_key(
    item: Mapping[str, Any], loc: tuple[int | str, ...], base_dir: Path, errors: list[str]
) -> str | None:
    """The account's key, from ``api_key`` or read from ``api_key_file``; None after adding
    to ``errors`` why there is none (a value of the wrong type: its model reports it)."""
    key, key_file = item.get("api_key"), item.get("api_key_file")
    if (key is None) == (key_file is None):
        problem = f"{format_location(loc)}: exactly one of api_key or api_key_file must be set"
        if problem not in errors:  # the model may have said so already
            errors.append(problem)
        return None
    where = format_location((*loc, "api_key_file" if key_file is not None else "api_key"))
    if isinstance(key_file, str):
        try:
            key = _read_key_file(Path(key_file), base_dir)
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
            return None
    if not isinstance(key, str):
        return None
    if not key.strip():
        # An unset ${VAR} was reported already; "is empty" would only repeat it.
        if not any(e.startswith(f"{where}: ") for e in errors):
            errors.append(f"{where}: is empty")
        return None
    if _CONTROL_CHARS.search(key):
        errors.append(
            f"{where}: the key contains a line break or another control character "
            "(a key is one line)"
        )
        return None
    return key


def _validation_messages(exc: ValidationError, prefix: tuple[int | str, ...]) -> Iterator[str]:
    for err in exc.errors(include_url=False, include_input=False):
        loc = (*prefix, *err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        yield f"{format_location(loc)}: {msg}"


# Never valid in a key, and aiohttp refuses them in a header: report them at load time.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_ACCOUNT_KEYS_WITH_DEFAULTS = ("interval", "timeout", "max_staleness", "max_response_size")


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Config:
    """Parse and validate a config document; raise :class:`ConfigError` listing every problem.
    Nothing else escapes: whatever else goes wrong is a ConfigError too."""
    try:
        return _parse_config(text, source, os.environ if env is None else env, base_dir)
    except ConfigError:
        raise
    except Exception as exc:  # a bug, or a document no check above foresaw
        raise ConfigError(
            source, [f"(top level): cannot be loaded ({type(exc).__name__})"]
        ) from None


def _parse_config(text: str, source: str, env: Mapping[str, str], base_dir: Path | None) -> Config:
    # Providers defined outside this module (http_json and its presets) register their models
    # when imported; make sure they are, whoever calls first.
    from . import providers as _providers  # noqa: F401

    base_dir = base_dir or Path.cwd()
    try:
        raw, errors = load_document(text)
    except DocumentError as exc:
        raise ConfigError(source, exc.errors) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, [*errors, "(top level): the config must be a mapping"])

    raw = _interpolate(raw, env, (), errors)
    top_keys = {"defaults", "providers", "accounts"}
    for key in raw:
        if key not in top_keys:
            errors.append(f"{key}: unknown key")

    defaults = Defaults()
    try:
        defaults = Defaults.model_validate(raw.get("defaults") or {})
    except ValidationError as exc:
        errors.extend(_validation_messages(exc, ("defaults",)))

    providers: dict[str, ProviderSettings] = {}
    raw_providers = raw.get("providers") or {}
    if not isinstance(raw_providers, dict):
        errors.append("providers: must be a mapping of provider name to settings")
        raw_providers = {}
    for pname, settings in raw_providers.items():
        if pname not in ACCOUNT_MODELS:
            errors.append(f"providers.{pname}: unknown provider")
            continue
        try:
            providers[pname] = ProviderSettings.model_validate(settings or {})
        except ValidationError as exc:
            errors.extend(_validation_messages(exc, ("providers", pname)))

    accounts: list[AccountBase] = []
    raw_accounts = raw.get("accounts")
    if raw_accounts is None:
        raw_accounts = []
    if not isinstance(raw_accounts, list):
        errors.append("accounts: must be a list")
        raw_accounts = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw_accounts):
        loc: tuple[int | str, ...] = ("accounts", i)
        if not isinstance(item, dict):
            errors.append(f"{format_location(loc)}: must be a mapping")
            continue
        name = item.get("name")
        if isinstance(name, str):
            if name in seen:
                errors.append(
                    f"{format_location((*loc, 'name'))}: duplicate account name "
                    f'"{name}" (also accounts[{seen[name]}])'
                )
            else:
                seen[name] = i
        provider = item.get("provider")
        model = ACCOUNT_MODELS.get(provider) if isinstance(provider, str) else None
        if model is None:
            known = ", ".join(sorted(ACCOUNT_MODELS))
            if provider is None:
                errors.append(f"{format_location((*loc, 'provider'))}: required key is missing")
            else:
                errors.append(
                    f'{format_location((*loc, "provider"))}: unknown provider "{provider}" '
                    f"(known: {known})"
                )
            _account_key(item, loc, base_dir, errors)  # its problems too, all at once
            continue
        data = dict(item)
        for key in _ACCOUNT_KEYS_WITH_DEFAULTS:
            if data.get(key) is None:
                data[key] = getattr(defaults, key)
        try:
            account = model.model_validate(data)
        except ValidationError as exc:
            errors.extend(_validation_messages(exc, loc))
            # The model stops before its own key checks: make them here, all at once.
            _account_key(item, loc, base_dir, errors)
            continue
        key = _account_key(item, loc, base_dir, errors)
        if key is None:
            continue
        if account.api_key_file is not None:
            account = account.model_copy(update={"api_key": SecretStr(key)})
        accounts.append(account)

    if errors:
        raise ConfigError(source, errors)
    return Config.model_construct(defaults=defaults, providers=providers, accounts=accounts)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at ``path``."""
    p = Path(path)
    try:
        text = read_file(p, MAX_CONFIG_FILE).decode("utf-8")
    except FileProblem as exc:
        raise ConfigError(str(p), [f"(file): {exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), [f"(file): cannot be read: {type(exc).__name__}"]) from None
    return parse_config(text, source=str(p), env=env, base_dir=p.parent.resolve())
