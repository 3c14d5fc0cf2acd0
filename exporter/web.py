"""The aiohttp app: /metrics (cached bytes, never calls upstream), the status page,
/healthz, /readyz and POST /-/reload."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import __version__
from .metrics import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, ExpositionCache
from .store import AccountState, Store

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


async def metrics(request: web.Request) -> web.Response:
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
    return web.Response(body=body, headers=headers)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    # Ready once every account was polled AND /metrics serves those results.
    if request.app[CACHE_KEY].current.ready:
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


def account_status(state: AccountState, now: float) -> dict[str, Any]:
    """What /api/status and the page show for one account: no key, no URL, no raw body."""
    merged = state.merged(now)
    last_success = max(
        (ep.last_success for ep in state.endpoints.values() if ep.last_success is not None),
        default=None,
    )
    errors = {
        name: {"reason": ep.last_error.reason.value, "message": ep.last_error.message}
        for name, ep in state.endpoints.items()
        if ep.last_error is not None and ep.up is False
    }
    up = state.up
    stale = last_success is not None and now - last_success > state.account.effective_max_staleness
    status = "never_polled" if up is None and not errors else "ok" if up else "failing"
    if stale and status != "failing":
        status = "stale"
    return {
        "account": state.name,
        "provider": state.provider.label,
        "state": status,
        "last_success": last_success,
        "errors": errors,
        "pools": {
            pool: {"remaining": v.remaining, "used": v.used, "limit": v.limit}
            for pool, v in merged.pools.items()
        },
    }


async def api_status(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    now = store.clock()
    return web.json_response(
        {
            "version": __version__,
            "config_reload_successful": store.reload_successful,
            "accounts": [account_status(s, now) for s in store.accounts.values()],
        }
    )


def _fmt(value: float | None) -> str:
    if value is None:
        return "&ndash;"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"


async def index(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    now = store.clock()
    rows = []
    for state in store.accounts.values():
        st = account_status(state, now)
        pools = ", ".join(
            f"{html.escape(p)}: {_fmt(v['remaining'])}" for p, v in st["pools"].items()
        )
        reasons = ", ".join(sorted({e["reason"] for e in st["errors"].values()}))
        last = (
            f"{int(now - st['last_success'])} s ago" if st["last_success"] is not None else "never"
        )
        rows.append(
            f"<tr><td>{html.escape(st['account'])}</td><td>{html.escape(st['provider'])}</td>"
            f"<td>{st['state']}</td><td>{pools or '&ndash;'}</td><td>{last}</td>"
            f"<td>{html.escape(reasons) or '&ndash;'}</td></tr>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>credits-exporter</title>
<meta http-equiv="refresh" content="30"></head><body>
<h1>credits-exporter</h1>
<p><a href="/metrics">Metrics</a> &middot; version {html.escape(__version__)}</p>
<table border="1"><thead><tr><th>Account</th><th>Provider</th><th>State</th>
<th>Remaining</th><th>Last success</th><th>Last error</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></body></html>"""
    return web.Response(text=page, content_type="text/html")


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
