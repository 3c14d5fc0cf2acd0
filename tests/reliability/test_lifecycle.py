"""Stopping: SIGTERM ends the process within 5 s (exit 0) while polls hang upstream and clients
hold connections to /metrics; in-process, stop() leaves no task, no open upstream connection
and a closed client session behind."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from exporter.config import parse_config
from exporter.daemon import Daemon
from support import ExporterProcess, http_get, wait_for

KEY = "sk_lifecycle_0123456789abcdef"
#: A deadline for a stop that hangs; the polls' own timeout (a minute) is far beyond it.
HANG_GUARD = 30.0


class HangServer:
    """Accepts TCP connections, reads what comes, never answers. Counts connections open."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.open = 0
        self.total = 0
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, name="hang-server", daemon=True)
        self._ready = threading.Event()
        self._handlers: set[asyncio.Task[None]] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        self.open += 1
        self.total += 1
        try:
            while await reader.read(65536):
                pass  # never answer
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        self.loop.run_until_complete(serve())
        self._ready.set()
        self.loop.run_forever()

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            # Finish every handler on this loop: a handler left pending would be collected
            # later, during another test, as an unraisable "Event loop is closed".
            handlers = list(self._handlers)
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            self.loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def hang() -> Iterator[HangServer]:
    server = HangServer()
    server.start()
    yield server
    server.stop()


def hanging_accounts(url: str, n: int = 6) -> dict[str, Any]:
    providers = ["theirstack", "windsurf", "fullenrich"]
    return {
        "defaults": {"interval": "1s", "timeout": "1m"},
        "accounts": [
            {
                "name": f"hang{i}",
                "provider": providers[i % 3],
                "api_key": f"{KEY}{i}",
                "base_url": url,
            }
            for i in range(n)
        ],
    }


def loops(config: dict[str, Any]) -> int:
    # theirstack polls two endpoints
    return sum(2 if a["provider"] == "theirstack" else 1 for a in config["accounts"])


def in_flight() -> list[asyncio.Task[object]]:
    """The scheduler's polls running now (each task is named after its account)."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("poll ")]


def test_sigterm_cancels_the_polls_in_flight(hang: HangServer, start_exporter: Any) -> None:
    config = hanging_accounts(f"http://127.0.0.1:{hang.port}")
    exp: ExporterProcess = start_exporter(config)
    exp.wait_healthy()
    wait_for(lambda: hang.open >= loops(config))  # every poll is in flight, hanging
    # Clients hold connections: an idle keep-alive one, and one stuck mid-request.
    idle = socket.create_connection(("127.0.0.1", exp.port))
    idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(1024).startswith(b"HTTP/1.1 200")
    stuck = socket.create_connection(("127.0.0.1", exp.port))
    stuck.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    assert http_get(f"{exp.url}/readyz")[0] == 503  # nothing answered yet

    exp.signal(signal.SIGTERM)
    code = exp.proc.wait(timeout=HANG_GUARD)
    assert code == 0, exp.logs()
    logs = exp.logs()
    # Within its own stop timeout: the hanging polls were cancelled, not waited for.
    assert "exporter stopped" in logs and "stop timed out" not in logs
    assert "Traceback" not in logs
    wait_for(lambda: hang.open == 0, timeout=5)
    idle.close()
    stuck.close()


async def test_stop_leaves_nothing_behind(hang: HangServer) -> None:
    raw = hanging_accounts(f"http://127.0.0.1:{hang.port}")
    import yaml

    config = parse_config(yaml.safe_dump(raw), env={})
    daemon = Daemon(config, listen_address="127.0.0.1:0")
    await daemon.start()
    assert daemon.bound_port is not None
    deadline = time.monotonic() + 10
    while hang.open < loops(raw):
        assert time.monotonic() < deadline, hang.open
        await asyncio.sleep(0.05)
    session = daemon._session
    assert session is not None and not session.closed
    running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert len(running) >= loops(raw)  # the poll loops (and the renderer)
    polls = in_flight()
    assert len(polls) == loops(raw)

    async with asyncio.timeout(HANG_GUARD):
        await daemon.stop()
    assert all(t.cancelled() for t in polls)  # cancelled, not left to their 1-minute timeout
    await asyncio.sleep(0)  # let cancelled callbacks run
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert left == [], left
    assert session.closed
    # Every upstream connection was closed (the hanging server saw them go)...
    deadline = time.monotonic() + 5
    while hang.open:
        assert time.monotonic() < deadline, hang.open
        await asyncio.sleep(0.05)
    # ...and nothing listens any more.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", daemon.bound_port), timeout=1).close()


async def test_run_until_signalled_stops_on_request(hang: HangServer) -> None:
    """The path SIGTERM takes (the handler sets ``stopping``), in-process."""
    raw = hanging_accounts(f"http://127.0.0.1:{hang.port}", n=3)
    import yaml

    daemon = Daemon(parse_config(yaml.safe_dump(raw), env={}), listen_address="127.0.0.1:0")
    runner = asyncio.create_task(daemon.run_until_signalled())
    deadline = time.monotonic() + 10
    while hang.open < loops(raw):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    polls = in_flight()
    assert len(polls) == loops(raw)
    daemon.stopping.set()
    await asyncio.wait_for(runner, HANG_GUARD)
    assert all(t.cancelled() for t in polls)  # cancelled, not left to their 1-minute timeout
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    assert daemon._session is not None and daemon._session.closed
