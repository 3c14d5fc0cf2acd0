"""Injected failures and malformed answers: the reply an account's ``fail`` / ``paths_fail``
switch asks for, and a good reply sent broken the way its ``malformed`` switch says (see
:data:`~exporter.simulator.account.MALFORMED_MODES`)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from .account import SimAccount
from .api import JSON, Endpoint, Reply, SimulatedApi

TRICKLE_SECONDS = 60.0
TRICKLE_INTERVAL = 1.0
HUGE_BODY_BYTES = 2 * 1024 * 1024
ABSURD_NUMBER = 10**18

_SHAPE_MODES = frozenset(
    {"wrong_shape", "missing_field", "string_number", "null_field", "negative", "absurd"}
)

_HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center>"
    b"</body></html>\n"
)


def failure_for(account: SimAccount, path: str) -> dict[str, Any] | None:
    """The injected failure for a request to ``path``: the longest matching ``paths_fail``
    suffix, else ``fail``."""
    for suffix in sorted(account.paths_fail, key=len, reverse=True):
        if path.endswith(suffix):
            return account.paths_fail[suffix]
    return account.fail


def failure_reply(api: SimulatedApi, spec: Mapping[str, Any], headers: dict[str, str]) -> Reply:
    status = int(spec["status"])
    headers.update(spec.get("headers", {}))
    if "retry_after" in spec:
        headers["Retry-After"] = str(spec["retry_after"])
    content_type = spec.get("content_type")
    body = spec.get("body")
    if body is None:
        return Reply(
            status,
            api.error(status, None),
            headers=headers,
            content_type=content_type or "application/json",
        )
    if isinstance(body, str):
        return Reply(
            status,
            raw=body.encode(),
            content_type=content_type or "text/plain",
            headers=headers,
        )
    return Reply(status, body, content_type=content_type or "application/json", headers=headers)


def _negate(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return -abs(value) if value else -1


def _mutate(body: JSON, mode: str, endpoint: Endpoint) -> JSON:
    """Apply a shape-breaking ``mode`` to every object in ``body`` (recursively)."""
    if mode == "wrong_shape":
        return [body] if isinstance(body, dict) else {"data": body}
    if isinstance(body, list):
        return [_mutate(item, mode, endpoint) for item in body]
    if not isinstance(body, dict):
        return body
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key == endpoint.key_field and mode == "missing_field":
            continue
        if key == endpoint.key_field and mode == "null_field":
            out[key] = None
        elif key in endpoint.numeric and mode == "string_number":
            out[key] = str(value)
        elif key in endpoint.numeric and mode == "negative":
            out[key] = _negate(value)
        elif key in endpoint.numeric and mode == "absurd":
            out[key] = ABSURD_NUMBER
        else:
            out[key] = _mutate(value, mode, endpoint)
    return out


async def send(
    request: web.Request,
    reply: Reply,
    mode: str | None,
    endpoint: Endpoint,
    pause: Callable[[float], Awaitable[bool]],
) -> web.StreamResponse:
    """Send ``reply``, broken by the malformed ``mode`` if one is given. ``pause`` sleeps and
    says whether the simulator is stopping (a trickle then ends early)."""
    headers = dict(reply.headers)
    if mode is None or mode in _SHAPE_MODES:
        # Set as a header, so that any content type (with a charset, or odd) goes out as is.
        headers["Content-Type"] = reply.content_type
        if reply.raw is not None:
            return web.Response(status=reply.status, body=reply.raw, headers=headers)
        body = _mutate(reply.body, mode, endpoint) if mode else reply.body
        return web.Response(status=reply.status, body=json.dumps(body).encode(), headers=headers)
    payload = json.dumps(reply.body).encode()
    if mode == "html":
        return web.Response(body=_HTML_PAGE, content_type="text/html", headers=headers)
    if mode == "invalid_json":
        return web.Response(
            body=payload[: max(1, len(payload) // 2)],
            content_type="application/json",
            headers=headers,
        )
    if mode == "huge_body":
        padded = payload + b" " * (HUGE_BODY_BYTES - len(payload))
        return web.Response(body=padded, content_type="application/json", headers=headers)
    response = web.StreamResponse(status=200, headers=headers)
    response.content_type = "application/json"
    if mode == "reset":
        response.content_length = len(payload)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(payload[: len(payload) // 2])
        if request.transport is not None:
            request.transport.abort()
        return response
    # trickle: headers now, then one byte a second, the real body only after a minute.
    await response.prepare(request)
    started = time.monotonic()
    try:
        while time.monotonic() - started < TRICKLE_SECONDS:
            await response.write(b" ")
            if await pause(TRICKLE_INTERVAL):
                break
        await response.write(payload)
        await response.write_eof()
    except ConnectionError:
        pass
    return response
