"""The tests' shared helpers: programs that must exist under REQUIRE_INTEGRATION=1, free ports,
waiting with deadlines, the exporter and other programs as subprocesses, scraped samples, and
the scheduler on virtual time with a recording upstream.

The other modules of this package: ``monitoring`` (the rules and dashboards of prometheus/ and
grafana/), ``pipeline`` (simulator, exporter, Prometheus and Alertmanager together),
``servers`` (servers in threads, samplers, scrapers, log parsing), ``browser`` (headless
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
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn, TypeVar

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.config import parse_config
from exporter.daemon import Daemon
from exporter.http import AccountClient, HttpClient
from exporter.ratelimit import KeyLimiter, RateLimits
from exporter.scheduler import PollLoop, Scheduler
from exporter.store import Store

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
        secret=secret,
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


# --------------------------------------------------------------------------- virtual time


@dataclass
class Upstream:
    """A FullEnrich-shaped credits API on loopback that records every call by API key, at the
    time ``clock`` says, and answers as ``mode`` (by key) says: ``ok``, ``slow`` (0.3 s),
    ``hang`` (30 s), ``500``, ``429`` (``Retry-After: 2``) or ``garbage`` (HTML); ``status``
    and ``headers`` (by key) change an ``ok`` answer's status and headers."""

    clock: Callable[[], float] = time.monotonic
    calls: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    mode: dict[str, str] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.calls[key].append(self.clock())
        mode = self.mode.get(key, "ok")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if mode == "slow":
                await asyncio.sleep(0.3)
            if mode == "hang":
                await asyncio.sleep(30)
            if mode == "500":
                return web.json_response({"message": "boom"}, status=500)
            if mode == "429":
                return web.json_response(
                    {"message": "slow"}, status=429, headers={"Retry-After": "2"}
                )
            if mode == "garbage":
                return web.Response(text="<html>", content_type="text/html")
            return web.json_response(
                {"balance": 10}, status=self.status.get(key, 200), headers=self.headers.get(key)
            )
        finally:
            self.in_flight -= 1

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Serve it on a free port; yields the base URL a fullenrich account's ``base_url``
        takes."""
        app = web.Application()
        app.router.add_get("/api/v2/account/credits", self.handle)
        async with TestServer(app) as server:
            yield str(server.make_url("/api/v2"))


def fullenrich_accounts(base: str, specs: list[tuple[str, str]], extra: str = "") -> str:
    """A config of fullenrich accounts at ``base``: (name, interval) each, key ``<name>-key``,
    no pacing of their keys unless ``extra`` (more flow-mapping entries) sets it."""
    rate = "" if "rate_limit" in extra else ", rate_limit: unlimited"
    lines = [
        f"  - {{name: {n}, provider: fullenrich, api_key: {n}-key, base_url: '{base}', "
        f"interval: {i}{rate}{extra}}}"
        for n, i in specs
    ]
    return "accounts:\n" + "\n".join(lines)


class VirtualTime:
    """Time for a :class:`~exporter.scheduler.Scheduler` that moves only when the test says.

    The scheduler's timers between polls (``loop.call_later``) are recorded with the delay
    asked for (:attr:`delays`) and fire only through :meth:`fire` or :meth:`run`; its rate
    limiters take :meth:`clock` and :meth:`sleep` (:meth:`limits`). Everything else (sockets,
    request timeouts, ``asyncio.sleep``) keeps the event loop's real time, so the upstream is a
    real server and a test asserts what was scheduled, never how long something took."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time()
        #: Every delay the scheduler asked for, by (account, endpoint), in order.
        self.delays: dict[tuple[str, str], list[float]] = defaultdict(list)
        self._timers: dict[PollLoop, tuple[asyncio.TimerHandle, Callable[[PollLoop], None]]] = {}
        self._sleepers: dict[asyncio.Task[Any] | None, tuple[float, asyncio.Future[None]]] = {}
        real = self.loop.call_later

        def call_later(delay: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            if not isinstance(getattr(callback, "__self__", None), Scheduler):
                return real(delay, callback, *args, **kwargs)
            (poll_loop,) = args
            self.delays[(poll_loop.state.name, poll_loop.endpoint)].append(delay)
            handle = asyncio.TimerHandle(self.now + delay, callback, args, self.loop)
            self._timers[poll_loop] = (handle, callback)
            return handle

        monkeypatch.setattr(self.loop, "call_later", call_later)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = self.loop.create_future()
        self._sleepers[asyncio.current_task()] = (self.now + seconds, future)
        await future

    def limits(self) -> RateLimits:
        return RateLimits(clock=self.clock, sleep=self.sleep)

    def pending(self, poll_loop: PollLoop) -> asyncio.TimerHandle | None:
        """The loop's timer that has not fired (nor been cancelled) yet."""
        handle, _ = self._timers.get(poll_loop, (None, None))
        return None if handle is None or handle.cancelled() else handle

    def fire(self, poll_loop: PollLoop) -> None:
        """Move time to the loop's pending timer and fire it: its next poll starts."""
        handle, callback = self._timers.pop(poll_loop)
        assert not handle.cancelled(), "the loop's timer was cancelled"
        self.now = max(self.now, handle.when())
        callback(poll_loop)

    async def poll_again(self, scheduler: Scheduler, poll_loop: PollLoop, times: int = 1) -> None:
        """Fire the loop's timer and let its poll finish, ``times`` times over."""
        for _ in range(times):
            self.fire(poll_loop)
            await self.settle(scheduler)

    def _blocked(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task`` waits for virtual time: asleep, or queued behind a limiter's lock
        whose holder is asleep."""
        sleeping = self._sleepers.get(task)
        if sleeping is not None and not sleeping[1].done():
            return True
        coro: Any = task.get_coro()
        while getattr(coro, "cr_await", None) is not None and hasattr(coro.cr_await, "cr_code"):
            coro = coro.cr_await
        return getattr(coro, "cr_code", None) is asyncio.Lock.acquire.__code__

    async def settle(self, scheduler: Scheduler, timeout: float = 30.0) -> None:
        """Let the real world catch up: wait until every poll in flight waits for virtual
        time (twice in a row, so that a task just woken has run)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            await asyncio.sleep(0.001)
            live = [t for loop in scheduler.tasks.values() if (t := loop.task) is not None]
            quiet = quiet + 1 if all(self._blocked(t) for t in live) else 0
            assert time.monotonic() < deadline, "the polls in flight never settled"

    async def run(self, scheduler: Scheduler, until: float) -> None:
        """Run the scheduler up to ``until`` seconds of virtual time from now: in order, every
        timer and sleep that falls due, each once the polls before it have settled."""
        end = self.now + until
        while True:
            await self.settle(scheduler)
            timers = [
                (h.when(), loop) for loop, (h, _) in self._timers.items() if not h.cancelled()
            ]
            sleeps = [(when, task) for task, (when, f) in self._sleepers.items() if not f.done()]
            next_timer = min(timers, key=lambda t: t[0], default=None)
            next_sleep = min(sleeps, key=lambda s: s[0], default=None)
            if next_sleep is not None and (next_timer is None or next_sleep[0] < next_timer[0]):
                if next_sleep[0] > end:
                    break
                self.now = max(self.now, next_sleep[0])
                self._sleepers.pop(next_sleep[1])[1].set_result(None)
            elif next_timer is not None and next_timer[0] <= end:
                self.fire(next_timer[1])
            else:
                break
        self.now = max(self.now, end)


async def until(check: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Await until ``check`` returns something truthy (the event loop runs meanwhile); fail
    after ``timeout`` seconds, a deadline for a hung test, not a measure of speed."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        await asyncio.sleep(0.005)
    return value


@dataclass
class Polling:
    """A real upstream, a store and virtual time: :meth:`start` builds a Scheduler on them."""

    upstream: Upstream
    base: str
    time: VirtualTime
    store: Store
    http: HttpClient
    schedulers: list[Scheduler] = field(default_factory=list)

    async def start(self, config_text: str) -> Scheduler:
        scheduler = Scheduler(self.store, self.http, parse_config(config_text, env={}))
        scheduler.limits = self.time.limits()
        await scheduler.start()
        self.schedulers.append(scheduler)
        return scheduler


@contextlib.asynccontextmanager
async def polling(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Polling]:
    """A :class:`Polling` rig; its schedulers are stopped at the end."""
    vt = VirtualTime(monkeypatch)
    upstream = Upstream(clock=vt.clock)
    async with upstream.serve() as base, aiohttp.ClientSession() as session:
        rig = Polling(upstream, base, vt, Store(), HttpClient(session))
        try:
            yield rig
        finally:
            for scheduler in rig.schedulers:
                await scheduler.stop()


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
