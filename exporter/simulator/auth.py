"""How simulated APIs read an account's key from a request (each a :data:`.api.Credential`)."""

from __future__ import annotations

import base64

from aiohttp import web

from .api import JSON, Credential


def bearer(request: web.Request, _body: JSON) -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization")
    if header is None or not header.strip():
        return None, "missing"
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "not_bearer"
    return token.strip(), None


def header_key(name: str, scheme: str | None = None) -> Credential:
    """The key in header ``name``, after ``scheme`` and a space if one is given."""

    def credential(request: web.Request, _body: JSON) -> tuple[str | None, str | None]:
        value = request.headers.get(name, "").strip()
        if not value:
            return None, "missing"
        if scheme is None:
            return value, None
        given, _, token = value.partition(" ")
        if given != scheme or not token.strip():
            return None, "not_bearer"
        return token.strip(), None

    return credential


def query_key(name: str) -> Credential:
    """The key in query parameter ``name``."""

    def credential(request: web.Request, _body: JSON) -> tuple[str | None, str | None]:
        value = request.query.get(name, "")
        return (value, None) if value else (None, "missing")

    return credential


def body_key(name: str) -> Credential:
    """The key in field ``name`` of the JSON body (the API sets ``json_body``)."""

    def credential(_request: web.Request, body: JSON) -> tuple[str | None, str | None]:
        value = body.get(name) if isinstance(body, dict) else None
        return (value, None) if isinstance(value, str) and value else (None, "missing")

    return credential


def basic_password(request: web.Request, _body: JSON) -> tuple[str | None, str | None]:
    """The password of Basic authentication (:func:`basic_username` reads the user)."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None, "missing"
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, "missing"
    if not sep or not user or not password:
        return None, "missing"
    return password, None


def basic_username(request: web.Request) -> str:
    """The Basic user of a request :func:`basic_password` accepted."""
    encoded = request.headers.get("Authorization", "").strip().partition(" ")[2]
    return base64.b64decode(encoded).decode().partition(":")[0]
