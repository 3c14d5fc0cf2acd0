"""How an account's key goes on the wire, and every form it takes there.

A key travels as itself (a query parameter, a JSON body's string, a header of its own), after
an auth scheme (``Bearer <key>``, ``Token <key>``) or inside HTTP Basic's base64 of
``user:key``. An upstream that echoes its request (an error quoting the URL, the headers or the
body) echoes the key in that form, which a search for the key as configured does not find:
base64 above all shares no run of characters with it.

So a provider builds the part of a request that carries the key with one of :func:`plain`,
:func:`scheme` or :func:`basic`, and declares the same :class:`Credential`
(:meth:`exporter.providers.base.Provider.credential`): the value sent and the forms redacted
come from one place. Everything that keeps or shows text about a poll takes out every form
(:mod:`exporter.redaction`): the account's client, the poll's error, the status page and the
log.
"""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass, field
from urllib.parse import quote as url_quote
from urllib.parse import quote_plus

from yarl import URL


@dataclass(frozen=True, slots=True)
class Credential:
    """What a request sends to carry the key (``value``: a header's value, a query
    parameter's, a JSON string's) and every form of the key that request puts on the wire
    (``forms``, the value included). Neither is ever shown: both stay out of ``repr``."""

    value: str = field(repr=False)
    forms: tuple[str, ...] = field(repr=False)


@functools.lru_cache(maxsize=4096)
def key_forms(key: str) -> tuple[str, ...]:
    """``key`` as written, as the query string of a request carries it (yarl's encoding,
    what an upstream echoes when it quotes the URL), with every reserved character
    percent-encoded, form-encoded, and as a JSON string writes it (``"`` and ``\\`` escaped,
    anything beyond ASCII as ``\\u`` escapes: how a JSON body sends it)."""
    query = URL.build(query={"k": key}).raw_query_string.partition("=")[2]
    forms = (key, query, url_quote(key, safe=""), quote_plus(key), json.dumps(key)[1:-1])
    return tuple(dict.fromkeys(f for f in forms if f))


def plain(key: str) -> Credential:
    """The key as itself: a query parameter, a JSON body's string, a header of its own."""
    return Credential(key, key_forms(key))


@functools.lru_cache(maxsize=4096)
def scheme(name: str, key: str) -> Credential:
    """``<name> <key>``: an ``Authorization``-style header value (``Bearer``, ``Token``...)."""
    value = f"{name} {key}"
    return Credential(value, (*key_forms(key), value))


def bearer(key: str) -> Credential:
    """``Authorization: Bearer <key>``."""
    return scheme("Bearer", key)


@functools.lru_cache(maxsize=4096)
def basic(user: str, key: str) -> Credential:
    """HTTP Basic with ``key`` as the password: ``Basic <base64 of user:key>``. Its forms
    hold the base64 token alone too (an upstream may echo it without the scheme)."""
    token = base64.b64encode(f"{user}:{key}".encode()).decode("ascii")
    value = f"Basic {token}"
    return Credential(value, (*key_forms(key), token, value))
