"""Per-key request rate limits, shared by every polling loop that uses the same key.

Each (provider, API key) pair gets one :class:`KeyLimiter`, whatever the number of accounts
and endpoints that use the key. It paces requests evenly: at most ``rate`` per second, never in
bursts (so a provider's sliding window of "N per period" is never exceeded), taking turns in
the order the loops asked.

The rate is the account's ``rate_limit``, else ``providers.<name>.rate_limit``, else the
provider's documented default (:meth:`Provider.documented_rate`: TheirStack 4/s, FullEnrich
60/min, a preset's ``documented_rate_limit``); accounts that share a key share the lowest.
``unlimited`` turns pacing off.

Responses slow a key down further before the provider has to say 429: the IETF
``RateLimit`` header (``"per-second";r=3;t=1, "per-minute";r=9;t=60`` or the older
``limit=4, remaining=3, reset=1``), ``RateLimit-Remaining`` with ``RateLimit-Reset``, and the
``X-RateLimit-*`` pair. When a window has ``r`` requests left for ``t`` seconds, the key's next
request waits ``t / r`` (all of ``t`` when none are left), and requests stay at least that far
apart until the window resets. A 429 (or 503 with ``Retry-After``) holds every loop on the key
until ``Retry-After``, else the window's reset, else a second.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from .accounts import AccountBase
from .config import Config
from .http import parse_retry_after
from .log import get_logger
from .providers import PROVIDERS

log = get_logger("exporter.ratelimit")

#: Longest a header may hold a key (a daily quota spent: try again tomorrow, not later).
MAX_HOLD = 86400.0
#: How long a 429 without any hint holds the key.
DEFAULT_HOLD = 1.0
_EPOCH = 1e9  # an X-RateLimit-Reset above this is a Unix time, not a delay


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip().strip('"'))
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _split_items(value: str) -> list[str]:
    """Split a structured-field list on commas outside quoted strings."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    items.append("".join(current).strip())
    return [i for i in items if i]


_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_*.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]+)')


def rate_windows(headers: Mapping[str, str], now: float | None = None) -> list[tuple[float, float]]:
    """(remaining, seconds until reset) for every rate-limit window the headers describe.
    ``headers`` are lower-cased."""
    windows: list[tuple[float, float]] = []
    structured = headers.get("ratelimit")
    if structured:
        older: dict[str, float] = {}
        for item in _split_items(structured):
            params = {}
            for part in item.split(";"):
                m = _PARAM_RE.fullmatch(part)
                if m:
                    params[m.group(1).lower()] = m.group(2)
            if "r" in params:  # "name";r=3;t=1
                r, t = _number(params["r"]), _number(params.get("t"))
                if r is not None and t is not None:
                    windows.append((r, t))
            for key in ("limit", "remaining", "reset"):  # limit=4, remaining=3, reset=1
                if key in params and (value := _number(params[key])) is not None:
                    older[key] = value
        if "remaining" in older and "reset" in older:
            windows.append((older["remaining"], older["reset"]))
    for prefix in ("ratelimit-", "x-ratelimit-"):
        r = _number(headers.get(prefix + "remaining"))
        t = _number(headers.get(prefix + "reset"))
        if r is not None and t is not None:
            if t > _EPOCH:
                t = max(0.0, t - (time.time() if now is None else now))
            windows.append((r, t))
    return windows


class KeyLimiter:
    """Paces the requests of one API key. ``rate``: requests per second (``inf``: no pacing
    of its own; headers and 429s still hold it).

    Requests go one at a time through a first-come, first-served lock; each waits until the
    previous one left at least a spacing ago (measured from when it actually left, so a late
    request never lets the next one catch up) and until any hold is over."""

    __slots__ = (
        "_hold_until",
        "_lock",
        "_next",
        "_pace",
        "_pace_until",
        "_rate",
        "_spacing",
        "_waiting",
        "clock",
        "label",
        "sleep",
    )

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        label: str = "",
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.label = label
        self.rate = rate
        self._lock: asyncio.Lock | None = None  # made when a request first has to wait
        self._waiting = 0
        self._next = -math.inf  # earliest start of the next request (pacing)
        self._hold_until = -math.inf  # nobody goes before this (headers, 429)
        self._pace = 0.0  # spacing the headers asked for ...
        self._pace_until = -math.inf  # ... until their window resets

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        self._rate = value
        self._spacing = 0.0 if math.isinf(value) else 1.0 / value

    async def acquire(self) -> None:
        if not self._waiting and self._try_now():
            return  # nobody queued and the turn is free: no lock needed
        if self._lock is None:
            self._lock = asyncio.Lock()
        self._waiting += 1
        try:
            async with self._lock:
                while not self._try_now():
                    await self.sleep(max(self._next, self._hold_until) - self.clock())
        finally:
            self._waiting -= 1

    def _try_now(self) -> bool:
        """Take the turn if it is due; then the next one is a spacing later."""
        now = self.clock()
        if max(self._next, self._hold_until) > now:
            return False
        spacing = self._spacing
        if now < self._pace_until:
            spacing = max(spacing, self._pace)
        self._next = now + spacing
        return True

    def hold(self, seconds: float, why: str) -> None:
        """Let no request with this key go for ``seconds``."""
        seconds = min(max(seconds, 0.0), MAX_HOLD)
        until = self.clock() + seconds
        if until > self._hold_until:
            if seconds >= 1.0:
                log.debug("rate limit hold", key=self.label, seconds=round(seconds, 3), why=why)
            self._hold_until = until

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        now = self.clock()
        delay, reset = 0.0, 0.0
        for remaining, seconds in rate_windows(headers):
            if remaining < 1:
                delay = max(delay, seconds)
            else:
                pace = seconds / remaining
                delay = max(delay, pace)
                if pace >= self._pace or now >= self._pace_until:
                    self._pace, self._pace_until = pace, now + seconds
            reset = max(reset, seconds)
        if status == 429 or (status == 503 and "retry-after" in headers):
            retry_after = parse_retry_after(headers.get("retry-after"))
            wait = retry_after if retry_after is not None else (reset or DEFAULT_HOLD)
            self.hold(max(wait, delay), f"HTTP {status}")
        elif delay > 0:
            self.hold(delay, "rate-limit headers")


def key_of(account: AccountBase) -> tuple[str, str]:
    """Accounts with equal keys share a limiter; the secret is kept only as a digest."""
    return account.provider, hashlib.sha256(account.secret.encode()).hexdigest()


def effective_rate(account: AccountBase, config: Config) -> float:
    """Requests per second for ``account``'s key (``inf``: unlimited)."""
    if account.rate_limit is not None:
        return account.rate_limit
    settings = config.providers.get(account.provider)
    if settings is not None and settings.rate_limit is not None:
        return settings.rate_limit
    registered = PROVIDERS.get(account.provider)
    default = registered.provider.documented_rate(account) if registered is not None else None
    return default if default is not None else math.inf


class RateLimits:
    """The limiters of a config's keys; :meth:`configure` again on reload keeps the state of
    keys still in use."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._limiters: dict[tuple[str, str], KeyLimiter] = {}
        self.clock = clock
        self.sleep = sleep

    def _new(self, rate: float, label: str) -> KeyLimiter:
        return KeyLimiter(rate, clock=self.clock, sleep=self.sleep, label=label)

    def configure(self, config: Config, accounts: Iterable[AccountBase] | None = None) -> None:
        rates: dict[tuple[str, str], float] = {}
        for account in config.accounts if accounts is None else accounts:
            key = key_of(account)
            rates[key] = min(rates.get(key, math.inf), effective_rate(account, config))
        limiters = {}
        for key, rate in rates.items():
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = self._new(rate, f"{key[0]}:{key[1][:8]}")
            limiter.rate = rate
            limiters[key] = limiter
        self._limiters = limiters

    def for_account(self, account: AccountBase) -> KeyLimiter:
        key = key_of(account)
        limiter = self._limiters.get(key)
        if limiter is None:  # an account polled outside the configured set
            limiter = self._limiters[key] = self._new(math.inf, f"{key[0]}:{key[1][:8]}")
        return limiter

    def __len__(self) -> int:
        return len(self._limiters)
