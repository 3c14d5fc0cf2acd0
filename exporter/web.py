"""The aiohttp app: /metrics (cached bytes, never calls upstream), the status page,
/healthz, /readyz and POST /-/reload."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import statuspage
from .metrics import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, ExpositionCache
from .store import Store

ReloadFn = Callable[[], Awaitable[list[str]]]
"""Reloads the config; returns the list of errors (empty when the new config applied)."""

STORE_KEY = web.AppKey("store", Store)
CACHE_KEY = web.AppKey("cache", ExpositionCache)
RELOAD_KEY = web.AppKey("reload", object)


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept


def wants_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "gzip":
            q = params.strip()
            if not q.startswith("q="):
                return True
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
    return False


#: Larger bodies are written in slices of this size instead of in one piece: a single write of
#: a 14 MB body is copied whole into the connection's buffer (and joined with the headers)
#: for every scrape in flight; slices keep each connection's buffer under one slice.
STREAM_SLICE = 1 << 20


async def metrics(request: web.Request) -> web.StreamResponse:
    exp = request.app[CACHE_KEY].current
    om = wants_openmetrics(request.headers.get("Accept", ""))
    gz = wants_gzip(request.headers.get("Accept-Encoding", ""))
    if om:
        body, ctype = (exp.openmetrics_gzip if gz else exp.openmetrics), OPENMETRICS_CONTENT_TYPE
    else:
        body, ctype = (exp.text_gzip if gz else exp.text), TEXT_CONTENT_TYPE
    headers = {"Content-Type": ctype, "Vary": "Accept, Accept-Encoding"}
    if gz:
        headers["Content-Encoding"] = "gzip"
    if len(body) <= STREAM_SLICE or request.method != "GET":
        return web.Response(body=body, headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    view = memoryview(body)
    for start in range(0, len(body), STREAM_SLICE):
        await response.write(view[start : start + STREAM_SLICE])
    await response.write_eof()
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    # Ready once every account was polled AND /metrics serves those results.
    exp = request.app[CACHE_KEY].current
    if exp.ready and store.ready() and exp.version >= store.ready_version:
        return web.Response(text="ready\n")
    waiting = sum(1 for s in store.accounts.values() if not s.polled_once)
    why = f"{waiting} account(s) not polled yet" if waiting else "first results not rendered yet"
    return web.Response(status=503, text=f"not ready: {why}\n")


async def reload(request: web.Request) -> web.Response:
    fn: Any = request.app[RELOAD_KEY]
    errors: list[str] = await fn()
    if errors:
        return web.json_response({"status": "error", "errors": errors}, status=400)
    return web.json_response({"status": "ok"})


async def api_status(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(statuspage.render_json, request.app[STORE_KEY])
    return web.Response(body=body, content_type="application/json")


async def index(request: web.Request) -> web.Response:
    """The status page (exporter/statuspage.py), rendered off the event loop."""
    page = await asyncio.to_thread(statuspage.render_page, request.app[STORE_KEY])
    return web.Response(
        body=page, content_type="text/html", charset="utf-8", headers=statuspage.PAGE_HEADERS
    )


def create_app(store: Store, cache: ExpositionCache, reload_fn: ReloadFn) -> web.Application:
    app = web.Application()
    app[STORE_KEY] = store
    app[CACHE_KEY] = cache
    app[RELOAD_KEY] = reload_fn
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/-/reload", reload)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/", index)
    return app
