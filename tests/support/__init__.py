"""The tests' shared helpers: programs that must exist under REQUIRE_INTEGRATION=1, free ports,
waiting with deadlines, the exporter and other programs as subprocesses, scraped samples.

The other modules of this package: ``polling`` (the scheduler on virtual time with a recording
upstream), ``monitoring`` (the rules and dashboards of prometheus/ and
grafana/), ``pipeline`` (simulator, exporter, Prometheus and Alertmanager together),
``servers`` (servers in threads, samplers, scrapers, log parsing), ``leaks`` (the one leak
check: any 8 characters of a key, in any form and case), ``browser`` (headless
Chromium), ``demo_data`` (the demo's exporter for the browser tests), ``provider_samples``
(documented answers of every provider, for property tests) and ``reference`` (the
prometheus_client rendering of the store the parity tests hold /metrics to)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn, TypeVar

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.config import parse_config
from exporter.credentials import key_forms
from exporter.daemon import Daemon
from exporter.http import AccountClient, HttpClient
from exporter.ratelimit import KeyLimiter

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def account_client(
    session: aiohttp.ClientSession,
    *,
    secret: str = "test-key",
    timeout: float = 5.0,
    max_body_bytes: int = 1024 * 1024,
) -> AccountClient:
    """The client a provider's ``fetch`` gets from the scheduler, for a call outside it (no
    pacing of its own; headers and 429s still hold its limiter)."""
    return AccountClient(
        HttpClient(session),
        secrets=key_forms(secret),
        timeout=timeout,
        max_body_bytes=max_body_bytes,
        limiter=KeyLimiter(math.inf),
    )


def integration_required() -> bool:
    """REQUIRE_INTEGRATION=1 (as in .ci/run): a missing tool fails instead of skipping."""
    return os.environ.get("REQUIRE_INTEGRATION", "") not in ("", "0", "false", "no")


def missing(what: str) -> NoReturn:
    """Skip the test for want of ``what``, or fail it under REQUIRE_INTEGRATION=1."""
    if integration_required():
        pytest.fail(f"{what} (REQUIRE_INTEGRATION=1)")
    pytest.skip(what)


def require_tool(name: str) -> str:
    """Path of a program the test needs: the running venv's (pip-installed tools), else the one
    on PATH; skip without it, or fail under REQUIRE_INTEGRATION=1."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed")
    return path


def require_module(name: str, package: str) -> ModuleType:
    """The module ``name`` (from the pip package ``package``), as :func:`require_tool`."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"{name} is not importable ({exc}); pip install {package}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    check: Callable[[], T | None],
    timeout: float = 20.0,
    interval: float = 0.1,
    *,
    what: str = "condition",
) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds (a
    deadline for a hung test, not a measure of speed) with the last value or error it gave."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except (OSError, AssertionError, KeyError, ValueError) as exc:
            value, last = None, exc
        else:
            last = value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not met within {timeout:.0f}s (last: {last!r})")
        time.sleep(interval)


def http_get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 5
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_post(url: str, timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run Prometheus's promtool (skip without it, or fail under REQUIRE_INTEGRATION=1)."""
    return subprocess.run(
        [require_tool("promtool"), *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def run_exporter(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``credits-exporter ARGS`` to its end (a minute at most), its output captured."""
    return subprocess.run(
        [*exporter_command(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def exporter_command() -> list[str]:
    exe = Path(sys.executable).with_name("credits-exporter")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "exporter"]


class ExporterProcess:
    """``credits-exporter`` as a real subprocess on a free loopback port."""

    def __init__(
        self,
        config: dict[str, Any] | str,
        tmp_path: Path,
        *,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = tmp_path / f"config-{self.port}.yaml"
        self.write_config(config)
        self.log_path = tmp_path / f"exporter-{self.port}.log"
        self._log = self.log_path.open("wb")
        cmd = [
            *exporter_command(),
            f"--config.file={self.config_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            *(args or []),
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=tmp_path,
            preexec_fn=preexec_fn,
        )

    def write_config(self, config: dict[str, Any] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        self.config_path.write_text(text)

    def wait_healthy(self, timeout: float = 20) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"exporter exited with {self.proc.returncode}:\n{self.logs()}")
            return http_get(f"{self.url}/healthz", timeout=1)[0] == 200

        wait_for(up, timeout)

    def wait_ready(self, timeout: float = 20) -> None:
        self.wait_healthy(timeout)
        wait_for(lambda: http_get(f"{self.url}/readyz", timeout=1)[0] == 200, timeout)

    def metrics(self, headers: dict[str, str] | None = None) -> str:
        status, body = http_get(f"{self.url}/metrics", headers)
        assert status == 200, status
        return body.decode()

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class ManagedProcess:
    """A program as a subprocess in its own session, its output in a log file; stopping it
    ends its whole process group."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, cwd: Path | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd or log_dir,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


#: An exposition's samples: {(sample name, labels): value}.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def sample_values(text: str) -> Samples:
    """Parse an exposition into {(sample name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The one sample of ``name`` whose labels include ``labels``; None when absent."""
    hits = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)]
    assert len(hits) <= 1, f"{name}{labels} is ambiguous: {hits}"
    return hits[0] if hits else None


def present(samples: Samples, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``; fails when absent."""
    found = value(samples, name, **labels)
    assert found is not None, f"no sample {name}{labels}"
    return found


@contextlib.asynccontextmanager
async def daemon_polling(gate: asyncio.Event) -> AsyncIterator[Daemon]:
    """A started daemon with one account whose first poll is answered once ``gate`` is set."""

    async def credits(request: web.Request) -> web.Response:
        await gate.wait()
        return web.json_response({"balance": 12.5})

    app = web.Application()
    app.router.add_get("/account/credits", credits)
    async with TestServer(app) as upstream:
        config = parse_config(
            f"accounts: [{{name: a, provider: fullenrich, api_key: k, "
            f"base_url: '{upstream.make_url('')}'}}]",
            env={},
        )
        daemon = Daemon(config, listen_address="127.0.0.1:0")
        await daemon.start()
        try:
            yield daemon
        finally:
            await daemon.stop()
            gate.set()
