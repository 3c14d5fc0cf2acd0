"""``python -m exporter.healthcheck`` (the image's HEALTHCHECK) against a real exporter process:
it follows the listen address and TLS that the exporter itself takes from
CREDITS_EXPORTER_WEB_LISTEN_ADDRESS and CREDITS_EXPORTER_WEB_CONFIG_FILE, passes only while
/healthz answers 200, and never exits with Docker's reserved code 2."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import trustme
import yaml

from exporter.listen import LISTEN_ADDRESS_ENV, WEB_CONFIG_FILE_ENV, local_url
from support import exporter_command, free_port, wait_for

ENV_NAMES = (LISTEN_ADDRESS_ENV, WEB_CONFIG_FILE_ENV)


def healthcheck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return subprocess.run(
        [sys.executable, "-m", "exporter.healthcheck", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("address", "url"),
    [
        (":9966", "http://127.0.0.1:9966/healthz"),
        ("0.0.0.0:9100", "http://127.0.0.1:9100/healthz"),
        ("[::]:9100", "http://[::1]:9100/healthz"),
        ("[::1]:80", "http://[::1]:80/healthz"),
        ("10.1.2.3:9966", "http://10.1.2.3:9966/healthz"),
        ("exporter.internal:443", "http://exporter.internal:443/healthz"),
    ],
)
def test_local_url(address: str, url: str) -> None:
    assert local_url(address, "http", "/healthz") == url


@pytest.fixture
def tls_web_config(tmp_path: Path) -> Path:
    """TLS and basic auth (which /healthz is exempt from)."""
    cert = trustme.CA().issue_cert("exporter.example")  # not 127.0.0.1: not verified locally
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    hashed = bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "web.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"},
                "basic_auth_users": {"prometheus": hashed},
            }
        )
    )
    return path


@dataclass
class Running:
    env: dict[str, str]
    proc: subprocess.Popen[bytes]


@pytest.fixture
def exporter(tmp_path: Path, tls_web_config: Path) -> Iterator[Running]:
    """An exporter configured through the environment only, as the image is meant to be."""
    config = tmp_path / "config.yaml"
    closed = free_port()  # the provider's API: a closed local port
    config.write_text(
        yaml.safe_dump(
            {
                "accounts": [
                    {
                        "name": "sales",
                        "provider": "fullenrich",
                        "api_key": "hc-test-key",
                        "base_url": f"http://127.0.0.1:{closed}",
                    }
                ]
            }
        )
    )
    env = {
        LISTEN_ADDRESS_ENV: f"127.0.0.1:{free_port()}",
        WEB_CONFIG_FILE_ENV: str(tls_web_config),
    }
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    log = (tmp_path / "exporter.log").open("wb")
    proc = subprocess.Popen(
        [*exporter_command(), f"--config.file={config}"],
        env={**clean, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        yield Running(env, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_follows_the_listen_address_and_tls_of_the_environment(exporter: Running) -> None:
    env = exporter.env

    def healthy() -> bool:
        return healthcheck(env).returncode == 0

    wait_for(healthy, timeout=30)
    # Without the variables it looks at the default :9966 over plain HTTP: not this exporter.
    assert healthcheck({}).returncode == 1
    # The right port over plain HTTP fails too: it really speaks TLS to this one.
    plain = healthcheck({LISTEN_ADDRESS_ENV: env[LISTEN_ADDRESS_ENV]})
    assert plain.returncode == 1 and "unhealthy" in plain.stderr
    # The flags say the same as the variables, and win over them.
    flags = [
        f"--web.listen-address={env[LISTEN_ADDRESS_ENV]}",
        f"--web.config.file={env[WEB_CONFIG_FILE_ENV]}",
    ]
    assert healthcheck({LISTEN_ADDRESS_ENV: "127.0.0.1:1"}, *flags).returncode == 0
    exporter.proc.terminate()
    wait_for(lambda: healthcheck(env).returncode == 1, timeout=30)


class _Status(BaseHTTPRequestHandler):
    status = 503

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_an_unhealthy_answer_and_bad_input_exit_1_never_2(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = healthcheck({LISTEN_ADDRESS_ENV: f"127.0.0.1:{server.server_address[1]}"})
        assert result.returncode == 1 and "HTTP 503" in result.stderr
    finally:
        server.shutdown()
        server.server_close()
    assert healthcheck({}, "--no-such-flag").returncode == 1
    assert healthcheck({LISTEN_ADDRESS_ENV: "no port"}).returncode == 1
    missing = str(tmp_path / "missing.yaml")
    assert healthcheck({WEB_CONFIG_FILE_ENV: missing}).returncode == 1
