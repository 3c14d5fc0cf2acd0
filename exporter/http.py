"""The one place that talks HTTP to providers.

:class:`HttpClient` wraps the process's one session; :class:`AccountClient` is what a provider's
``fetch`` gets: that session with one account's key forms, timeout, body cap and its key's rate
limiter bound, built once per account, endpoint and config.

Every failure comes out as a classified :class:`PollError` whose message never holds a request
header, a request body or a raw response body: only the status, the provider's own short error
message (already cut to length and stripped of the account's key) and what went wrong.
Redirects are never followed (credentials must not travel to another host); bodies are read up
to a cap; the whole call, body included, runs under the account's timeout.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import os
import re
import ssl
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from .model import PollError, Reason, reason_for_status
from .redaction import MAX_MESSAGE, clean


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as delay-seconds or an HTTP date -> seconds from now (>= 0)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, 86400.0))


@functools.lru_cache(maxsize=1024)
def _env_proxy(scheme: str, host: str) -> str | None:
    if not host or urllib.request.proxy_bypass(host):
        return None
    proxy = urllib.request.getproxies().get(scheme)
    return proxy if proxy and proxy.startswith("http://") else None


def env_proxy(url: str) -> str | None:
    """The proxy for ``url`` from ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY``, looked up once
    per host (the session does not read the environment itself: that costs two thread hops
    per request)."""
    parts = urlsplit(url)
    return _env_proxy(parts.scheme, parts.hostname or "")


def host_of(url: str) -> str:
    """Scheme and host only: safe to log and show (no path, no query string)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def _os_reason(exc: OSError) -> str:
    """What an OSError says, in lower case: ``ECONNRESET`` -> ``connection reset by peer``,
    ``CERTIFICATE_VERIFY_FAILED`` -> ``certificate verify failed``; without either, the
    exception's name in words (``ConnectionResetError`` -> ``connection reset``)."""
    if isinstance(exc, ssl.SSLError):  # its errno is OpenSSL's, not the system's
        text = str(exc.reason or "").replace("_", " ")
    elif isinstance(exc.errno, int):
        text = os.strerror(exc.errno)
    else:
        text = exc.strerror or ""
    if not text:
        words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", type(exc).__name__)
        text = words.removesuffix(" Error") or "error"
    return text.lower()


_COMPLAINT = re.compile(r"[A-Za-z][A-Za-z-]*( [A-Za-z][A-Za-z-]*){1,6}")


def _parser_complaint(message: str) -> str:
    """The HTTP parser's complaint (``Bad status line``, ``Invalid header token``) from its
    message, which goes on to quote the offending bytes: these may echo the request, and so a
    key sent in its query string. Only a few plain words before the first colon or quote are
    kept, as written but for the first letter (a lower-cased key would escape redaction);
    anything else is ``unreadable``."""
    head = re.split(r"[:'\"]", message, maxsplit=1)[0].strip()
    if not _COMPLAINT.fullmatch(head) or len(head) > 60:
        return "unreadable"
    return head[0].lower() + head[1:]


def connection_problem(exc: BaseException, url: str) -> str:
    """What went wrong on the wire, in words: never the answer's bytes (they may hold a key)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {host_of(url)}: {_os_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"the answer is not valid HTTP ({_parser_complaint(str(exc.message))})"
    if isinstance(exc, OSError):
        return f"connection failed: {_os_reason(exc)}"
    return f"connection failed: {type(exc).__name__}"


@dataclass(frozen=True, slots=True)
class Exchange:
    """What came back on the wire: status, lower-cased headers and the body (capped)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Mapping[str, str]
    data: Any


ErrorMessage = Callable[[Any], str | None]
"""Pull the provider's own error message out of an error body (parsed JSON)."""
Classify = Callable[[int, Any], Reason | None]
"""A provider's own verdict on a parsed answer (e.g. an error in a 200), None: the status's."""


class RequestLimiter(Protocol):
    """Paces the requests made with one API key (see :mod:`exporter.ratelimit`)."""

    async def acquire(self) -> None:
        """Wait until the next request may go."""

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response's status and (lower-cased) headers."""


class HttpClient:
    """A thin wrapper over the one shared :class:`aiohttp.ClientSession`."""

    def __init__(self, session: aiohttp.ClientSession, *, user_agent: str = "credits-exporter"):
        self.session = session
        self.user_agent = user_agent

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        timeout: float,
        max_body_bytes: int,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        auth: aiohttp.BasicAuth | None = None,
    ) -> Exchange:
        """Make one call and read its body; raise PollError if no complete answer came."""
        hdrs = {"Accept": "application/json", "User-Agent": self.user_agent}
        hdrs.update(headers or {})
        try:
            async with asyncio.timeout(timeout):
                async with self.session.request(
                    method,
                    url,
                    headers=hdrs,
                    params=params,
                    json=json_body,
                    auth=auth,
                    allow_redirects=False,
                    proxy=env_proxy(url),
                ) as resp:
                    body = await _read_capped(resp, max_body_bytes)
                    resp_headers = {k.lower(): v for k, v in resp.headers.items()}
                    return Exchange(resp.status, resp_headers, body)
        except TimeoutError:
            raise PollError(Reason.TIMEOUT, f"no complete answer within {timeout:g}s") from None
        except aiohttp.ClientPayloadError:
            raise PollError(Reason.CONNECTION, "connection broken while reading the body") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise PollError(Reason.CONNECTION, connection_problem(exc, url)) from None


#: What to do about a body beyond the cap: the config key that sets it.
_RAISE_CAP = " (raise the account's max_response_size to accept it)"


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    length = resp.content_length
    if length is not None and length > cap:
        raise PollError(
            Reason.BAD_RESPONSE,
            f"body of {length} bytes is larger than the {cap}-byte cap{_RAISE_CAP}",
            status=resp.status,
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > cap:
            raise PollError(
                Reason.BAD_RESPONSE,
                f"body larger than the {cap}-byte cap{_RAISE_CAP}",
                status=resp.status,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def interpret(
    exchange: Exchange,
    *,
    secrets: tuple[str, ...],
    error_message: ErrorMessage | None = None,
    classify: Classify | None = None,
) -> Response:
    """The answer's parsed JSON body, or a classified PollError (redirect, error status, the
    provider's own verdict, not JSON). An error quotes the provider's own message only, on
    one line, cut to length and without any of ``secrets`` (every form of the key the request
    put on the wire)."""
    status, headers, body = exchange.status, exchange.headers, exchange.body
    if 300 <= status < 400:
        target = headers.get("location", "")
        where = host_of(target) if "://" in target else "the same host"
        raise PollError(
            Reason.BAD_RESPONSE,
            f"unexpected redirect (HTTP {status}) to {where}; not followed",
            status=status,
        )

    data: Any = None
    parsed = False
    try:
        data = json.loads(body) if body else None
        parsed = bool(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: JSON nested deeper than the interpreter's stack ("[[[[...").
        data, parsed = None, False

    special = classify(status, data) if classify is not None and parsed else None
    if status >= 400 or special is not None:
        reason = special or reason_for_status(status)
        detail = None
        if parsed and error_message is not None:
            try:
                detail = error_message(data)
            except Exception:  # any error body shape: the status still says enough
                detail = None
        msg = f"HTTP {status}"
        if detail:
            msg += f": {clean(str(detail), secrets, MAX_MESSAGE)}"
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"))
        raise PollError(
            reason, msg, status=status, retry_after=retry_after, provider_text=bool(detail)
        )

    if not parsed:
        ctype = headers.get("content-type", "no content type").split(";")[0]
        what = "an empty body" if not body else f"not JSON ({ctype})"
        raise PollError(Reason.BAD_RESPONSE, f"HTTP {status} with {what}", status=status)
    return Response(status=status, headers=headers, data=data)


class AccountClient:
    """One endpoint's calls for one account: the shared session with the account's timeout,
    the endpoint's body cap, its key's rate limiter and every form of its key on the wire
    (``secrets``, from the provider's :class:`~exporter.credentials.Credential`: each is taken
    out of every error) bound. The scheduler builds one per account, endpoint and config,
    waits for the key's turn before each poll (a poll is one call) and hands it to the
    provider's ``fetch``; every answer is shown to the limiter."""

    __slots__ = ("http", "limiter", "max_body_bytes", "secrets", "timeout")

    def __init__(
        self,
        http: HttpClient,
        *,
        secrets: tuple[str, ...],
        timeout: float,
        max_body_bytes: int,
        limiter: RequestLimiter,
    ) -> None:
        self.http = http
        self.secrets = secrets
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self.limiter = limiter

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        auth: aiohttp.BasicAuth | None = None,
        error_message: ErrorMessage | None = None,
        classify: Classify | None = None,
    ) -> Response:
        """Make one call and return its parsed JSON body, or raise a classified PollError."""
        exchange = await self.http.exchange(
            method,
            url,
            timeout=self.timeout,
            max_body_bytes=self.max_body_bytes,
            headers=headers,
            params=params,
            json_body=json_body,
            auth=auth,
        )
        self.limiter.observe(exchange.status, exchange.headers)
        return interpret(
            exchange, secrets=self.secrets, error_message=error_message, classify=classify
        )
