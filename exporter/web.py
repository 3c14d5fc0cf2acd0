"""The aiohttp app: /metrics (cached bytes, never calls upstream), the status page,
/healthz, /readyz and POST /-/reload."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from . import statuspage
from .exposition import JOIN_LIMIT, iter_slices
from .metrics import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, ExpositionCache
from .negotiate import wants_gzip, wants_openmetrics
from .store import Store

ReloadFn = Callable[[], Awaitable[list[str]]]
"""Reloads the config; returns the list of errors (empty when the new config applied)."""

STORE_KEY = web.AppKey("store", Store)
CACHE_KEY = web.AppKey("cache", ExpositionCache)
RELOAD_KEY = web.AppKey("reload", object)


#: Bodies larger than this are written in slices of about this size: a single write of a 14 MB
#: body would be copied whole into the connection's buffer (and joined with the headers) for
#: every scrape in flight; the plain bodies are not even joined (exporter.exposition._Bodies).
STREAM_SLICE = 1 << 20


async def metrics(request: web.Request) -> web.StreamResponse:
    exp = request.app[CACHE_KEY].current
    om = wants_openmetrics(request.headers.get("Accept", ""))
    gz = wants_gzip(request.headers.get("Accept-Encoding", ""))
    headers = {
        "Content-Type": OPENMETRICS_CONTENT_TYPE if om else TEXT_CONTENT_TYPE,
        "Vary": "Accept, Accept-Encoding",
    }
    if gz:
        headers["Content-Encoding"] = "gzip"
        body = exp.openmetrics_gzip if om else exp.text_gzip
        if len(body) <= STREAM_SLICE or request.method != "GET":
            return web.Response(body=body, headers=headers)
        view = memoryview(body)
        slices: Iterable[bytes | memoryview] = (
            view[i : i + STREAM_SLICE] for i in range(0, len(body), STREAM_SLICE)
        )
        size = len(body)
    else:
        size = exp.openmetrics_size if om else exp.text_size
        if size <= JOIN_LIMIT or request.method != "GET":
            return web.Response(body=exp.openmetrics if om else exp.text, headers=headers)
        slices = iter_slices(exp.openmetrics_parts if om else exp.text_parts, STREAM_SLICE)
    response = web.StreamResponse(headers=headers)
    response.content_length = size
    await response.prepare(request)
    for piece in slices:
        await response.write(piece)
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
    waiting = store.unpolled_accounts()
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
