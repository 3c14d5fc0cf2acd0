"""Shared helpers for tests that run real programs: the exporter as a subprocess, tools that
must exist under REQUIRE_INTEGRATION=1, free ports, polling with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
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
from typing import Any, TypeVar

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
from exporter.scheduler import Scheduler
from exporter.store import Store

ROOT = Path(__file__).resolve().parents[1]
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
    return os.environ.get("REQUIRE_INTEGRATION", "") not in ("", "0", "false")


def require_tool(name: str) -> str:
    """Path of a program the test needs; skip without it, or fail under REQUIRE_INTEGRATION=1."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not installed"
        if integration_required():
            pytest.fail(f"{msg} (REQUIRE_INTEGRATION=1)")
        pytest.skip(msg)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], T | None], timeout: float = 20.0, interval: float = 0.1) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, AssertionError, KeyError, ValueError) as exc:
            last_exc = exc
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last error: {last_exc!r})")


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


def sample_values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse an exposition into {(sample name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    """The one sample of ``name`` whose labels include ``labels``; None when absent."""
    hits = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)]
    assert len(hits) <= 1, f"{name}{labels} is ambiguous: {hits}"
    return hits[0] if hits else None


async def run_scheduler(config_text: str, seconds: float) -> Store:
    """Run a Scheduler for ``config_text`` for ``seconds`` against real HTTP, stop it, and return
    its Store; asserts that stopping leaves no polling task behind."""
    store = Store()
    async with aiohttp.ClientSession() as session:
        sched = Scheduler(store, HttpClient(session), parse_config(config_text, env={}))
        await sched.start()
        await asyncio.sleep(seconds)
        await sched.stop()
        assert not sched.tasks
    return store


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
