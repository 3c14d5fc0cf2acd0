"""--web.config.file: the exporter-toolkit format, validated strictly; TLS, mutual TLS and basic
auth checked with real TLS clients against a real exporter process (certificates from trustme);
the web config reloaded on SIGHUP."""

from __future__ import annotations

import asyncio
import base64
import http.client
import signal
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import trustme
from bcrypt import checkpw as bcrypt_checkpw

from exporter.configfile import ConfigError
from exporter.webconfig import BasicAuth, WebProtection, load_web_config, parse_web_config
from support import ExporterProcess, wait_for
from support.leaks import find_secrets

ROUNDS = 4  # the cheapest bcrypt cost: tests need not burn CPU
PASSWORD = "correct horse battery staple"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=ROUNDS)).decode()
KEY = "sk_webconfig_0123456789abcdef"


# --------------------------------------------------------------------------- certificates


@dataclass
class Pki:
    dir: Path
    ca: trustme.CA
    client_ca: trustme.CA
    client: trustme.LeafCert
    stranger: trustme.LeafCert

    def client_context(
        self,
        cert: trustme.LeafCert | None = None,
        max_version: ssl.TLSVersion | None = None,
    ) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        if cert is not None:
            cert.configure_cert(ctx)
        if max_version is not None:
            ctx.maximum_version = max_version
        return ctx


def write_server_cert(ca: trustme.CA, d: Path, name: str) -> trustme.LeafCert:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(str(d / f"{name}.crt"))
    cert.private_key_pem.write_to_path(str(d / f"{name}.key"))
    return cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca, client_ca, other_ca = trustme.CA(), trustme.CA(), trustme.CA()
    write_server_cert(ca, d, "server")
    client_ca.cert_pem.write_to_path(str(d / "clients-ca.crt"))
    client = client_ca.issue_cert("prometheus@monitoring.example")
    stranger = other_ca.issue_cert("mallory@example.com")
    return Pki(d, ca, client_ca, client, stranger)


# --------------------------------------------------------------------------- clients


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    peer_cert: bytes | None


def https(
    port: int,
    path: str,
    ctx: ssl.SSLContext,
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> Answer:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        assert conn.sock is not None
        peer = conn.sock.getpeercert(binary_form=True)
        return Answer(resp.status, dict(resp.getheaders()), body, peer)
    finally:
        conn.close()


def plain_http(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def refused(fn: Any, *args: Any, **kwargs: Any) -> str:
    """Call ``fn``; it must fail at the TLS or connection level (never an HTTP answer)."""
    try:
        answer = fn(*args, **kwargs)
    except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
        return type(exc).__name__
    raise AssertionError(f"expected a refused connection, got {answer!r}")


def start(
    tmp_path: Path, web_yaml: str, pki: Pki, config: dict[str, Any] | None = None
) -> ExporterProcess:
    web = pki.dir / f"web-{time.monotonic_ns()}.yml"
    web.write_text(web_yaml)
    exp = ExporterProcess(config or {"accounts": []}, tmp_path, args=[f"--web.config.file={web}"])
    exp.web_path = web  # type: ignore[attr-defined]
    return exp


def wait_https(exp: ExporterProcess, ctx: ssl.SSLContext) -> None:
    def up() -> bool:
        if exp.proc.poll() is not None:
            raise AssertionError(f"exporter exited {exp.proc.returncode}:\n{exp.logs()}")
        return https(exp.port, "/healthz", ctx).status == 200

    wait_for(up, timeout=20)


@pytest.fixture
def exporters() -> Iterator[list[ExporterProcess]]:
    procs: list[ExporterProcess] = []
    yield procs
    for p in procs:
        p.stop()


# --------------------------------------------------------------------------- TLS + basic auth


def test_tls_and_basic_auth(tmp_path: Path, pki: Pki, exporters: list[ExporterProcess]) -> None:
    exp = start(
        tmp_path,
        f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prometheus: '{HASH}'\n",
        pki,
        {
            "accounts": [
                {
                    "name": "a",
                    "provider": "fullenrich",
                    "api_key": KEY,
                    "base_url": "http://127.0.0.1:1",
                }
            ]
        },
    )
    exporters.append(exp)
    ctx = pki.client_context()
    wait_https(exp, ctx)
    port = exp.port

    # Plain HTTP gets no HTTP answer at all.
    refused(plain_http, port, "/metrics")
    refused(plain_http, port, "/healthz")
    # A client that does not trust the CA is refused by its own TLS stack.
    refused(https, port, "/metrics", ssl.create_default_context())

    # No or wrong credentials: 401 with a challenge, on everything but the probes.
    for headers in (
        {},
        basic("prometheus", "wrong"),
        basic("nobody", PASSWORD),
        {"Authorization": "Basic !!!"},
    ):
        for path, method in (
            ("/metrics", "GET"),
            ("/", "GET"),
            ("/api/status", "GET"),
            ("/-/reload", "POST"),
        ):
            answer = https(port, path, ctx, headers, method)
            assert answer.status == 401, (headers, path)
            assert answer.headers["WWW-Authenticate"].startswith('Basic realm="credits-exporter"')
            assert b"credits_" not in answer.body
    # The right ones: 200.
    for _ in range(3):
        answer = https(port, "/metrics", ctx, basic("prometheus", PASSWORD))
        assert answer.status == 200 and b"credits_up" in answer.body
    assert https(port, "/api/status", ctx, basic("prometheus", PASSWORD)).status == 200
    # Probes need no credentials (TLS still applies).
    assert https(port, "/healthz", ctx).status == 200
    assert https(port, "/readyz", ctx).status in (200, 503)
    assert find_secrets(exp.logs(), [KEY]) == []


# --------------------------------------------------------------------------- mutual TLS


def test_mutual_tls(tmp_path: Path, pki: Pki, exporters: list[ExporterProcess]) -> None:
    exp = start(
        tmp_path,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients-ca.crt\n"
        "  min_version: TLS13\n",
        pki,
    )
    exporters.append(exp)
    good = pki.client_context(pki.client)
    wait_https(exp, good)
    port = exp.port
    assert https(port, "/metrics", good).status == 200
    # Without a client certificate, or with one from another CA: refused during TLS.
    refused(https, port, "/metrics", pki.client_context())
    refused(https, port, "/healthz", pki.client_context())
    refused(https, port, "/metrics", pki.client_context(pki.stranger))
    # Below min_version: refused.
    refused(https, port, "/metrics", pki.client_context(pki.client, ssl.TLSVersion.TLSv1_2))
    refused(plain_http, port, "/metrics")


def test_verify_client_cert_if_given_with_basic_auth(
    tmp_path: Path, pki: Pki, exporters: list[ExporterProcess]
) -> None:
    """The set-up docs/security.md suggests for Kubernetes: probes come without a certificate
    and without credentials; everything else needs credentials, and a certificate presented
    must be valid."""
    exp = start(
        tmp_path,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: clients-ca.crt\n"
        f"basic_auth_users:\n  prometheus: '{HASH}'\n",
        pki,
    )
    exporters.append(exp)
    anonymous = pki.client_context()
    wait_https(exp, anonymous)
    assert https(exp.port, "/healthz", anonymous).status == 200
    assert https(exp.port, "/metrics", anonymous).status == 401
    with_cert = pki.client_context(pki.client)
    assert https(exp.port, "/metrics", with_cert, basic("prometheus", PASSWORD)).status == 200
    refused(https, exp.port, "/healthz", pki.client_context(pki.stranger))


# --------------------------------------------------------------------------- reload


def test_web_config_reloads_on_sighup(
    tmp_path: Path, pki: Pki, exporters: list[ExporterProcess]
) -> None:
    d = tmp_path / "rotating"
    d.mkdir()
    first = write_server_cert(pki.ca, d, "tls")
    web = d / "web.yml"
    web.write_text(
        f"tls_server_config: {{cert_file: tls.crt, key_file: tls.key}}\n"
        f"basic_auth_users: {{prometheus: '{HASH}'}}\n"
    )
    exp = ExporterProcess({"accounts": []}, tmp_path, args=[f"--web.config.file={web}"])
    exporters.append(exp)
    ctx = pki.client_context()
    wait_https(exp, ctx)
    old = https(exp.port, "/metrics", ctx, basic("prometheus", PASSWORD))
    assert old.status == 200
    assert old.peer_cert == ssl.PEM_cert_to_DER_cert(first.cert_chain_pems[0].bytes().decode())

    # Certificate rotated and password changed: new connections get both.
    second = write_server_cert(pki.ca, d, "tls")
    new_password = "another password"
    new_hash = bcrypt.hashpw(new_password.encode(), bcrypt.gensalt(rounds=ROUNDS)).decode()
    web.write_text(
        f"tls_server_config: {{cert_file: tls.crt, key_file: tls.key}}\n"
        f"basic_auth_users: {{prometheus: '{new_hash}'}}\n"
    )
    exp.signal(signal.SIGHUP)
    wait_for(
        lambda: https(exp.port, "/metrics", ctx, basic("prometheus", new_password)).status == 200
    )
    answer = https(exp.port, "/metrics", ctx, basic("prometheus", PASSWORD))
    assert answer.status == 401
    assert answer.peer_cert != old.peer_cert
    assert answer.peer_cert == ssl.PEM_cert_to_DER_cert(second.cert_chain_pems[0].bytes().decode())
    assert (
        b"credits_exporter_config_last_reload_successful 1.0"
        in https(exp.port, "/metrics", ctx, basic("prometheus", new_password)).body
    )

    # Turning TLS off needs a restart: refused, everything stays as it was.
    web.write_text(f"basic_auth_users: {{prometheus: '{new_hash}'}}\n")
    exp.signal(signal.SIGHUP)
    wait_for(lambda: "config reload refused" in exp.logs())
    assert "turning TLS off needs a restart" in exp.logs()
    wait_for(
        lambda: (
            b"credits_exporter_config_last_reload_successful 0.0"
            in https(exp.port, "/metrics", ctx, basic("prometheus", new_password)).body
        )
    )


# --------------------------------------------------------------------------- validation


def errors_of(text: str, base: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_web_config(text, base_dir=base)
    return info.value.errors


def test_every_error_located(pki: Pki) -> None:
    errs = errors_of(
        "tls_server_config:\n"
        "  cert_file: nope.crt\n"
        "  client_auth_type: Sometimes\n"
        "  min_version: TLS14\n"
        "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"
        "  colour: red\n"
        "basic_auth_users:\n"
        "  alice: hunter2\n"
        "  'bob:x': " + HASH + "\n"
        "http_server_config: {http2: false}\n"
        "extra: 1\n",
        pki.dir,
    )
    assert errs == [
        "http_server_config: not supported by credits-exporter",
        "extra: unknown key",
        "tls_server_config.cipher_suites: not supported by credits-exporter",
        "tls_server_config.colour: unknown key",
        'tls_server_config.client_auth_type: unknown value "Sometimes" (one of NoClientCert, '
        "RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, "
        "RequireAndVerifyClientCert)",
        'tls_server_config.min_version: unknown TLS version "TLS14" (one of TLS10, TLS11, TLS12, TLS13)',
        "tls_server_config.key_file: required key is missing",
        'tls_server_config.cert_file: "nope.crt" does not exist',
        "basic_auth_users.alice: must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters), not a password",
        "basic_auth_users.bob:x: a user name cannot contain ':' (basic auth splits on it)",
    ]
    assert not any("hunter2" in e for e in errs)


@pytest.mark.parametrize(
    ("tls", "error"),
    [
        (
            "{cert_file: server.crt, key_file: server.key, client_ca_file: clients-ca.crt}",
            "tls_server_config.client_ca_file: set, but client_auth_type is NoClientCert",
        ),
        (
            "{cert_file: server.crt, key_file: server.key, client_auth_type: RequireAnyClientCert}",
            "tls_server_config.client_ca_file: required with client_auth_type RequireAnyClientCert",
        ),
        (
            "{cert_file: server.crt, key_file: server.key, client_auth_type: VerifyClientCertIfGiven}",
            "tls_server_config.client_ca_file: required with client_auth_type VerifyClientCertIfGiven",
        ),
        (
            "{cert_file: server.crt, key_file: clients-ca.crt}",
            "tls_server_config.cert_file: cannot load the certificate and key_file:",
        ),
        (
            "{cert_file: server.key, key_file: server.key}",
            "tls_server_config.cert_file: cannot load the certificate and key_file:",
        ),
        (
            "{cert_file: server.crt, key_file: server.key, min_version: TLS13, max_version: TLS12}",
            "tls_server_config.max_version: TLS12 is lower than min_version TLS13",
        ),
        (
            "{cert_file: server.crt, key_file: .}",
            'tls_server_config.key_file: "." is a directory',
        ),
        (
            "{cert_file: server.crt, key_file: server.key, client_auth_type: RequireAndVerifyClientCert, client_ca_file: server.key}",
            "tls_server_config.client_ca_file: cannot load CA certificates",
        ),
        ("[1, 2]", "tls_server_config: must be a mapping"),
    ],
)
def test_tls_errors(pki: Pki, tls: str, error: str) -> None:
    errs = errors_of(f"tls_server_config: {tls}\n", pki.dir)
    assert any(e.startswith(error) for e in errs), errs


def test_mismatched_key(pki: Pki, tmp_path: Path) -> None:
    other = trustme.CA().issue_cert("127.0.0.1")
    other.private_key_pem.write_to_path(str(tmp_path / "other.key"))
    (tmp_path / "server.crt").write_bytes((pki.dir / "server.crt").read_bytes())
    errs = errors_of("tls_server_config: {cert_file: server.crt, key_file: other.key}", tmp_path)
    assert errs == [
        "tls_server_config.cert_file: cannot load the certificate and key_file: key values mismatch"
    ]


def test_valid_configs(pki: Pki) -> None:
    assert parse_web_config("", base_dir=pki.dir).tls is None
    assert (
        parse_web_config("tls_server_config: {}\nbasic_auth_users: {}", base_dir=pki.dir).users
        == {}
    )
    web = load_web_config_from(
        pki,
        "tls_server_config: {cert_file: server.crt, key_file: server.key, client_auth_type: RequestClientCert}",
    )
    assert web.tls is not None and web.tls.verify_mode is ssl.CERT_NONE
    web = load_web_config_from(
        pki,
        "tls_server_config: {cert_file: server.crt, key_file: server.key, client_auth_type: RequestClientCert, client_ca_file: clients-ca.crt}",
    )
    assert web.tls is not None and web.tls.verify_mode is ssl.CERT_OPTIONAL
    web = load_web_config_from(
        pki,
        "tls_server_config: {cert_file: server.crt, key_file: server.key, client_auth_type: RequireClientCert, client_ca_file: clients-ca.crt}",
    )
    assert web.tls is not None and web.tls.verify_mode is ssl.CERT_REQUIRED
    ctx = web.ssl_context()
    assert ctx is not None and ctx.minimum_version is ssl.TLSVersion.TLSv1_2


def load_web_config_from(pki: Pki, text: str) -> Any:
    path = pki.dir / f"w{time.monotonic_ns()}.yml"
    path.write_text(text)
    return load_web_config(path)


# --------------------------------------------------------------------------- basic auth


async def test_basic_auth_caches_only_successes(monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[bytes] = []

    def checkpw(password: bytes, hashed: bytes) -> bool:
        checks.append(password)
        return bcrypt_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    auth = BasicAuth({"prometheus": HASH.encode()})
    good = basic("prometheus", PASSWORD)["Authorization"]
    assert await auth.check(good)
    assert await auth.check(good)
    assert await auth.check(good)
    assert len(checks) == 1  # one bcrypt, then the cache
    bad = basic("prometheus", "nope")["Authorization"]
    assert not await auth.check(bad)
    assert not await auth.check(bad)
    assert len(checks) == 3  # failures are never cached
    # Unknown users cost a bcrypt too (no fast path tells who exists).
    assert not await auth.check(basic("mallory", PASSWORD)["Authorization"])
    assert len(checks) == 4
    for header in (
        None,
        "",
        "Bearer x",
        "Basic",
        "Basic ###",
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ):
        assert not await auth.check(header)
    assert len(checks) == 4


async def test_bcrypt_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    slow = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=12)).decode()  # ~0.2-0.4 s each
    auth = BasicAuth({"u": slow.encode()})
    threads: list[threading.Thread] = []

    def checkpw(password: bytes, hashed: bytes) -> bool:
        threads.append(threading.current_thread())
        return bcrypt_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    assert not await auth.check(basic("u", "wrong")["Authorization"])
    task.cancel()
    # bcrypt ran in another thread, and the loop kept turning meanwhile.
    assert threads and threading.main_thread() not in threads
    assert ticks >= 1


def test_reload_rules(pki: Pki) -> None:
    tls = load_web_config_from(
        pki, "tls_server_config: {cert_file: server.crt, key_file: server.key}"
    )
    plain = load_web_config_from(pki, "")
    mtls = load_web_config_from(
        pki,
        "tls_server_config: {cert_file: server.crt, key_file: server.key, client_auth_type: RequireAndVerifyClientCert, client_ca_file: clients-ca.crt}",
    )
    running = WebProtection(tls)
    assert running.check_reload(tls) == []
    assert "turning TLS off needs a restart" in running.check_reload(plain)[0]
    assert "client_ca_file: changing it needs a restart" in running.check_reload(mtls)[0]
    assert "turning TLS on needs a restart" in WebProtection(plain).check_reload(tls)[0]


def test_encrypted_key_is_an_error_not_a_prompt(pki: Pki, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key((pki.dir / "server.key").read_bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    (tmp_path / "enc.key").write_bytes(encrypted)
    (tmp_path / "server.crt").write_bytes((pki.dir / "server.crt").read_bytes())
    errs = errors_of("tls_server_config: {cert_file: server.crt, key_file: enc.key}", tmp_path)
    assert len(errs) == 1
    assert errs[0].startswith(
        "tls_server_config.cert_file: cannot load the certificate and key_file"
    )
