"""The :class:`Simulator`: every simulated API on one aiohttp application, each request
answered from the simulated world, counted, and delayed, refused or broken as the account's
switches say."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from .api import JSON, Call, Endpoint, Reply, SimulatedApi
from .control import add_control_routes
from .demo import demo_states
from .faults import failure_for, failure_reply, send
from .limits import rate_limit
from .registry import SIMULATED_APIS
from .state import SimState


class Simulator(SimState):
    """The simulated APIs and their state (:class:`~exporter.simulator.state.SimState`, whose
    methods are thread-safe) served on the running loop by :meth:`start`."""

    def __init__(
        self, *, seed_demo: bool = False, clock: Callable[[], float] | None = None
    ) -> None:
        super().__init__(clock=clock)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._stopping: asyncio.Event | None = None
        self.app = web.Application()
        for api in SIMULATED_APIS.values():
            for endpoint in api.endpoints:
                self.app.router.add_route(
                    endpoint.method, api.mount + endpoint.path, self._handler(api, endpoint)
                )
        add_control_routes(self.app, self)
        if seed_demo:
            for api_key, (provider, fields) in demo_states(self.now()).items():
                self.add_account(provider, api_key, **fields)

    # ------------------------------------------------------------------ serving

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on the running loop; returns the base URL ``http://HOST:PORT``."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        address = runner.addresses[0]
        url_host = str(address[0])
        if url_host in ("0.0.0.0", "::", ""):
            url_host = "127.0.0.1"
        if ":" in url_host:
            url_host = f"[{url_host}]"
        self._runner = runner
        self._url = f"http://{url_host}:{address[1]}"
        return self._url

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._url = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("simulator not started")
        return self._url

    def base_url(self, provider: str) -> str:
        """The ``base_url`` an exporter account of ``provider`` should use."""
        return self.url + SIMULATED_APIS[provider].mount

    async def _pause(self, seconds: float) -> bool:
        """Sleep; True if the simulator is stopping (cut the sleep short)."""
        if self._stopping is None:
            await asyncio.sleep(seconds)
            return False
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ provider requests

    def _handler(
        self, api: SimulatedApi, endpoint: Endpoint
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            body: JSON = None
            if api.json_body:
                raw = await request.read()
                with contextlib.suppress(ValueError):
                    body = json.loads(raw) if raw else None
            key, failure = api.credential(request, body)
            with self._lock:
                self._calls[(key or "", request.path)] += 1
                account = self._accounts.get(key) if key else None
                latency = account.latency if account is not None else 0.0
            if latency > 0 and await self._pause(latency):
                return web.json_response(api.error(503, None), status=503)
            with self._lock:
                reply, mode = self._answer(api, endpoint, request, body, key, failure)
            return await send(request, reply, mode, endpoint, self._pause)

        return handle

    def _answer(
        self,
        api: SimulatedApi,
        endpoint: Endpoint,
        request: web.Request,
        body: JSON,
        key: str | None,
        failure: str | None,
    ) -> tuple[Reply, str | None]:
        """The reply to one request and the malformed mode to send it with (under the lock)."""
        refused = api.refusal_status
        if failure is not None or key is None:
            return Reply(refused, api.error(401, failure or "missing")), None
        account = self._accounts.get(key)
        if account is None or account.provider != api.account.provider:
            return Reply(refused, api.error(401, "unknown")), None
        if account.revoked:
            return Reply(refused, api.error(401, "revoked")), None
        now = self.now()
        account.settle(now)
        headers, retry_after = rate_limit(api, account, now)
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
            return Reply(429, api.error(429, "rate_limited"), headers=headers), None
        spec = failure_for(account, request.path)
        if spec is not None:
            return failure_reply(api, spec, headers), None
        reply = endpoint.handler(account, Call(request=request, body=body, now=now))
        reply = Reply(
            reply.status,
            reply.body,
            reply.raw,
            reply.content_type,
            {**headers, **reply.headers},
        )
        return reply, (account.malformed if reply.status == 200 else None)
