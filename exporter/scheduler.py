"""Polling loops: one per (account, endpoint), a timer between polls and a task while polling.

Each loop polls at once, then every ``interval`` with +-10% jitter (the provider's
:meth:`~exporter.providers.base.Provider.poll_interval` for that endpoint: the account's
``interval``, or longer for an endpoint whose data changes slowly upstream). A failure is
recorded and retried with exponential backoff capped at the interval (a success resets it);
``Retry-After`` on 429/503 is obeyed. Every poll (one request) waits for its key's turn at the
rate limiter (shared by all loops on the same provider and key, see :mod:`exporter.ratelimit`)
and then for a slot of the per-provider semaphore that caps concurrent requests, and hands the
provider's ``fetch`` the account's client for that endpoint
(:class:`~exporter.http.AccountClient`: key forms, timeout, the endpoint's body cap and the
limiter bound, built once per account, endpoint and config). Nothing a provider does ends a
loop: a crash in our own code fails the poll with reason ``internal``, its traceback logged
once; cancellation propagates, and :meth:`Scheduler.stop` waits for every task.

Like Home Assistant's update coordinator, a source going down is logged once (with its reason)
and its recovery once; repeated failures for the same reason are logged at debug level.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterable, Mapping

from .accounts import AccountBase
from .config import Config
from .http import AccountClient, HttpClient
from .log import get_logger
from .model import PollError, Reason
from .ratelimit import RateLimits
from .store import AccountState, Store

log = get_logger("exporter.scheduler")

JITTER = 0.1
#: Loops started per event-loop turn: starting 16,000 at once would run all their first steps
#: in one turn and hold the loop for a second.
START_BATCH = 200
#: Retry backoff starts at interval / BACKOFF_DIVISOR (at least MIN_BACKOFF seconds).
BACKOFF_DIVISOR = 32
MIN_BACKOFF = 1.0


def log_bug(event: str, account: str, endpoint: str, exc: BaseException) -> None:
    """A bug, with its traceback, in the log; never raises: a poll loop goes on regardless."""
    with contextlib.suppress(Exception):
        log.error(
            event,
            account=account,
            endpoint=endpoint,
            error_type=type(exc).__name__,
            exc_info=exc,
        )


def next_delay(
    interval: float,
    failures: int,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds until the next poll.

    After a success (``failures == 0``): the interval, +-10%. After ``n`` consecutive failures:
    ``base * 2**(n-1)`` capped at the interval, +-10%, where ``base`` is a 32nd of the interval
    but at least a second (and never more than the interval). A ``Retry-After`` longer than
    that is obeyed as given.
    """
    if failures <= 0:
        delay = interval
    else:
        base = min(interval, max(MIN_BACKOFF, interval / BACKOFF_DIVISOR))
        delay = min(interval, base * 2 ** min(failures - 1, 30))
    delay *= 1 + JITTER * (2 * rand() - 1)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay


class PollLoop:
    """One (account, endpoint) polling loop. Between polls it is a timer, not a task: a
    sleeping task with its coroutine frames costs ~1.5 kB, which at 10,000 accounts (16,000
    loops) is 24 MB of memory and 100,000 objects for the cycle collector to walk; a timer costs
    ~0.3 kB. A task exists only while the loop polls (:attr:`task`)."""

    __slots__ = ("endpoint", "handle", "state", "stopped", "task")

    def __init__(self, state: AccountState, endpoint: str) -> None:
        self.state = state
        self.endpoint = endpoint
        self.handle: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopped = False

    def cancel(self) -> asyncio.Task[None] | None:
        """Stop the loop; returns the poll in flight (cancelled), if any, to await."""
        self.stopped = True
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            return task
        return None


class Scheduler:
    def __init__(self, store: Store, http: HttpClient, config: Config) -> None:
        self.store = store
        self.http = http
        self.config = config
        #: (account, endpoint) -> its loop.
        self.tasks: dict[tuple[str, str], PollLoop] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        #: (account name, endpoint) -> (the account config, its client), built on its first
        #: poll.
        self._clients: dict[tuple[str, str], tuple[AccountBase, AccountClient]] = {}
        self.limits = RateLimits()
        self.limits.configure(config)
        self._apply_lock = asyncio.Lock()

    def _semaphore(self, provider: str) -> asyncio.Semaphore:
        sem = self._semaphores.get(provider)
        if sem is None:
            limit = self.config.provider_settings(provider).max_concurrency
            sem = self._semaphores[provider] = asyncio.Semaphore(limit)
        return sem

    async def start(self) -> None:
        await self.apply(self.config)

    async def apply(self, config: Config) -> None:
        """Make the running loops match ``config`` atomically: added accounts start, removed
        ones and those that poll something else now stop (their series go), and the others
        keep their state and schedule. A changed key or timeout is used from the next poll on,
        a changed interval from the next schedule (a shorter one at once)."""
        async with self._apply_lock:
            await self._apply(config)

    async def _apply(self, config: Config) -> None:
        if self._semaphores and config.providers != self.config.providers:
            self._semaphores = {}
        self.config = config
        self.limits.configure(config)
        applied = self.store.set_accounts(config.accounts)
        started, removed = applied.started, applied.removed
        # Clients of removed or changed accounts go; the limiters of keys still in use stay.
        self._clients = {
            key: bound
            for key, bound in self._clients.items()
            if (state := self.store.accounts.get(key[0])) is not None and state.account is bound[0]
        }
        for name, old_intervals in applied.reconfigured.items():
            self._reconfigure(self.store.accounts[name], old_intervals)
        stopping = [loop for (name, _), loop in self.tasks.items() if name in removed]
        self.tasks = {key: t for key, t in self.tasks.items() if key[0] not in removed}
        in_flight = [task for loop in stopping if (task := loop.cancel()) is not None]
        await asyncio.gather(*in_flight, return_exceptions=True)
        for i, name in enumerate(started, 1):
            state = self.store.accounts.get(name)
            if state is not None:
                self._start_account(state)
            if i % START_BATCH == 0:
                await asyncio.sleep(0)
        if started or removed or applied.reconfigured:
            log.info(
                "accounts applied",
                started=len(started),
                stopped=len(removed),
                reconfigured=len(applied.reconfigured),
            )

    def _reconfigure(self, state: AccountState, old_intervals: Mapping[str, float]) -> None:
        """Point the account's loops at its new state. With a shorter interval, a loop waiting
        longer than the new one (with its jitter and backoff) is woken sooner, unless the
        provider asked for a Retry-After; a longer interval applies from the next poll."""
        loop_time = asyncio.get_running_loop().time()
        for endpoint, ep in state.endpoints.items():
            loop = self.tasks.get((state.name, endpoint))
            if loop is None:
                continue
            loop.state = state
            handle = loop.handle
            interval = state.provider.poll_interval(endpoint)
            if handle is None or loop.stopped or interval >= old_intervals[endpoint]:
                continue
            if ep.up is False and ep.last_error is not None and ep.last_error.retry_after:
                continue
            delay = next_delay(interval, ep.consecutive_failures)
            if loop_time + delay < handle.when():
                handle.cancel()
                loop.handle = asyncio.get_running_loop().call_later(delay, self._fire, loop)

    def _start_account(self, state: AccountState) -> None:
        for endpoint in state.endpoints:
            loop = self.tasks[(state.name, endpoint)] = PollLoop(state, endpoint)
            self._fire(loop)  # the first poll at once

    def _fire(self, loop: PollLoop) -> None:
        loop.handle = None
        if not loop.stopped:
            loop.task = asyncio.create_task(
                self._poll(loop), name=f"poll {loop.state.name} {loop.endpoint}"
            )

    async def stop(self) -> None:
        loops = list(self.tasks.values())
        self.tasks.clear()
        in_flight = [task for loop in loops if (task := loop.cancel()) is not None]
        await asyncio.gather(*in_flight, return_exceptions=True)

    def _client(self, state: AccountState, endpoint: str) -> AccountClient:
        """The client of the account's ``endpoint``: built on its first poll, again after a
        reload changed the account. Its key forms are the provider's
        (:meth:`~exporter.providers.base.Provider.credential`), its body cap the endpoint's
        (:meth:`~exporter.providers.base.Provider.max_response_size`)."""
        account = state.account
        bound = self._clients.get((account.name, endpoint))
        if bound is not None and bound[0] is account:
            return bound[1]
        client = AccountClient(
            self.http,
            secrets=state.provider.credential(account).forms,
            timeout=account.effective_timeout,
            max_body_bytes=state.provider.max_response_size(endpoint),
            limiter=self.limits.for_account(account),
        )
        self._clients[(account.name, endpoint)] = (account, client)
        return client

    async def poll_once(self, state: AccountState, endpoint: str) -> PollError | None:
        """Poll one endpoint once and record the result; returns the error, if any."""
        account = state.account
        client = self._client(state, endpoint)
        # The key's turn first, then a concurrency slot: waiting for a turn holds no slot.
        await client.limiter.acquire()
        async with self._semaphore(account.provider):
            started = time.monotonic()
            try:
                reading = await state.provider.fetch(endpoint, client)
            except PollError as exc:
                # Kept for the status page and the log: the message may quote the response,
                # never with the account's key in it; and a detached copy, since the original's
                # traceback would keep this call's frames (response, body) alive.
                error = exc.redacted(*client.secrets)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug of ours must not end the loop, nor blame the API
                error = PollError(Reason.INTERNAL, f"internal error ({type(exc).__name__})")
                last = state.endpoints[endpoint].last_error
                if last is None or last.message != error.message:  # once, while it lasts
                    log_bug("poll crashed", account.name, endpoint, exc)
            else:
                self.store.record_success(
                    account.name, endpoint, reading, time.monotonic() - started
                )
                return None
        self.store.record_failure(account.name, endpoint, error, time.monotonic() - started)
        return error

    async def _poll(self, loop: PollLoop) -> None:
        """One turn of a loop: poll, log a change of state, and set the timer for the next.
        Whatever fails here (a log line that cannot be written, a bug), the next poll is
        scheduled: only cancellation ends a loop."""
        delay = next_delay(loop.state.provider.poll_interval(loop.endpoint), 0)
        try:
            delay = await self._poll_and_log(loop)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            state = loop.state
            log_bug("poll loop error", state.name, loop.endpoint, exc)
            failures = state.endpoints[loop.endpoint].consecutive_failures
            delay = next_delay(state.provider.poll_interval(loop.endpoint), failures)
        finally:
            loop.task = None
            if not loop.stopped:
                loop.handle = asyncio.get_running_loop().call_later(delay, self._fire, loop)

    async def _poll_and_log(self, loop: PollLoop) -> float:
        """Poll once and log a change of state; returns the delay until the next poll."""
        state, endpoint = loop.state, loop.endpoint
        ep = state.endpoints[endpoint]
        was_up = ep.up
        previous_reason = ep.last_error.reason if ep.last_error else None
        error = await self.poll_once(state, endpoint)
        # A reload may have given the account a new config while it polled.
        state = loop.state
        account = state.account
        interval = state.provider.poll_interval(endpoint)
        if error is None:
            self._log_notes(state)
            if was_up is False:
                log.info(
                    "account recovered",
                    account=account.name,
                    provider=state.provider.label,
                    endpoint=endpoint,
                )
            return next_delay(interval, 0)
        fields = {
            "account": account.name,
            "provider": state.provider.label,
            "endpoint": endpoint,
            "reason": error.reason.value,
            "error": error.message,
        }
        delay = next_delay(interval, ep.consecutive_failures, error.retry_after)
        if was_up is not False:
            log.warning("account down", **fields)
        elif previous_reason != error.reason:
            log.warning("account still down", **fields)
        else:
            log.debug("poll failed", failures=ep.consecutive_failures, **fields)
        return delay

    def _log_notes(self, state: AccountState) -> None:
        """Log a note of the account's readings (why a value is left out) once when it
        appears or changes, and once when it goes."""
        notes = state.merged(self.store.clock()).notes
        if notes == state.logged_notes:
            return
        for about, note in notes.items():
            if state.logged_notes.get(about) != note:
                log.info(
                    "reading note",
                    account=state.name,
                    provider=state.provider.label,
                    about=about,
                    note=note,
                )
        for about in state.logged_notes.keys() - notes.keys():
            log.info(
                "reading note cleared",
                account=state.name,
                provider=state.provider.label,
                about=about,
            )
        state.logged_notes = dict(notes)


async def poll_all_once(
    store: Store, http: HttpClient, config: Config, accounts: Iterable[AccountBase] | None = None
) -> list[tuple[str, str, PollError]]:
    """Poll every (account, endpoint) once, concurrently within the provider limits."""
    scheduler = Scheduler(store, http, config)
    if accounts is not None:
        scheduler.limits.configure(config, accounts)
    store.set_accounts(accounts if accounts is not None else config.accounts)
    jobs = [(s, ep) for s in store.accounts.values() for ep in s.endpoints]
    results = await asyncio.gather(*(scheduler.poll_once(s, ep) for s, ep in jobs))
    return [(s.name, ep, err) for (s, ep), err in zip(jobs, results, strict=True) if err]
