"""The aiohttp app: /metrics (cached bytes, never calls upstream), the status page and
/api/status (cached views, exporter/statuscache.py), /healthz, /readyz and POST /-/reload.

A status view that is not ready-made (another filter or page, the plain whole JSON) is made on
request from the rendering's blocks. A small one is made at once on the loop; a large one in a
thread, at most :data:`VIEW_BUILDS` at a time: beyond that, the answer is 429 with
``Retry-After`` (every distinct query would otherwise select over every account and compress
what it found, and scrapes share the machine)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from .exposition import JOIN_LIMIT, iter_slices
from .metrics import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, ExpositionCache
from .negotiate import wants_gzip, wants_openmetrics
from .statuscache import VIEW_LEVEL, Body, Rendering, StatusCache, gzip_body
from .statushtml import PAGE_HEADERS
from .statusquery import PAGE_PER_PAGE, Query, QueryError, parse_query
from .store import Store

ReloadFn = Callable[[], Awaitable[list[str]]]
"""Reloads the config; returns the list of errors (empty when the new config applied)."""

STORE_KEY = web.AppKey("store", Store)
CACHE_KEY = web.AppKey("cache", ExpositionCache)
RELOAD_KEY = web.AppKey("reload", object)
STATUS_KEY = web.AppKey("status", StatusCache)
BUILDS_KEY = web.AppKey("view_builds", asyncio.Semaphore)

#: Large status views made at once, at most (each in a thread).
VIEW_BUILDS = 2
RETRY_AFTER_SECONDS = 1


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
        return await send_bytes(request, exp.openmetrics_gzip if om else exp.text_gzip, headers)
    size = exp.openmetrics_size if om else exp.text_size
    if size <= JOIN_LIMIT or request.method != "GET":
        return web.Response(body=exp.openmetrics if om else exp.text, headers=headers)
    slices = iter_slices(exp.openmetrics_parts if om else exp.text_parts, STREAM_SLICE)
    return await _stream(request, slices, size, headers)


async def send_bytes(
    request: web.Request, body: bytes, headers: dict[str, str]
) -> web.StreamResponse:
    """``body``, written in slices when it is large."""
    if len(body) <= STREAM_SLICE or request.method != "GET":
        return web.Response(body=body, headers=headers)
    view = memoryview(body)
    slices = (view[i : i + STREAM_SLICE] for i in range(0, len(body), STREAM_SLICE))
    return await _stream(request, slices, len(body), headers)


async def _stream(
    request: web.Request,
    slices: Iterable[bytes | memoryview],
    size: int,
    headers: dict[str, str],
) -> web.StreamResponse:
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
    """200 once /metrics serves every account's first poll (:mod:`exporter.readiness`)."""
    readiness = request.app[STORE_KEY].readiness
    if readiness.ready:
        return web.Response(text="ready\n")
    return web.Response(status=503, text=f"not ready: {readiness.reason()}\n")


async def reload(request: web.Request) -> web.Response:
    fn: Any = request.app[RELOAD_KEY]
    errors: list[str] = await fn()
    if errors:
        return web.json_response({"status": "error", "errors": errors}, status=400)
    return web.json_response({"status": "ok"})


def etag_matches(if_none_match: str, etag: str) -> bool:
    """``If-None-Match`` against our (weak) ETag, compared weakly as RFC 9110 says for it."""
    if if_none_match.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == ours for tag in if_none_match.split(","))


async def _status_view(
    request: web.Request,
    kind: str,
    make: Callable[[Rendering, Query], tuple[bytes, ...]],
    query: Query,
    headers: dict[str, str],
) -> web.StreamResponse:
    """A view of the status (the page or the JSON): from the current rendering's views, made
    from its blocks on request; 304 when the client has it already."""
    rendering = request.app[STATUS_KEY].current
    etag = rendering.etag(kind, query)
    headers = {**headers, "ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if etag_matches(request.headers.get("If-None-Match", ""), etag):
        return web.Response(status=304, headers=headers)
    gz = wants_gzip(request.headers.get("Accept-Encoding", ""))
    body = rendering.cached(kind, query) or Body(etag)
    if (body.gzip if gz else body.parts) is None:
        made = await _make_view(request, rendering, kind, make, query, body, gz)
        if made is None:
            return web.Response(
                status=429,
                text="too many status views being made at once: retry shortly\n",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        body = made
    if gz:
        assert body.gzip is not None
        return await send_bytes(request, body.gzip, {**headers, "Content-Encoding": "gzip"})
    size = body.size
    if size <= STREAM_SLICE or request.method != "GET":
        return web.Response(body=body.joined(), headers=headers)
    assert body.parts is not None
    return await _stream(request, iter_slices(list(body.parts), STREAM_SLICE), size, headers)


async def _make_view(
    request: web.Request,
    rendering: Rendering,
    kind: str,
    make: Callable[[Rendering, Query], tuple[bytes, ...]],
    query: Query,
    body: Body,
    gz: bool,
) -> Body | None:
    """``body`` with what the request wants (its plain parts, or its gzip form), kept if the
    rendering keeps the view; None when too many other large views are being made already.
    Requests for a large view that is being made wait for it instead of making it again."""

    def complete() -> Body:
        if not gz:
            return Body(body.etag, make(rendering, query), body.gzip)
        # A gzip request keeps the gzip form only (the plain one may be 10 times larger).
        z = gzip_body(b"".join(body.parts or make(rendering, query)), VIEW_LEVEL)
        return Body(body.etag, body.parts, z)

    # At once on the loop: a page of at most PAGE_PER_PAGE accounts that are next to each other
    # in the page's order (unfiltered, or by state: the order is by state), so one or two
    # blocks to inflate. A provider or account filter picks accounts from every block.
    small = (
        not query.history
        and not query.providers
        and not query.account
        and (query.per_page or math.inf) <= PAGE_PER_PAGE
    )
    if small:
        return rendering.keep(kind, query, complete())
    key = (kind, query.key(), gz)
    task = rendering.building.get(key)
    if task is None:
        builds = request.app[BUILDS_KEY]
        if builds.locked():
            return None

        await builds.acquire()  # at once: it is not locked

        async def build() -> Body:
            try:
                made = await asyncio.to_thread(complete)
                return rendering.keep(kind, query, made)
            finally:
                builds.release()
                del rendering.building[key]

        # A task of its own: a client that goes away does not cancel it for the others.
        task = rendering.building[key] = asyncio.create_task(build())
    return await asyncio.shield(task)


def _page_parts(rendering: Rendering, query: Query) -> tuple[bytes, ...]:
    return (rendering.page_html(query),)


def _bad_query(exc: QueryError) -> web.Response:
    return web.Response(status=400, text=f"bad request: {exc}\n")


async def api_status(request: web.Request) -> web.StreamResponse:
    """``/api/status``: every matching account unless ``per_page`` is given; the pools'
    history with ``history=1``."""
    try:
        query = parse_query(request.query, default_per_page=None, history=True)
    except QueryError as exc:
        return _bad_query(exc)
    headers = {"Content-Type": "application/json"}
    return await _status_view(request, "api", Rendering.api_parts, query, headers)


async def index(request: web.Request) -> web.StreamResponse:
    """The status page: :data:`~exporter.statusquery.PAGE_PER_PAGE` accounts a page."""
    try:
        query = parse_query(request.query, default_per_page=PAGE_PER_PAGE)
    except QueryError as exc:
        return _bad_query(exc)
    headers = {"Content-Type": "text/html; charset=utf-8", **PAGE_HEADERS}
    return await _status_view(request, "page", _page_parts, query, headers)


def create_app(
    store: Store,
    cache: ExpositionCache,
    reload_fn: ReloadFn,
    status: StatusCache | None = None,
) -> web.Application:
    """The app; it keeps ``status`` (by default a new one over ``store``) rendering while it
    runs."""
    app = web.Application()
    app[STORE_KEY] = store
    app[CACHE_KEY] = cache
    app[RELOAD_KEY] = reload_fn
    app[STATUS_KEY] = status if status is not None else StatusCache(store)
    app[BUILDS_KEY] = asyncio.Semaphore(VIEW_BUILDS)

    async def keep_rendering(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(app[STATUS_KEY].run(), name="status-render")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(keep_rendering)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/-/reload", reload)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/", index)
    return app
