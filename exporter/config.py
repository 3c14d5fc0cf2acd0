"""Configuration: YAML loading, ``${VAR}`` interpolation, ``*_file`` secrets, strict validation.

Every problem in a config is reported at once, each with its location in the file, e.g.
``accounts[2].interval: invalid duration "5 minutes"``. A config that loads is immutable.
Each account is validated by its provider's model, looked up in the registry
(:data:`exporter.providers.PROVIDERS`); what every account shares is in :mod:`exporter.accounts`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field, SecretStr, ValidationError

from .accounts import AccountBase, Defaults, RateLimit, Strict
from .configfile import ConfigError, read_config_text
from .providers import PROVIDERS
from .safefile import FileProblem, KiB, MiB, read_file
from .yamldoc import DocumentError, load_mapping

# --------------------------------------------------------------------------- errors


def format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


# --------------------------------------------------------------------------- models


#: Requests in flight at once per provider, by default: enough that 1,000 accounts are all
#: polled within a few round trips at start-up (per-key rate limits protect each account).
DEFAULT_MAX_CONCURRENCY = 512


class ProviderSettings(Strict):
    """Per-provider limits shared by every account of that provider."""

    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, ge=1, le=10000)
    #: Requests per second per API key; None: the provider's documented default.
    rate_limit: RateLimit | None = None


class Config(Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    accounts: list[AccountBase] = Field(default_factory=list)

    def secrets(self) -> list[str]:
        """Every form of every API key in the config as its provider's requests carry it on
        the wire (:meth:`~exporter.providers.base.Provider.credential`), for log redaction."""
        return [
            form
            for a in self.accounts
            if a.api_key is not None
            for form in PROVIDERS[a.provider].provider.credential(a).forms
        ]

    def provider_settings(self, provider: str) -> ProviderSettings:
        return self.providers.get(provider) or ProviderSettings()


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
_ACCOUNT_KEYS_WITH_DEFAULTS = ("interval", "timeout", "max_staleness")
_CAP = "max_response_size"


A = TypeVar("A", bound=AccountBase)


def _share_fields_set(account: A, shared: dict[frozenset[str], set[str]]) -> A:
    """``account`` holding the same set of given keys as every other account that gave the same
    keys. Pydantic keeps a set per model (``model_fields_set``) of about 0.7 kB: 7 MB at
    10,000 accounts, for a handful of distinct sets. An account is immutable, and
    ``model_copy`` copies the set before it adds to it, so sharing it is safe."""
    fields = account.__pydantic_fields_set__
    kept = shared.setdefault(frozenset(fields), fields)
    if kept is not fields:
        object.__setattr__(account, "__pydantic_fields_set__", kept)
    return account


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
    base_dir = base_dir or Path.cwd()
    try:
        raw, errors = load_mapping(text, "the config")
    except DocumentError as exc:
        raise ConfigError(source, exc.errors) from None

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
        if pname not in PROVIDERS:
            errors.append(f"providers.{pname}: unknown provider")
            continue
        try:
            providers[pname] = ProviderSettings.model_validate(settings or {})
        except ValidationError as exc:
            errors.extend(_validation_messages(exc, ("providers", pname)))

    accounts: list[AccountBase] = []
    fields_sets: dict[frozenset[str], set[str]] = {}
    raw_accounts = raw.get("accounts")
    if raw_accounts is None:
        raw_accounts = []
    if not isinstance(raw_accounts, list):
        errors.append("accounts: must be a list")
        raw_accounts = []
    seen: dict[str, int] = {}
    # What validating an account may need to know about the others (http_json: which names
    # its provider_name may not take).
    context = {"providers": {name: r.account for name, r in PROVIDERS.items()}}
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
        registered = PROVIDERS.get(provider) if isinstance(provider, str) else None
        if registered is None:
            known = ", ".join(sorted(PROVIDERS))
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
        if data.get(_CAP) is None and _CAP in defaults.model_fields_set:
            # Set in the defaults: every endpoint's cap. Unset: each endpoint's own default.
            data[_CAP] = defaults.max_response_size
        try:
            account = registered.account.model_validate(data, context=context)
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
        accounts.append(_share_fields_set(account, fields_sets))

    if errors:
        raise ConfigError(source, errors)
    return Config.model_construct(defaults=defaults, providers=providers, accounts=accounts)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at ``path``."""
    p = Path(path)
    text = read_config_text(p, MAX_CONFIG_FILE)
    return parse_config(text, source=str(p), env=env, base_dir=p.parent.resolve())
