"""What a simulated API is: a :class:`SimulatedApi` (its mount point, account type, endpoints,
how it reads a key, its error bodies) and the :class:`Call` and :class:`Reply` its endpoint
handlers take and give."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .account import SimAccount

JSON = Any

Credential = Callable[[web.Request, JSON], tuple[str | None, str | None]]
"""Reads the key from a request (and its parsed JSON body): ``(key, None)``, or ``(None, kind)``
with kind ``"missing"`` or ``"not_bearer"``."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What an endpoint answers: a JSON ``body``, or ``raw`` bytes with their content type."""

    status: int = 200
    body: JSON = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Call:
    """One provider request as an endpoint handler sees it."""

    request: web.Request
    body: JSON
    now: float


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    """Relative to the API's mount point."""
    handler: Callable[[Any, Call], Reply]
    """Answers a call for the account (of the API's account type) whose key the call carries."""
    key_field: str
    """Dropped by ``missing_field``, nulled by ``null_field``."""
    numeric: tuple[str, ...]
    """Stringified by ``string_number``, negated by ``negative``."""


@dataclass(frozen=True, slots=True)
class SimulatedApi:
    name: str
    mount: str
    account: type[SimAccount]
    endpoints: tuple[Endpoint, ...]
    credential: Credential
    error: Callable[[int, str | None], JSON]
    """Error body for a status and a kind: "missing", "not_bearer", "unknown", "revoked",
    "rate_limited", or None for a plain injected failure."""
    json_body: bool = False
    refusal_status: int = 401
    """The HTTP status of an answer that refuses the key (missing, unknown or revoked): some APIs
    refuse it in a 200 whose body says so (Anti-Captcha's ``errorId``, ZeroBounce's -1)."""
    advertised_limits: tuple[tuple[str, int, int], ...] = ()
    """(window name, seconds, limit) sent in RateLimit headers even when not enforced."""
    rate_headers: bool = False
