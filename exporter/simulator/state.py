"""The simulated world: the accounts, the simulated clock and the count of calls received.
Every method is thread-safe (one lock)."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from .account import SimAccount
from .registry import SIMULATED_APIS


class SimState:
    """Accounts keyed by their (fake) API key, a clock that :meth:`advance` moves forward, and
    the provider requests received per (key, path)."""

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._offset = 0.0
        self._lock = threading.RLock()
        self._accounts: dict[str, SimAccount] = {}
        self._calls: Counter[tuple[str, str]] = Counter()

    def now(self) -> float:
        """The simulated time (epoch seconds)."""
        with self._lock:
            return self._clock() + self._offset

    @property
    def offset(self) -> float:
        """How far :meth:`advance` moved the simulated clock, in seconds."""
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward; balances burn and days roll over lazily."""
        if seconds < 0 or math.isnan(seconds):
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._offset += seconds

    def add_account(self, provider: str, api_key: str, **fields: Any) -> None:
        """Create (or replace) the account with key ``api_key`` for the simulated API named
        ``provider``."""
        api = SIMULATED_APIS.get(provider)
        if api is None:
            raise ValueError(f"unknown provider {provider!r}; one of {', '.join(SIMULATED_APIS)}")
        if not api_key:
            raise ValueError("api_key must not be empty")
        with self._lock:
            now = self.now()
            account = api.account.create(api_key, now)
            account.apply(fields, now)
            self._accounts[api_key] = account

    def update(self, api_key: str, **fields: Any) -> None:
        """Patch an existing account's state; :class:`KeyError` if there is none."""
        with self._lock:
            account = self._accounts[api_key]
            account.apply(fields, self.now())

    def remove_account(self, api_key: str) -> None:
        with self._lock:
            del self._accounts[api_key]

    def accounts(self) -> dict[str, dict[str, Any]]:
        """Every account's current state (settled to now)."""
        with self._lock:
            now = self.now()
            out = {}
            for key, account in self._accounts.items():
                account.settle(now)
                out[key] = account.snapshot()
            return out

    def calls(self, api_key: str | None = None, path: str | None = None) -> int:
        """Provider API requests received, optionally only with this key and/or a path ending
        with ``path``. Requests that carried no key count under the key ``""``."""
        with self._lock:
            return sum(
                n
                for (key, request_path), n in self._calls.items()
                if (api_key is None or key == api_key)
                and (path is None or request_path == path or request_path.endswith(path))
            )

    def calls_summary(self) -> dict[str, Any]:
        with self._lock:
            by_key: Counter[str] = Counter()
            by_path: Counter[str] = Counter()
            for (key, path), n in self._calls.items():
                by_key[key] += n
                by_path[path] += n
            return {"total": sum(by_key.values()), "by_key": by_key, "by_path": by_path}

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()
