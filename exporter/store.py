"""Latest good readings and poll health per (account, endpoint).

The scheduler writes here; /metrics and the status page read. Every change bumps
``version`` and sets ``changed`` so the exposition cache knows to re-render; the names of the
accounts that changed collect in a set the renderer takes (:meth:`Store.take_dirty`), so it
re-renders only those; other readers (the status page) follow the same changes through a
:class:`ChangeFeed` of their own (:meth:`Store.feed`). A failed poll never
removes a value: the last good reading stays until ``max_staleness`` passes without a success.
First polls are reported to the store's :class:`~exporter.readiness.Readiness`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from .accounts import AccountBase
from .model import PollError, PoolValues, Reading, Reason
from .providers import Provider, create_provider
from .providers.base import merge_pools
from .readiness import Readiness

#: Sparkline history: at most this many points per pool (24 h at one point per 5 minutes).
HISTORY_POINTS = 288
HISTORY_SPAN = 86400.0
#: At most about this many points in all (12 bytes each: 24 MB). Above ~3,500 accounts each
#: pool keeps fewer points, further apart, over the same 24 hours.
HISTORY_BUDGET = 2_000_000


def history_points(accounts: int) -> int:
    """Points per pool for ``accounts`` accounts (reckoning two pools each)."""
    return max(24, min(HISTORY_POINTS, HISTORY_BUDGET // max(1, 2 * accounts)))


class History:
    """One pool's (time, remaining) points, oldest first, at most ``maxlen``.

    Kept in two arrays (whole seconds as 32-bit integers, values as 64-bit floats): 12 bytes a
    point instead of about 100 for a deque of float tuples, which at 10,000 accounts and a day
    of points is the difference between tens and hundreds of megabytes. Iterating and
    indexing give ``(time, value)`` tuples, like the deque it replaces."""

    __slots__ = ("_t", "_v", "maxlen")

    def __init__(self, maxlen: int = HISTORY_POINTS) -> None:
        self.maxlen = maxlen
        self._t = array("I")
        self._v = array("d")

    def __len__(self) -> int:
        return len(self._v)

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return zip(map(float, self._t), self._v, strict=True)

    def __getitem__(self, i: int) -> tuple[float, float]:
        return float(self._t[i]), self._v[i]

    def __setitem__(self, i: int, point: tuple[float, float]) -> None:
        self._t[i], self._v[i] = int(point[0]), point[1]

    def append(self, point: tuple[float, float]) -> None:
        if len(self._v) >= self.maxlen:
            self.popleft()
        self._t.append(int(point[0]))
        self._v.append(point[1])

    def popleft(self) -> tuple[float, float]:
        point = self[0]
        del self._t[0], self._v[0]
        return point

    def __repr__(self) -> str:
        return f"History({list(self)!r}, maxlen={self.maxlen})"


@dataclass(slots=True)
class EndpointState:
    """Health of one (account, endpoint) loop and its last good reading."""

    polls_total: int = 0
    errors_total: dict[Reason, int] = field(default_factory=dict)
    up: bool | None = None  # None: never polled
    last_attempt: float | None = None
    last_success: float | None = None
    last_duration: float | None = None
    last_error: PollError | None = None
    consecutive_failures: int = 0
    reading: Reading | None = None


@dataclass(slots=True)
class ConsumedCounter:
    """The consumed-credits counter of one pool (:data:`exporter.catalogue.CONSUMED`), from
    the provider's daily buckets.

    The first reading only sets the baseline (no jump at start-up); afterwards a day that grows
    adds its growth, a new day adds its value, a day that shrinks or leaves the provider's
    lookback window takes nothing away. The total never decreases.
    """

    total: float = 0.0
    seen: dict[str, float] = field(default_factory=dict)
    baseline_day: str | None = None

    def update(self, days: dict[str, float], keep_days: int = 400) -> None:
        if self.baseline_day is None:
            self.seen = dict(days)
            self.baseline_day = max(days) if days else ""
            return
        for day, value in days.items():
            prev = self.seen.get(day)
            if prev is None:
                if day < self.baseline_day:
                    continue  # history from before we started watching
                self.total += value
                self.seen[day] = value
            elif value > prev:
                self.total += value - prev
                self.seen[day] = value
        if len(self.seen) > keep_days:
            for day in sorted(self.seen)[: len(self.seen) - keep_days]:
                del self.seen[day]
            # Days now forgotten must not count again if a provider re-lists them.
            self.baseline_day = max(self.baseline_day, min(self.seen))


@dataclass(slots=True)
class AccountState:
    account: AccountBase
    provider: Provider
    endpoints: dict[str, EndpointState]
    counters: dict[str, ConsumedCounter] = field(default_factory=dict)
    history: dict[str, History] = field(default_factory=dict)
    #: The notes of its readings last logged (see Scheduler._log_notes).
    logged_notes: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.account.name

    def pools(self, now: float) -> Mapping[str, PoolValues]:
        """Merged pool values from every endpoint's fresh reading (stale ones are dropped)."""
        return self.merged(now).pools

    def fresh_readings(self, now: float) -> dict[str, Reading]:
        """Endpoint -> its last good reading, for the endpoints not past ``max_staleness``."""
        out = {}
        staleness = self.account.effective_max_staleness
        for name, ep in self.endpoints.items():
            fresh = ep.last_success is not None and now - ep.last_success <= staleness
            if ep.reading is not None and fresh:
                out[name] = ep.reading
        return out

    def merged(self, now: float) -> Reading:
        """One view of everything the account's fresh readings say. Each endpoint's values
        stand on their own: a pool only one endpoint reports (e.g. TheirStack's consumption
        while the balance has never answered) is there with what that endpoint says."""
        by_endpoint = self.fresh_readings(now)
        readings = list(by_endpoint.values())

        def first(get: Callable[[Reading], float | None]) -> float | None:
            for r in readings:
                value = get(r)
                if value is not None:
                    return value
            return None

        consumption: dict[str, dict[str, float]] = {}
        notes: dict[str, str] = {}
        for r in readings:
            for pool, windows in r.consumption.items():
                consumption.setdefault(pool, {}).update(windows)
            notes.update(r.notes)
        pools = merge_pools(*(r.pools for r in readings))
        for pool in consumption:
            pools.setdefault(pool, PoolValues())
        merged = Reading(
            pools=pools,
            expiry_timestamp=first(lambda r: r.expiry_timestamp),
            cycle_start_timestamp=first(lambda r: r.cycle_start_timestamp),
            cycle_end_timestamp=first(lambda r: r.cycle_end_timestamp),
            seats=first(lambda r: r.seats),
            consumption=consumption,
            notes=notes,
        )
        return self.provider.derive(merged, by_endpoint)

    def stale_at(self, now: float) -> float | None:
        """When the next of its fresh readings passes ``max_staleness`` (its values then drop
        from the exposition); None when none will."""
        staleness = self.account.effective_max_staleness
        return min(
            (
                ep.last_success + staleness
                for ep in self.endpoints.values()
                if ep.reading is not None
                and ep.last_success is not None
                and ep.last_success + staleness >= now
            ),
            default=None,
        )

    @property
    def up(self) -> bool | None:
        states = [ep.up for ep in self.endpoints.values()]
        if any(s is False for s in states):
            return False
        if any(s is None for s in states):
            return None
        return True


class ChangeFeed:
    """The changes of the store one reader has not taken yet: the names of the accounts that
    changed, whether anything else changed (accounts added or removed, the reload state), and
    an event set on every change."""

    __slots__ = ("_event", "_names", "_other")

    def __init__(self) -> None:
        self._names: set[str] = set()
        self._other = True  # a new reader starts with everything to read
        self._event = asyncio.Event()
        self._event.set()

    def touch(self, name: str | None = None) -> None:
        if name is None:
            self._other = True
        else:
            self._names.add(name)
        self._event.set()

    def take(self) -> tuple[set[str], bool]:
        """(accounts changed, whether anything else changed) since the last call."""
        names, other = self._names, self._other
        self._names, self._other = set(), False
        self._event.clear()
        return names, other

    async def wait(self) -> None:
        await self._event.wait()


@dataclass(slots=True)
class Applied:
    """What :meth:`Store.set_accounts` did, by account name."""

    started: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: Kept their state under a changed config (a new key, interval, labels...): name -> the
    #: interval each of its endpoints had.
    reconfigured: dict[str, dict[str, float]] = field(default_factory=dict)


class Store:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.accounts: dict[str, AccountState] = {}
        self.version = 0
        self.changed = asyncio.Event()
        self.reload_successful = True
        self.reload_success_timestamp: float | None = None
        self._dirty: set[str] = set()
        self._feeds: list[ChangeFeed] = []
        self.history_points = HISTORY_POINTS  # for pools that start a history now
        self.readiness = Readiness()

    def _bump(self, name: str | None = None) -> None:
        self.version += 1
        if name is None:
            for feed in self._feeds:
                feed.touch()
        else:
            self._mark_dirty(name)
        self.changed.set()

    def _mark_dirty(self, name: str) -> None:
        """``name`` changed: for the exposition renderer and every other reader's feed."""
        self._dirty.add(name)
        for feed in self._feeds:
            feed.touch(name)

    def feed(self) -> ChangeFeed:
        """A new reader's view of the changes from now on (it starts with one pending)."""
        feed = ChangeFeed()
        self._feeds.append(feed)
        return feed

    def take_dirty(self) -> set[str]:
        """Names of the accounts whose state changed since the last call (one consumer: the
        exposition renderer). Accounts added or removed show in :attr:`accounts` itself."""
        dirty, self._dirty = self._dirty, set()
        return dirty

    # -- accounts

    def set_accounts(self, accounts: Iterable[AccountBase]) -> Applied:
        """Make the store hold exactly ``accounts``.

        An account whose identity (provider, base_url, what it polls) is unchanged keeps its
        state: last values, consumed-credits counters, history and error counters. If anything
        else changed (key, interval, timeout, thresholds, labels...), its state moves to a new
        :class:`AccountState` with the new config and a provider built from it, so the next
        poll uses them; a new or re-identified account starts fresh."""
        wanted = {a.name: a for a in accounts}
        applied = Applied()
        for name in list(self.accounts):
            new = wanted.get(name)
            old = self.accounts[name]
            if new is None or new.identity() != old.account.identity():
                del self.accounts[name]
                self.readiness.forget(name)
                applied.removed.append(name)
            elif new != old.account:
                self.accounts[name] = dataclasses.replace(
                    old, account=new, provider=create_provider(new)
                )
                applied.reconfigured[name] = {
                    ep: old.provider.poll_interval(ep) for ep in old.endpoints
                }
                self._mark_dirty(name)
        for name, account in wanted.items():
            if name not in self.accounts:
                provider = create_provider(account)
                self.accounts[name] = AccountState(
                    account=account,
                    provider=provider,
                    endpoints={ep: EndpointState() for ep in provider.endpoints},
                )
                applied.started.append(name)
                self._mark_dirty(name)
                self.readiness.expect(name, len(provider.endpoints))
        # Keep config order (for stable output).
        self.accounts = {name: self.accounts[name] for name in wanted}
        self.history_points = history_points(len(self.accounts))
        self._bump()
        self.readiness.accounts_set(self.version)
        return applied

    def set_reload_result(self, ok: bool) -> None:
        self.reload_successful = ok
        if ok:
            self.reload_success_timestamp = self.clock()
        self._bump()

    # -- poll results

    def record_success(self, name: str, endpoint: str, reading: Reading, duration: float) -> None:
        state = self.accounts.get(name)
        if state is None:  # removed by a reload while the poll ran
            return
        now = self.clock()
        ep = state.endpoints[endpoint]
        first = ep.polls_total == 0
        ep.polls_total += 1
        ep.up = True
        ep.last_attempt = now
        ep.last_success = now
        ep.last_duration = duration
        ep.last_error = None
        ep.consecutive_failures = 0
        for pool, days in reading.daily_consumption.items():
            state.counters.setdefault(pool, ConsumedCounter()).update(dict(days))
        if reading.daily_consumption:  # in the counters now: not kept twice
            reading = dataclasses.replace(reading, daily_consumption={})
        ep.reading = reading
        self._record_history(state, now)
        self._bump(name)
        if first:
            self.readiness.first_poll(name, self.version)

    def record_failure(self, name: str, endpoint: str, error: PollError, duration: float) -> None:
        state = self.accounts.get(name)
        if state is None:
            return
        now = self.clock()
        ep = state.endpoints[endpoint]
        first = ep.polls_total == 0
        ep.polls_total += 1
        ep.errors_total[error.reason] = ep.errors_total.get(error.reason, 0) + 1
        ep.up = False
        ep.last_attempt = now
        ep.last_duration = duration
        ep.last_error = error
        ep.consecutive_failures += 1
        self._bump(name)
        if first:
            self.readiness.first_poll(name, self.version)

    def _record_history(self, state: AccountState, now: float) -> None:
        pools = state.pools(now)
        # A pool the provider no longer reports (an http_json ``for_each`` whose names change)
        # takes its history with it: kept, histories would pile up without bound.
        for gone in [pool for pool in state.history if pool not in pools]:
            del state.history[gone]
        for pool, values in pools.items():
            if values.remaining is None:
                continue
            points = state.history.get(pool)
            if points is None:
                points = state.history[pool] = History(self.history_points)
            # One point per STEP: while the point before the newest is younger than a step,
            # the newest is overwritten, so fast polling cannot push the history out.
            if len(points) > 1 and now - points[-2][0] < HISTORY_SPAN / points.maxlen:
                points[-1] = (now, values.remaining)
                continue
            points.append((now, values.remaining))
            while points and now - points[0][0] > HISTORY_SPAN:
                points.popleft()
