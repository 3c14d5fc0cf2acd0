"""Keeping the web port usable when clients hold connections without using them.

Three bounds, the way Go servers set ``ReadHeaderTimeout`` and ``netutil.LimitListener``:

* A new connection must deliver a complete request head within :data:`HEAD_TIMEOUT` (with TLS:
  the handshake too), or it is closed. Between two requests of a kept-alive connection, aiohttp's
  own keep-alive timer (:data:`KEEPALIVE_TIMEOUT`) does the same.
* At most :func:`connection_limit` connections are open at once, a quarter of the open-files
  limit (so the process never runs out of descriptors for its own polls and files).
* At that limit, a new connection makes room: the oldest connection that is not in a request
  (one that never sent a complete head, else the longest idle kept-alive one) is closed. So a
  probe of ``/healthz`` is answered however many idle or slow clients there are. If every
  connection is in a request, the new one is answered ``503`` and closed.

Reaching the limit is logged once, and once more when the connections fall back under half of
it (with how many were closed or refused meanwhile): never once per connection.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Awaitable, Callable
from ssl import SSLContext
from typing import Any

from aiohttp import web

from .log import get_logger

log = get_logger("exporter.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Seconds a new connection has to send a complete request head (TLS handshake included).
HEAD_TIMEOUT = 10.0
#: Seconds a kept-alive connection may wait for its next request (aiohttp's keep-alive timer).
KEEPALIVE_TIMEOUT = 75.0
#: The most connections open at once, whatever the open-files limit.
MAX_CONNECTIONS = 512
MIN_CONNECTIONS = 8

_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 21\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"too many connections\n"
)


def connection_limit(open_files: int | None = None) -> int:
    """A quarter of the open-files limit (the soft one, by default), between
    :data:`MIN_CONNECTIONS` and :data:`MAX_CONNECTIONS`."""
    if open_files is None:
        open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if open_files == resource.RLIM_INFINITY or open_files < 0:
        return MAX_CONNECTIONS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, open_files // 4))


class _Connection(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection: counts it, times its first request head
    and closes it when the guard needs the room."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.opened = self.loop.time()
        #: Requests in progress (0: waiting for one); None until the first one starts.
        self.busy: int | None = None
        self.idle_since = self.opened
        self.refused = False
        self.timer: asyncio.TimerHandle | None = self.loop.call_later(
            guard.head_timeout, self._head_timeout
        )

    # -- asyncio.Protocol, forwarded to aiohttp's protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.guard.connected(self)
        if self.refused:
            transport.write(_BUSY_RESPONSE)
            transport.close()
            return
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.refused:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self.refused else self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.guard.forget(self)
        if not self.refused:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if not self.refused:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if not self.refused:
            self.inner.resume_writing()

    # -- the guard's side

    def request_started(self) -> None:
        self._cancel_timer()
        self.busy = (self.busy or 0) + 1

    def request_finished(self) -> None:
        self.busy = max(0, (self.busy or 1) - 1)
        self.idle_since = self.loop.time()

    @property
    def idle(self) -> bool:
        """Not in a request, nothing left to send: closing it loses nothing."""
        return (
            not self.busy
            and self.transport is not None
            and not self.refused
            and self.transport.get_write_buffer_size() == 0
        )

    def close(self) -> None:
        self._cancel_timer()
        self.guard.forget(self)
        if self.transport is not None:
            self.transport.abort()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _head_timeout(self) -> None:
        self.timer = None
        if self.busy is not None:
            return
        # No transport yet: a TLS handshake still pending (the TLS layer drops it at the same
        # timeout, without telling this protocol): only stop counting it.
        if self.transport is not None:
            log.debug("connection closed: no request within the head timeout", peer=self.peer)
        self.close()

    @property
    def peer(self) -> str | None:
        if self.transport is None:
            return None
        peer = self.transport.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) and peer else None


class ConnectionGuard:
    """The connections of one server: see the module's docstring."""

    def __init__(self, limit: int, head_timeout: float = HEAD_TIMEOUT) -> None:
        self.limit = limit
        self.head_timeout = head_timeout
        #: Open connections, oldest first.
        self._open: dict[_Connection, None] = {}
        self._by_transport: dict[asyncio.BaseTransport, _Connection] = {}
        self.saturated = False
        self.closed_for_room = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._open)

    @property
    def backlog(self) -> int:
        """The listen backlog, which is also how many connections asyncio accepts in one go
        (before this guard sees any): a quarter of the limit, so a burst cannot take the
        process's last descriptors between two looks."""
        return max(MIN_CONNECTIONS, min(128, self.limit // 4))

    def protocol_factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], Any]:
        def make() -> _Connection:
            conn = _Connection(self, inner())
            self._open[conn] = None
            return conn

        return make

    def connected(self, conn: _Connection) -> None:
        """``conn`` is ready (accepted; with TLS, handshaken): make room for it if needed."""
        assert conn.transport is not None
        self._open.setdefault(conn, None)  # if its TLS handshake outlasted the head timer
        self._by_transport[conn.transport] = conn
        if len(self._open) > self.limit:
            self._make_room(conn)

    def forget(self, conn: _Connection) -> None:
        self._open.pop(conn, None)
        if conn.transport is not None:
            self._by_transport.pop(conn.transport, None)
        if self.saturated and len(self._open) < self.limit // 2:
            self.saturated = False
            log.info(
                "connections back under the limit",
                limit=self.limit,
                closed_idle=self.closed_for_room,
                refused=self.refused,
            )
            self.closed_for_room = self.refused = 0

    def _make_room(self, new: _Connection) -> None:
        victim = self._victim(new)
        if victim is not None:
            victim.close()
            self.closed_for_room += 1
        else:
            new.refused = True
            self.refused += 1
        if not self.saturated:
            self.saturated = True
            log.warning(
                "connection limit reached: closing idle connections",
                limit=self.limit,
                head_timeout=self.head_timeout,
            )

    def _victim(self, new: _Connection) -> _Connection | None:
        """The oldest connection that never started a request, else the longest idle one."""
        longest_idle: _Connection | None = None
        for conn in self._open:
            if conn is new or not conn.idle:
                continue
            if conn.busy is None:
                return conn
            if longest_idle is None or conn.idle_since < longest_idle.idle_since:
                longest_idle = conn
        return longest_idle

    # -- requests (an aiohttp middleware tells which connection is in one)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        conn = self._by_transport.get(transport) if transport is not None else None
        if conn is None:
            return await handler(request)
        conn.request_started()
        try:
            return await handler(request)
        finally:
            conn.request_finished()

    def install(self, app: web.Application) -> None:
        """Make ``app`` report its requests to this guard (before any other middleware)."""
        app.middlewares.insert(0, self.middleware)


class GuardedSite(web.BaseSite):
    """A TCP site (optionally TLS) whose connections go through a :class:`ConnectionGuard`."""

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: ConnectionGuard,
        host: str | None,
        port: int,
        *,
        ssl_context: SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self.guard = guard
        self.host = host
        self.port = port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self.host or '0.0.0.0'}:{self.port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.guard.protocol_factory(server),
            self.host,
            self.port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self.guard.head_timeout if self._ssl_context else None,
            backlog=self.guard.backlog,
            reuse_address=True,
        )
