"""Start-up readiness: the exporter is ready once /metrics serves every account's first poll.

One :class:`Readiness` per store (:attr:`exporter.store.Store.readiness`) is the only place that
knows it:

- which accounts still wait for the first poll (success or failure) of one of their endpoints:
  the store tells it of accounts coming and going and of every first poll, with the store
  version that published the change (:meth:`Readiness.expect`, :meth:`Readiness.forget`,
  :meth:`Readiness.accounts_set`, :meth:`Readiness.first_poll`);
- what /metrics serves: the exposition cache tells it of every rendering it publishes
  (:meth:`Readiness.published`).

Everyone else asks it: the incremental renderer renders an account once every endpoint of it
answered (:meth:`Readiness.waiting`) and renders promptly when the last first poll is in
(:meth:`Readiness.wait_polled`), as does the daemon's end of start-up; the status cache's first
rendering waits until /metrics serves them (:meth:`Readiness.wait_ready`); /readyz asks
:attr:`Readiness.ready` and :meth:`Readiness.reason`. Nothing is ready before the store's
accounts are set the first time; accounts a reload adds make it wait again for theirs.
"""

from __future__ import annotations

import asyncio


class Readiness:
    def __init__(self) -> None:
        #: Account -> how many of its endpoints have not been polled yet (waiting ones only:
        #: every question costs the same at 10,000 accounts as at one).
        self._waiting: dict[str, int] = {}
        self._loaded = False  # the store's accounts were set
        self._polled = asyncio.Event()
        #: The store version at which every first poll was last in: an exposition of an older
        #: version lacks one.
        self._polled_version = 0
        self._served_version = -1  # nothing published yet
        self._served_complete = False
        self._ready = asyncio.Event()

    # -- told by the store

    def expect(self, name: str, endpoints: int) -> None:
        """A new account whose ``endpoints`` endpoints are to be polled a first time."""
        if endpoints:
            self._waiting[name] = endpoints

    def forget(self, name: str) -> None:
        """The account is gone (or starts afresh: :meth:`expect` follows)."""
        self._waiting.pop(name, None)

    def first_poll(self, name: str, version: int) -> None:
        """One of the account's endpoints answered its first poll, published at store
        ``version``."""
        left = self._waiting.get(name)
        if left is None:
            return
        if left > 1:
            self._waiting[name] = left - 1
            return
        del self._waiting[name]
        if not self._waiting:
            self._settle(version)

    def accounts_set(self, version: int) -> None:
        """The store's accounts were set (after :meth:`expect` and :meth:`forget` for each
        account that came or went), published at store ``version``."""
        self._loaded = True
        self._settle(version)

    def _settle(self, version: int) -> None:
        if self._waiting:
            self._polled.clear()
        elif not self._polled.is_set():
            self._polled_version = version
            self._polled.set()
        self._update()

    # -- told by the exposition cache

    def published(self, version: int, complete: bool) -> None:
        """/metrics now serves the rendering of store ``version``; ``complete``: every account
        had been polled once when it was rendered."""
        self._served_version = version
        self._served_complete = complete
        self._update()

    def _update(self) -> None:
        if self.ready:
            self._ready.set()
        else:
            self._ready.clear()

    # -- asked

    @property
    def polled(self) -> bool:
        """Every endpoint of every account polled at least once."""
        return self._loaded and not self._waiting

    def waiting(self, name: str) -> bool:
        """An endpoint of the account has not been polled yet."""
        return name in self._waiting

    async def wait_polled(self) -> None:
        """Until :attr:`polled`."""
        await self._polled.wait()

    @property
    def ready(self) -> bool:
        """/metrics serves every account's first poll (what /readyz says)."""
        return (
            self._served_complete and self.polled and self._served_version >= self._polled_version
        )

    async def wait_ready(self) -> None:
        """Until :attr:`ready`."""
        await self._ready.wait()

    def reason(self) -> str:
        """Why not :attr:`ready`."""
        if not self._loaded:
            return "accounts not loaded yet"
        if self._waiting:
            return f"{len(self._waiting)} account(s) not polled yet"
        return "first results not rendered yet"
