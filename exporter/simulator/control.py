"""The control API under ``/_sim/``: another process (the demo's user, a benchmark) reads and
sets the simulated accounts, the call counts and the clock over HTTP::

    GET    /_sim/accounts              every account, and the simulated time
    GET    /_sim/accounts/{api_key}    one account
    PUT    /_sim/accounts/{api_key}    create or replace: {"provider": name, field: value...}
    PATCH  /_sim/accounts/{api_key}    set some fields
    DELETE /_sim/accounts/{api_key}
    GET    /_sim/calls                 provider requests: total, by key, by path
    POST   /_sim/reset-calls
    GET    /_sim/clock                 the simulated time
    POST   /_sim/clock                 {"advance_seconds": s}: move it forward
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .clock import iso_z
from .fields import non_negative
from .state import SimState


def add_control_routes(app: web.Application, state: SimState) -> None:
    """Serve ``state`` under ``/_sim/`` on ``app``."""

    def one(api_key: str) -> web.Response:
        account = state.accounts().get(api_key)
        if account is None:
            return web.json_response({"error": "no such account"}, status=404)
        return web.json_response(account, dumps=_dumps)

    async def list_accounts(_request: web.Request) -> web.Response:
        now = state.now()
        return web.json_response(
            {"now": now, "now_iso": iso_z(now), "accounts": state.accounts()}, dumps=_dumps
        )

    async def get_account(request: web.Request) -> web.Response:
        return one(request.match_info["api_key"])

    async def put_account(request: web.Request) -> web.Response:
        body = await _json_object(request)
        provider = body.pop("provider", None)
        if not isinstance(provider, str):
            raise _bad_request('"provider" is required')
        try:
            state.add_account(provider, request.match_info["api_key"], **body)
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return one(request.match_info["api_key"])

    async def patch_account(request: web.Request) -> web.Response:
        body = await _json_object(request)
        try:
            state.update(request.match_info["api_key"], **body)
        except KeyError:
            return web.json_response({"error": "no such account"}, status=404)
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        return one(request.match_info["api_key"])

    async def delete_account(request: web.Request) -> web.Response:
        try:
            state.remove_account(request.match_info["api_key"])
        except KeyError:
            return web.json_response({"error": "no such account"}, status=404)
        return web.Response(status=204)

    async def get_calls(_request: web.Request) -> web.Response:
        return web.json_response(state.calls_summary())

    async def reset_calls(_request: web.Request) -> web.Response:
        state.reset_calls()
        return web.json_response(state.calls_summary())

    async def clock(request: web.Request) -> web.Response:
        if request.method == "POST":
            body = await _json_object(request)
            try:
                state.advance(non_negative(body.get("advance_seconds", 0)))
            except (TypeError, ValueError) as exc:
                raise _bad_request(f"advance_seconds: {exc}") from None
        now = state.now()
        return web.json_response({"now": now, "now_iso": iso_z(now), "offset": state.offset})

    r = app.router
    r.add_get("/_sim/accounts", list_accounts)
    r.add_get("/_sim/accounts/{api_key}", get_account)
    r.add_put("/_sim/accounts/{api_key}", put_account)
    r.add_patch("/_sim/accounts/{api_key}", patch_account)
    r.add_delete("/_sim/accounts/{api_key}", delete_account)
    r.add_get("/_sim/calls", get_calls)
    r.add_post("/_sim/reset-calls", reset_calls)
    r.add_get("/_sim/clock", clock)
    r.add_post("/_sim/clock", clock)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json() if await request.read() else {}
    except ValueError:
        raise _bad_request("body is not JSON") from None
    if not isinstance(body, dict):
        raise _bad_request("body must be a JSON object")
    return body


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)
