"""Helpers shared by the reliability tests: servers in threads, a sampler of upstream calls, a
background scraper that checks every body for leaks (:mod:`support.leaks`), logfmt parsing."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exporter.simulator import SimulatorThread

from .leaks import find_secrets


class AppThread:
    """An aiohttp application served on its own event loop in a daemon thread."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        ready = threading.Event()

        async def serve() -> None:
            self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            self.port = int(self._runner.addresses[0][1])
            self.url = f"http://{self.host}:{self.port}"

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(serve())
            ready.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="test-app", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.url

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self._thread = None


class Recorder(AppThread):
    """A server that records every request it receives, headers and body included: the
    'other host' of a redirect, to prove no credential ever reaches it."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._record)
        super().__init__(app)

    async def _record(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path_qs": request.path_qs,
                "headers": dict(request.headers),
                "body": body.decode(errors="replace"),
            }
        )
        return web.json_response({"stolen": True})


@dataclass
class CallSampler:
    """Samples the simulator's per-(key, path) call counters every ``period`` seconds in a
    thread, so the test can tell when each upstream call arrived (to within a period)."""

    sim: SimulatorThread
    pairs: list[tuple[str, str]]
    period: float = 0.1
    #: (when the sample's counts were all read, the counts).
    samples: list[tuple[float, tuple[int, ...]]] = field(default_factory=list)
    #: When each sample began reading its counts.
    began: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _take(self) -> None:
        began = time.monotonic()
        counts = tuple(self.sim.calls(api_key=k, path=p) for k, p in self.pairs)
        self.samples.append((time.monotonic(), counts))
        self.began.append(began)

    def start(self) -> None:
        def run() -> None:
            while not self._stop.wait(self.period):
                self._take()

        self._take()
        self._thread = threading.Thread(target=run, name="call-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._take()

    def _index(self, pair: tuple[str, str]) -> int:
        return self.pairs.index(pair)

    def count_at(self, pair: tuple[str, str], t: float) -> int:
        """Calls counted by the last sample at or before ``t``."""
        i = self._index(pair)
        count = 0
        for ts, counts in self.samples:
            if ts > t:
                break
            count = counts[i]
        return count

    def calls_between(self, pair: tuple[str, str], t0: float, t1: float) -> int:
        return self.count_at(pair, t1) - self.count_at(pair, t0)

    def call_times(self, pair: tuple[str, str], t0: float, t1: float) -> list[float]:
        """Approximate arrival times of the calls in (t0, t1]: the time of the sample that
        first counted each (two calls within one period share a time)."""
        i = self._index(pair)
        out: list[float] = []
        prev: int | None = None
        for ts, counts in self.samples:
            if ts < t0:
                prev = counts[i]
                continue
            if ts > t1:
                break
            if prev is not None and counts[i] > prev:
                out.extend([ts] * (counts[i] - prev))
            prev = counts[i]
        return out

    def call_windows(self, pair: tuple[str, str], t0: float, t1: float) -> list[Window]:
        """When each call in (t0, t1] arrived, for certain: after the previous sample began
        reading (it did not count the call), by the time the sample that first counted it had
        read. Exact whatever the load: a sample taken late widens its window, it never moves
        a call."""
        i = self._index(pair)
        out: list[Window] = []
        for k in range(1, len(self.samples)):
            ts, counts = self.samples[k]
            if ts < t0:
                continue
            if ts > t1:
                break
            new = counts[i] - self.samples[k - 1][1][i]
            out.extend([Window(self.began[k - 1], ts)] * new)
        return out


@dataclass(frozen=True)
class Window:
    """A call arrived after ``after`` and by ``by``."""

    after: float
    by: float


def longest_gaps(windows: Iterable[Window]) -> list[float]:
    """For each two calls in a row, the longest they can have been apart: a gap shorter than
    wanted is certain only when even this is shorter."""
    ordered = sorted(windows, key=lambda w: w.by)
    return [max(b.by - a.after, a.by - b.after) for a, b in itertools.pairwise(ordered)]


class Scraper:
    """GETs a URL every ``period`` seconds in a thread and records what came back; each body
    is checked for ``secrets`` at once (bodies are not kept)."""

    def __init__(
        self, url: str, secrets: Iterable[str], period: float = 0.2, timeout: float = 5.0
    ) -> None:
        self.url = url
        self.secrets = list(secrets)
        self.period = period
        self.timeout = timeout
        self.results: list[tuple[float, int | str]] = []
        self.leaks: list[str] = []
        self.last_body = b""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        def run() -> None:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    with urllib.request.urlopen(self.url, timeout=self.timeout) as resp:
                        body = resp.read()
                        outcome: int | str = resp.status
                except urllib.error.HTTPError as exc:
                    body, outcome = exc.read(), exc.code
                except OSError as exc:
                    body, outcome = b"", f"{type(exc).__name__}: {exc}"
                self.results.append((started, outcome))
                self.last_body = body or self.last_body
                self.leaks.extend(find_secrets(body.decode(errors="replace"), self.secrets))
                self._stop.wait(self.period)

        self._thread = threading.Thread(target=run, name="scraper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + 2)


_LOGFMT = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def logfmt(line: str) -> dict[str, str]:
    """One logfmt line -> {key: value} (quotes removed)."""
    out = {}
    for key, value in _LOGFMT.findall(line):
        out[key] = value[1:-1] if value.startswith('"') else value
    return out
