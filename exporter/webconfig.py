"""Protecting the web endpoints: ``--web.config.file``, the Prometheus exporter-toolkit web
configuration format (the subset below), so one file works for this and every Go exporter.

.. code-block:: yaml

    tls_server_config:
      cert_file: server.crt          # relative paths are relative to this file
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # default NoClientCert
      client_ca_file: clients-ca.crt
      min_version: TLS12             # TLS10, TLS11, TLS12 (default), TLS13
      max_version: TLS13             # optional
    basic_auth_users:
      prometheus: $2b$12$...         # bcrypt hash (htpasswd -nBC 12 "" | tr -d ':\\n')

Basic auth covers every path except ``/healthz`` and ``/readyz`` (:data:`EXEMPT_PATHS`), so
kubelet probes work without credentials; TLS covers everything (probes use ``scheme: HTTPS``).

``client_auth_type``: a client certificate this exporter asks for is always verified against
``client_ca_file`` (Python's TLS cannot accept an unverified one), so ``RequestClientCert``
behaves as ``VerifyClientCertIfGiven`` when ``client_ca_file`` is set and asks for nothing when
it is not, and ``RequireAnyClientCert`` (alias ``RequireClientCert``) behaves as
``RequireAndVerifyClientCert`` and needs ``client_ca_file``: never weaker than asked.

Basic auth compares in constant time, runs bcrypt in a worker thread (at most two at once, so a
flood of wrong passwords cannot starve the exposition renderer) and remembers credentials that
passed, so a scrape costs one SHA-256, not one bcrypt, after the first. At most
:data:`BCRYPT_QUEUE` more checks wait for their turn; beyond, a request is answered ``429`` at
once (so a flood of wrong passwords cannot hold a correct one back for longer than a scrape
timeout). Only the first 72 bytes of a password count, as in exporter-toolkit (Go's bcrypt reads
no further; Python's bcrypt 5 refuses longer passwords outright).

The file is re-read on every reload (SIGHUP, ``POST /-/reload``): users, certificate and key,
``client_auth_type`` and TLS versions apply to new connections at once. Turning TLS on or off and
changing the client CAs need a restart; such a reload is refused and the old settings stay.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
from aiohttp import web

from .configfile import ConfigError, read_config_text
from .log import get_logger
from .safefile import FileProblem, MiB, read_file
from .yamldoc import DocumentError, load_mapping

log = get_logger("exporter.web")

#: Paths that answer without basic auth (liveness and readiness probes).
EXEMPT_PATHS = frozenset({"/healthz", "/readyz"})

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH_TYPES = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "RequireClientCert",  # exporter-toolkit's alias of RequireAnyClientCert
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
_REQUIRE = frozenset({"RequireAnyClientCert", "RequireClientCert", "RequireAndVerifyClientCert"})
_NEEDS_CA = _REQUIRE | {"VerifyClientCertIfGiven"}
_TLS_KEYS = frozenset(
    {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version"}
)
# exporter-toolkit keys this exporter does not implement: refused by name, never ignored.
_UNSUPPORTED_TLS_KEYS = frozenset(
    {
        "cert",
        "key",
        "client_ca",
        "cipher_suites",
        "curve_preferences",
        "prefer_server_cipher_suites",
        "client_allowed_sans",
    }
)
_FILE_KEYS = ("cert_file", "key_file", "client_ca_file")
#: The largest web config, certificate, key or CA file read.
MAX_TLS_FILE = 1 * MiB
_TOP_KEYS = frozenset({"tls_server_config", "basic_auth_users"})
_UNSUPPORTED_TOP_KEYS = frozenset({"http_server_config", "rate_limit"})
_BCRYPT_RE = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")
#: At most this many bcrypt checks run at once (each takes tens of milliseconds of CPU).
BCRYPT_CONCURRENCY = 2
#: At most this many more wait for their turn; beyond, the request is answered 429 at once.
BCRYPT_QUEUE = 8
#: bcrypt reads this many bytes of a password and no more.
BCRYPT_MAX_PASSWORD = 72
#: Credentials that passed, remembered (as a SHA-256) so scrapes skip bcrypt.
AUTH_CACHE_SIZE = 256
REALM = "credits-exporter"


@dataclass(frozen=True)
class TLSSettings:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str | None = None
    client_ca_digest: bytes | None = None
    """SHA-256 of the CA file's content: a reload that changes it needs a restart."""

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        if self.client_auth_type == "NoClientCert" or self.client_ca_file is None:
            return ssl.CERT_NONE
        if self.client_auth_type in _REQUIRE:
            return ssl.CERT_REQUIRED
        return ssl.CERT_OPTIONAL

    def configure(self, ctx: ssl.SSLContext, *, load_ca: bool = True) -> None:
        """Load this certificate, key, versions and verification mode into ``ctx``."""
        ctx.load_cert_chain(self.cert_file, self.key_file, password=_no_password)
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        ctx.maximum_version = (
            TLS_VERSIONS[self.max_version] if self.max_version else ssl.TLSVersion.MAXIMUM_SUPPORTED
        )
        if load_ca and self.client_ca_file is not None:
            ctx.load_verify_locations(cafile=str(self.client_ca_file))
        ctx.verify_mode = self.verify_mode

    def new_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.configure(ctx)
        return ctx


def _no_password() -> str:
    # An encrypted key fails to load ("bad decrypt") instead of prompting on a terminal.
    return ""


@dataclass(frozen=True)
class WebConfig:
    """A validated web config. ``users`` maps user name -> bcrypt hash."""

    source: str = "<none>"
    tls: TLSSettings | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)

    def ssl_context(self) -> ssl.SSLContext | None:
        return self.tls.new_context() if self.tls is not None else None


# --------------------------------------------------------------------------- parsing


def _file(value: Any, where: str, base_dir: Path, errors: list[str]) -> tuple[Path, bytes] | None:
    """The path and content of a file the web config names (a regular file, 1 MiB at most)."""
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{where}: must be a file path")
        return None
    path = Path(value)
    full = path if path.is_absolute() else base_dir / path
    try:
        return full, read_file(full, MAX_TLS_FILE)
    except FileProblem as exc:
        errors.append(f'{where}: "{value}" {exc}')
        return None


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or (exc.args[1] if len(exc.args) > 1 else str(exc))
        return str(reason).replace("_", " ").lower()
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


def _parse_tls(raw: Any, base_dir: Path, errors: list[str]) -> TLSSettings | None:
    where = "tls_server_config"
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        errors.append(f"{where}: must be a mapping")
        return None
    n_errors = len(errors)
    for key in raw:
        if key in _UNSUPPORTED_TLS_KEYS:
            errors.append(f"{where}.{key}: not supported by credits-exporter")
        elif key not in _TLS_KEYS:
            errors.append(f"{where}.{key}: unknown key")

    auth = raw.get("client_auth_type", "NoClientCert")
    if auth is None:
        auth = "NoClientCert"
    if auth not in CLIENT_AUTH_TYPES:
        errors.append(
            f'{where}.client_auth_type: unknown value "{auth}" '
            f"(one of {', '.join(a for a in CLIENT_AUTH_TYPES if a != 'RequireClientCert')})"
        )
    versions: dict[str, str | None] = {}
    for key, default in (("min_version", "TLS12"), ("max_version", None)):
        value = raw.get(key, default)
        if value is not None and value not in TLS_VERSIONS:
            errors.append(
                f'{where}.{key}: unknown TLS version "{value}" (one of {", ".join(TLS_VERSIONS)})'
            )
            value = default
        versions[key] = value
    lo, hi = versions["min_version"], versions["max_version"]
    if lo is not None and hi is not None and TLS_VERSIONS[lo] > TLS_VERSIONS[hi]:
        errors.append(f"{where}.max_version: {hi} is lower than min_version {lo}")

    files: dict[str, tuple[Path, bytes] | None] = dict.fromkeys(_FILE_KEYS)
    for name in ("cert_file", "key_file"):
        if raw.get(name) is None:
            errors.append(f"{where}.{name}: required key is missing")
    for name in _FILE_KEYS:
        if raw.get(name) is not None:
            files[name] = _file(raw[name], f"{where}.{name}", base_dir, errors)
    cert, key, ca = (f[0] if f is not None else None for f in files.values())
    ca_digest = None
    ca_file = files["client_ca_file"]
    if raw.get("client_ca_file") is not None:
        if ca_file is not None:
            ca_digest = hashlib.sha256(ca_file[1]).digest()
        if auth == "NoClientCert":
            errors.append(
                f"{where}.client_ca_file: set, but client_auth_type is NoClientCert "
                "(set client_auth_type to use it)"
            )
    elif auth in _NEEDS_CA:
        errors.append(
            f"{where}.client_ca_file: required with client_auth_type {auth} (credits-exporter "
            "verifies every client certificate it asks for)"
        )
    if len(errors) > n_errors or cert is None or key is None:
        return None
    assert isinstance(auth, str)
    settings = TLSSettings(
        cert_file=cert,
        key_file=key,
        client_auth_type=auth,
        client_ca_file=ca,
        min_version=lo or "TLS12",
        max_version=hi,
        client_ca_digest=ca_digest,
    )
    # Load everything once now, so a bad certificate is a config error, not a crash later.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key, password=_no_password)
    except (ssl.SSLError, OSError, ValueError) as exc:
        errors.append(
            f"{where}.cert_file: cannot load the certificate and key_file: {_ssl_reason(exc)}"
        )
        return None
    if ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(ca))
        except (ssl.SSLError, OSError, ValueError) as exc:
            errors.append(
                f"{where}.client_ca_file: cannot load CA certificates: {_ssl_reason(exc)}"
            )
            return None
    try:
        settings.configure(ctx, load_ca=False)
    except (ssl.SSLError, ValueError) as exc:
        errors.append(f"{where}: not usable with this OpenSSL: {_ssl_reason(exc)}")
        return None
    return settings


def _parse_users(raw: Any, errors: list[str]) -> dict[str, bytes]:
    where = "basic_auth_users"
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append(f"{where}: must be a mapping of user name to bcrypt hash")
        return {}
    users: dict[str, bytes] = {}
    for user, hashed in raw.items():
        loc = f"{where}.{user}"
        if not isinstance(user, str) or not user:
            errors.append(f"{where}: user names must be non-empty strings, got {user!r}")
            continue
        if ":" in user:
            errors.append(f"{loc}: a user name cannot contain ':' (basic auth splits on it)")
            continue
        # Never echo the value: it might be a password pasted where a hash belongs.
        if not isinstance(hashed, str) or _BCRYPT_RE.match(hashed) is None:
            errors.append(
                f"{loc}: must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters), not a password"
            )
            continue
        rounds = int(hashed[4:6])
        if not 4 <= rounds <= 31:
            errors.append(f"{loc}: bcrypt cost {rounds} is out of range (4 to 31)")
            continue
        users[user] = hashed.encode()
    return users


def parse_web_config(text: str, *, source: str = "<web config>", base_dir: Path) -> WebConfig:
    """Parse and validate a web config; raise :class:`ConfigError` listing every problem."""
    try:
        raw, errors = load_mapping(text, "the web config")
    except DocumentError as exc:
        raise ConfigError(source, exc.errors) from None
    for key in raw:
        if key in _UNSUPPORTED_TOP_KEYS:
            errors.append(f"{key}: not supported by credits-exporter")
        elif key not in _TOP_KEYS:
            errors.append(f"{key}: unknown key")
    tls = _parse_tls(raw.get("tls_server_config"), base_dir, errors)
    users = _parse_users(raw.get("basic_auth_users"), errors)
    if errors:
        raise ConfigError(source, errors)
    return WebConfig(source=source, tls=tls, users=users)


def load_web_config(path: str | Path) -> WebConfig:
    p = Path(path)
    text = read_config_text(p, MAX_TLS_FILE)
    return parse_web_config(text, source=str(p), base_dir=p.parent.resolve())


# --------------------------------------------------------------------------- basic auth


class AuthBusy(Exception):
    """Too many password checks are waiting: answer 429 without checking."""


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self.users = dict(users)
        self._passed: dict[bytes, bytes] = {}
        self._semaphore: asyncio.Semaphore | None = None
        self._dummy: bytes | None = None
        self._pending = 0  # checks running or waiting for their turn
        self._long_password_logged: set[str] = set()
        self.busy_refused = 0

    @property
    def enabled(self) -> bool:
        return bool(self.users)

    @staticmethod
    def _credentials(header: str | None) -> tuple[str, str] | None:
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "basic" or not token.strip():
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else None

    def _dummy_hash(self) -> bytes:
        # Unknown users are checked against a hash of the same cost, so that the answer takes
        # as long as for a known user with a wrong password.
        if self._dummy is None:
            rounds = int(next(iter(self.users.values()))[4:6]) if self.users else 10
            self._dummy = bcrypt.hashpw(b"credits-exporter", bcrypt.gensalt(rounds=rounds))
        return self._dummy

    def _bcrypt(self, password: bytes, hashed: bytes | None) -> bool:
        ok = bcrypt.checkpw(password, hashed or self._dummy_hash())
        return ok and hashed is not None

    def _password_bytes(self, user: str, password: str, known: bool) -> bytes:
        """The bytes bcrypt checks: the first 72, as Go's bcrypt (exporter-toolkit) reads."""
        raw = password.encode()
        if len(raw) <= BCRYPT_MAX_PASSWORD:
            return raw
        if known and user not in self._long_password_logged:
            self._long_password_logged.add(user)
            log.warning(
                "basic auth password longer than 72 bytes: only its first 72 bytes are checked",
                user=user,
            )
        return raw[:BCRYPT_MAX_PASSWORD]

    async def check(self, header: str | None) -> bool:
        """Whether ``header`` holds a user's credentials; :class:`AuthBusy` if too many checks
        are waiting already."""
        creds = self._credentials(header)
        if creds is None:
            return False
        user, password = creds
        hashed = self.users.get(user)
        key = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        remembered = self._passed.get(key)
        if remembered is not None and hashed is not None:
            return hmac.compare_digest(remembered, hashed)
        if self._pending >= BCRYPT_CONCURRENCY + BCRYPT_QUEUE:
            self._refuse()
            raise AuthBusy
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(BCRYPT_CONCURRENCY)
        secret = self._password_bytes(user, password, hashed is not None)
        self._pending += 1
        try:
            async with self._semaphore:
                try:
                    ok = await asyncio.to_thread(self._bcrypt, secret, hashed)
                except ValueError:  # a hash bcrypt refuses (validated at load, so: never)
                    ok = False
        finally:
            self._pending -= 1
            if not self._pending and self.busy_refused:
                log.info("basic auth checks caught up", refused=self.busy_refused)
                self.busy_refused = 0
        if ok and hashed is not None:
            if len(self._passed) >= AUTH_CACHE_SIZE:
                del self._passed[next(iter(self._passed))]  # the oldest
            self._passed[key] = hashed
        return ok

    def _refuse(self) -> None:
        if not self.busy_refused:
            log.warning(
                "basic auth checks saturated: answering 429",
                running=BCRYPT_CONCURRENCY,
                waiting=BCRYPT_QUEUE,
            )
        self.busy_refused += 1


# --------------------------------------------------------------------------- the running server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebProtection:
    """TLS context and basic auth of the running server; :meth:`apply` swaps in a reloaded
    web config for new connections and requests."""

    def __init__(self, config: WebConfig | None = None) -> None:
        self.config = config or WebConfig()
        self.auth = BasicAuth(self.config.users)
        self.ssl_context = self.config.ssl_context()

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    def install(self, app: web.Application) -> None:
        """Add the basic-auth middleware to ``app`` (before the app starts)."""
        app.middlewares.append(self._middleware)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        auth = self.auth
        if not auth.enabled or request.path in EXEMPT_PATHS:
            return await handler(request)
        try:
            passed = await auth.check(request.headers.get("Authorization"))
        except AuthBusy:
            return web.Response(
                status=429, text="429 Too Many Requests\n", headers={"Retry-After": "1"}
            )
        if passed:
            return await handler(request)
        log.debug("basic auth refused", path=request.path, peer=request.remote)
        return web.Response(
            status=401,
            text="401 Unauthorized\n",
            headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
        )

    def check_reload(self, new: WebConfig) -> list[str]:
        """Why ``new`` cannot replace the running settings without a restart (empty: it can)."""
        old = self.config.tls
        src = new.source
        if (old is None) != (new.tls is None):
            state = "on" if new.tls is not None else "off"
            return [f"{src}: tls_server_config: turning TLS {state} needs a restart"]
        ca = (old.client_ca_file, old.client_ca_digest) if old is not None else None
        if new.tls is not None and ca != (new.tls.client_ca_file, new.tls.client_ca_digest):
            return [f"{src}: tls_server_config.client_ca_file: changing it needs a restart"]
        return []

    def apply(self, new: WebConfig) -> list[str]:
        """Use ``new`` for new connections and requests from now on (after
        :meth:`check_reload`). Returns errors if the files changed since ``new`` was validated
        and cannot be loaded; then the old settings stay."""
        if new.tls is not None and self.ssl_context is not None:
            try:
                new.tls.configure(self.ssl_context, load_ca=False)
            except (ssl.SSLError, OSError, ValueError) as exc:
                old = self.config.tls
                if old is not None:
                    with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                        old.configure(self.ssl_context, load_ca=False)
                reason = _ssl_reason(exc)
                return [f"{new.source}: tls_server_config: cannot load the new files: {reason}"]
        if new.users != self.config.users:
            self.auth = BasicAuth(new.users)
        self.config = new
        return []
