"""The simulator on its own event loop in a daemon thread, for synchronous code."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from .server import Simulator


class SimulatorThread:
    """A :class:`Simulator` on its own event loop in a daemon thread (for synchronous tests and
    tests that run the exporter in a subprocess). The pass-throughs are thread-safe: the
    simulator's state sits behind a lock."""

    def __init__(
        self, simulator: Simulator | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.simulator = simulator or Simulator()
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        if self._thread is not None:
            raise RuntimeError("already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        result: dict[str, Any] = {}

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                try:
                    start = self.simulator.start(self._host, self._port)
                    result["url"] = loop.run_until_complete(start)
                except BaseException as exc:  # reported to the starting thread
                    result["error"] = exc
                    return
                finally:
                    ready.set()
                loop.run_forever()
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="credits-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        if "error" in result:
            self._thread.join()
            self._thread = self._loop = None
            raise RuntimeError("simulator failed to start") from result["error"]
        return str(result["url"])

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self.simulator.stop(), loop)
        with contextlib.suppress(Exception):
            future.result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> SimulatorThread:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.simulator.url

    def add_account(self, provider: str, api_key: str, **fields: Any) -> None:
        self.simulator.add_account(provider, api_key, **fields)

    def update(self, api_key: str, **fields: Any) -> None:
        self.simulator.update(api_key, **fields)

    def calls(self, api_key: str | None = None, path: str | None = None) -> int:
        return self.simulator.calls(api_key, path)

    def advance(self, seconds: float) -> None:
        self.simulator.advance(seconds)

    def base_url(self, provider: str) -> str:
        return self.simulator.base_url(provider)

    def accounts(self) -> dict[str, dict[str, Any]]:
        return self.simulator.accounts()

    def reset_calls(self) -> None:
        self.simulator.reset_calls()
