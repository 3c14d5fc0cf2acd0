"""Rate limits of a simulated account: sliding one-second and one-minute windows, Retry-After
past a limit, and the RateLimit headers an API that sends them advertises."""

from __future__ import annotations

import hashlib
import math

from .account import SimAccount
from .api import SimulatedApi


def rate_limit(
    api: SimulatedApi, account: SimAccount, now: float
) -> tuple[dict[str, str], int | None]:
    """Sliding windows. Returns the RateLimit headers and, when over a limit, Retry-After."""
    windows: list[tuple[str, int, int, bool]] = []
    enforced = {
        "per-second": (1, account.rate_limit_per_second),
        "per-minute": (60, account.rate_limit_per_minute),
    }
    for name, (seconds, limit) in enforced.items():
        if limit is not None:
            windows.append((name, seconds, limit, True))
    for name, seconds, limit in api.advertised_limits:
        if enforced.get(name, (0, None))[1] is None:
            windows.append((name, seconds, limit, False))
    hits = account.hits
    while hits and (hits[0] <= now - 60 or hits[0] > now):
        hits.popleft()

    def in_window(seconds: int) -> list[float]:
        return [t for t in hits if t > now - seconds]

    retry: int | None = None
    for _name, seconds, limit, is_enforced in windows:
        recent = in_window(seconds)
        if is_enforced and len(recent) >= limit:
            wait = max(1, math.ceil(recent[-limit] + seconds - now))
            retry = wait if retry is None else max(retry, wait)
    if retry is None:
        hits.append(now)
    if not api.rate_headers or not windows:
        return {}, retry
    items, policies = [], []
    tightest: tuple[int, int, int] | None = None
    partition = hashlib.sha256(account.api_key.encode()).hexdigest()[:16]
    for name, seconds, limit, _ in windows:
        recent = in_window(seconds)
        remaining = max(0, limit - len(recent))
        reset = max(1, math.ceil(recent[0] + seconds - now)) if recent else seconds
        items.append(f'"{name}";r={remaining};t={reset};pk="{partition}"')
        policies.append(f'"{name}";q={limit};w={seconds}')
        if tightest is None or remaining < tightest[1]:
            tightest = (limit, remaining, reset)
    assert tightest is not None
    headers = {
        "RateLimit": ", ".join(items),
        "RateLimit-Policy": ", ".join(policies),
        "RateLimit-Limit": str(tightest[0]),
        "RateLimit-Remaining": str(tightest[1]),
        "RateLimit-Reset": str(tightest[2]),
    }
    return headers, retry
