"""The status page and ``/api/status`` at any number of accounts: rendered once per change,
served like /metrics.

On the event loop, in slices of at most :data:`SLICE_SECONDS`, the accounts that changed (the
store names them) or whose state changes with time alone (:func:`~exporter.statushtml.
valid_until`) are snapshotted (:func:`~exporter.statuspage.account_status`: readers never touch
the live store) and rendered into two fragments each, their ``<tbody>`` (ages and countdowns
left as marks, written when a page is put together) and their JSON object. A
:class:`Rendering` then holds every account's fragments in the page's order (problems first),
the counts by state and by provider, and the two views everyone asks for (the first page, the
whole JSON) with their gzip form: put together in a thread, deflated in the render thread (C
code that releases the GIL). The JSON is compressed in blocks of :data:`BLOCK_ROWS` accounts,
and a block whose fragments did not change keeps its compressed bytes (as /metrics does).

Any other view (filters, another page) is a slice of the same fragments inside the page's
shell, made on the first request for it and kept with the rendering. Every view has an ETag;
``If-None-Match`` gets a 304 without any work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import secrets
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from . import __version__
from .deadlines import Deadlines
from .exposition import deflate_segment, gzip_from_segments, render_executor
from .log import get_logger
from .statushtml import (
    REFRESH_SECONDS,
    fill_times,
    render_account,
    render_shell,
    valid_until,
    warm_up,
)
from .statuspage import SEVERITY_RANK, SEVERITY_TEXT, account_json, account_status
from .statusquery import PAGE_PER_PAGE, PER_PAGE_CHOICES, Query
from .store import HISTORY_SPAN, AccountState, Store

log = get_logger("exporter.status")

SLICE_SECONDS = 0.005
#: Renders at most this often: the page refreshes every 30 s, the JSON is read by scripts.
MIN_INTERVAL = 2.0
BLOCK_ROWS = 128
COMPRESS_LEVEL = 6
#: The rows' HTML is kept compressed at this (fast) level: a quarter of the memory.
HTML_LEVEL = 1
#: The first rendering waits at most this long for start-up to be over.
STARTUP_WAIT = 5.0
#: A page's ages are to the minute: it is put together again at least this often.
TICK = 60.0
#: Views other than the two prepared ones kept per rendering.
VIEWS_KEPT = 64
#: Bodies at least this large are compressed in the render thread, not on the loop.
THREAD_COMPRESS = 32 << 10


@dataclass(frozen=True, slots=True)
class Row:
    """One account as readers see it: what the filters and counts need, and its two rendered
    fragments (the snapshot they were rendered from is not kept: its history alone would weigh
    more than both)."""

    account: str
    provider: str
    severity: str
    rank: int
    pools: int
    html_z: bytes  # compressed (zlib): a page shows a hundred rows, memory holds them all
    json: bytes
    search: str  # the name, lower case (the ``account`` filter)

    @property
    def html(self) -> bytes:
        return zlib.decompress(self.html_z)


@dataclass(frozen=True, slots=True)
class Body:
    """A view's bytes: kept as parts (the whole JSON is never joined into one copy) with its
    ETag and, once asked for, its gzip form."""

    parts: tuple[bytes, ...]
    etag: str
    gzip: bytes | None = None

    @property
    def size(self) -> int:
        return sum(map(len, self.parts))

    def joined(self) -> bytes:
        return self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)


def gzip_body(data: bytes) -> bytes:
    return gzip_from_segments([deflate_segment(data, COMPRESS_LEVEL)], [data])


def _interleave(frags: list[bytes]) -> list[bytes]:
    """The fragments with a comma between each two."""
    out = [b","] * (2 * len(frags) - 1) if frags else []
    out[::2] = frags
    return out


@dataclass(slots=True)
class _Block:
    rows: tuple[bytes, ...]
    z: bytes


class Rendering:
    """Everything readers need, immutable once published: the rows in page order, the counts,
    and the views made so far."""

    def __init__(
        self,
        *,
        token: str,
        generation: int,
        generated_at: float,
        reload_successful: bool,
        reload_success_timestamp: float | None,
        rows: tuple[Row, ...],
        waiting: int = 0,
        starting: bool = False,
    ) -> None:
        self.token = token
        self.generation = generation
        self.generated_at = generated_at
        self.reload_successful = reload_successful
        self.reload_success_timestamp = reload_success_timestamp
        self.rows = rows
        self.waiting = waiting
        self.starting = starting  # before the first rendering of the accounts
        self.by_state: dict[str, list[Row]] = {s: [] for s in SEVERITY_RANK}
        self.by_provider: dict[str, list[Row]] = {}
        self.provider_counts: dict[str, dict[str, int]] = {}
        self.pools = 0
        for row in rows:
            sev, provider = row.severity, row.provider
            self.by_state[sev].append(row)
            self.by_provider.setdefault(provider, []).append(row)
            counts = self.provider_counts.get(provider)
            if counts is None:
                counts = self.provider_counts[provider] = dict.fromkeys(SEVERITY_RANK, 0)
            counts[sev] += 1
            self.pools += row.pools
        self.counts = {sev: len(members) for sev, members in self.by_state.items()}
        self.providers = sorted(self.by_provider)
        self._views: OrderedDict[tuple[str, str], Body] = OrderedDict()

    # ------------------------------------------------------------------ selecting

    def etag(self, kind: str, query: Query) -> str:
        view = zlib.crc32(f"{kind}?{query.key()}".encode())
        return f'W/"{self.token}-{self.generation}-{view:08x}"'

    def select(self, query: Query) -> list[Row]:
        """The rows the filters let through, in page order."""
        candidates: list[list[Row]] = []
        if query.states:
            candidates.append(self._union(self.by_state, query.states))
        if query.providers:
            candidates.append(self._union(self.by_provider, query.providers))
        needle = query.account.lower()
        if len(candidates) == 1 and not needle:
            return candidates[0]  # an index answers one kind of filter exactly
        rows = min(candidates, key=len) if candidates else self.rows
        states, providers = set(query.states), set(query.providers)
        return [
            r
            for r in rows
            if (not states or r.severity in states)
            and (not providers or r.provider in providers)
            and needle in r.search
        ]

    def _union(self, index: dict[str, list[Row]], keys: tuple[str, ...]) -> list[Row]:
        if len(keys) == 1:
            return index.get(keys[0], [])
        keep = {id(r) for k in keys for r in index.get(k, ())}
        return [r for r in self.rows if id(r) in keep] if keep else []

    # ------------------------------------------------------------------ the views

    def cached(self, kind: str, query: Query) -> Body | None:
        body = self._views.get((kind, query.key()))
        if body is not None:
            self._views.move_to_end((kind, query.key()))
        return body

    def keep(self, kind: str, query: Query, body: Body) -> Body:
        self._views[(kind, query.key())] = body
        while len(self._views) > VIEWS_KEPT:
            self._views.popitem(last=False)
        return body

    def title(self) -> str:
        problems = [
            f"{self.counts[s]:,} {SEVERITY_TEXT[s].lower()}"
            for s in ("failing", "stale", "never_polled", "low")
            if self.counts[s]
        ]
        return ("\u26a0 " + ", ".join(problems) + " \u00b7 " if problems else "") + "Credits"

    def page_html(self, query: Query) -> bytes:
        """The status page for ``query``: the shell around the fragments of its slice."""
        selected = self.select(query)
        total = len(selected)
        pages = query.pages(total)
        query = query.clamped(total)
        start, end = query.window(total)

        def state_href(sev: str, provider: str | None = None) -> str:
            return Query((sev,), (provider,) if provider else ()).href()

        providers = [
            {
                "name": name,
                "href": Query(providers=(name,)).href(),
                "counts": self.provider_counts[name],
                "state_hrefs": {s: state_href(s, name) for s in SEVERITY_RANK},
                "total": len(self.by_provider[name]),
            }
            for name in self.providers
        ]
        pager = [
            ("\u00ab First", query.href(page=1) if query.page > 1 else None, None),
            (
                "\u2039 Previous",
                query.href(page=query.page - 1) if query.page > 1 else None,
                "prev",
            ),
            (
                "Next \u203a",
                query.href(page=query.page + 1) if query.page < pages else None,
                "next",
            ),
            ("Last \u00bb", query.href(page=pages) if query.page < pages else None, None),
        ]
        json_query = Query(query.states, query.providers, query.account, per_page=None)
        head, tail = render_shell(
            title=self.title(),
            version=__version__,
            now=self.generated_at,
            reload_successful=self.reload_successful,
            reload_ts=self.reload_success_timestamp,
            accounts=len(self.rows),
            waiting=self.waiting,
            starting=self.starting,
            pools=self.pools,
            counts=self.counts,
            state_links={s: state_href(s) for s in SEVERITY_RANK},
            providers=providers,
            open_providers=bool(query.providers),
            q=query,
            filtered=query.filtered,
            per_page_choices=sorted({*PER_PAGE_CHOICES, query.per_page or PAGE_PER_PAGE}),
            total=total,
            first=start + 1,
            last=end,
            pages=pages,
            pager=pager,
            json_href="/api/status" + json_query.href(default_per_page=None).rstrip("?"),
        )
        rows = fill_times(b"".join(r.html for r in selected[start:end]), self.generated_at)
        return b"".join([head.encode(), rows, tail.encode()])

    def api_parts(self, query: Query) -> tuple[bytes, ...]:
        """``/api/status`` for ``query`` as parts: its accounts' fragments are not copied."""
        head, frags, tail = self.json_parts(query)
        return (head, *_interleave(frags), tail)

    def json_parts(self, query: Query) -> tuple[bytes, list[bytes], bytes]:
        """``/api/status`` for ``query``: (head, account fragments, tail)."""
        selected = self.select(query)
        query = query.clamped(len(selected))
        start, end = query.window(len(selected))
        head = {
            "version": __version__,
            "generated_at": self.generated_at,
            "refresh_seconds": REFRESH_SECONDS,
            "config_reload_successful": self.reload_successful,
            "config_last_reload_success_timestamp": self.reload_success_timestamp,
            "history_span_seconds": HISTORY_SPAN,
            "severity_rank": SEVERITY_RANK,
            "counts": self.counts,
            "counts_by_provider": {name: self.provider_counts[name] for name in self.providers},
            "filters": {
                "state": list(query.states),
                "provider": list(query.providers),
                "account": query.account,
            },
            "total": len(selected),
            "page": query.page,
            "per_page": query.per_page,
            "pages": query.pages(len(selected)),
        }
        text = json.dumps(head, separators=(",", ":"))
        return (
            text[:-1].encode() + b',"accounts":[',
            [r.json for r in selected[start:end]],
            b"]}",
        )


@dataclass
class StatusStats:
    renders: int = 0
    accounts_rendered: int = 0
    blocks_deflated: int = 0
    last_seconds: float = 0.0


@dataclass(slots=True)
class _Entry:
    state: AccountState
    row: Row


@dataclass
class _Plan:
    names: list[str] = field(default_factory=list)
    other: bool = False  # accounts added, removed or reordered; the reload state


class StatusCache:
    """Keeps the status page and ``/api/status`` of the store ready; readers only ever use
    :attr:`current`. :meth:`run` re-renders when the store changed (at most every
    ``min_interval``), when an account's state is due to change with time, and every
    :data:`TICK` (the ages on the page)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float] | None = None,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self.store = store
        self.clock = clock or store.clock
        self.min_interval = min_interval
        self.stats = StatusStats()
        self._feed = store.feed()
        self._token = secrets.token_hex(4)
        self._lock = asyncio.Lock()
        self._entries: dict[str, _Entry] = {}
        self._order: list[str] = []
        self._due = Deadlines()
        self._tick_at = math.inf
        self._blocks: list[_Block] = []
        self._generation = 0
        # With accounts already there (tests, a cache made late) render them now; an empty
        # store (the daemon's start) costs nothing and compiles no template.
        self.current = self.render() if store.accounts else self._empty()

    # ------------------------------------------------------------------ public

    def render(self) -> Rendering:
        """Bring everything up to date now, synchronously (construction, tests)."""
        started = time.perf_counter()
        now = self.clock()
        plan = self._plan(now)
        self._render_rows(plan.names, now)
        assembled = self._assemble(*self._collect(now))
        self._publish(assembled[0], self._compress(*assembled), started)
        return self.current

    def _empty(self) -> Rendering:
        self._generation += 1
        return Rendering(
            token=self._token,
            generation=self._generation,
            generated_at=self.clock(),
            reload_successful=self.store.reload_successful,
            reload_success_timestamp=self.store.reload_success_timestamp,
            rows=(),
            starting=True,
        )

    async def refresh(self) -> None:
        """The same without holding the event loop: the changed accounts are snapshotted and
        rendered in slices on the loop; the rest runs in threads."""
        async with self._lock:
            started = time.perf_counter()
            now = self.clock()
            plan = self._plan(now)
            if not plan.names and not plan.other and now < self._tick_at:
                return
            names = plan.names
            deadline = time.perf_counter() + SLICE_SECONDS
            for i in range(0, len(names), 16):
                self._render_rows(names[i : i + 16], now)
                if time.perf_counter() >= deadline:
                    await asyncio.sleep(0)
                    deadline = time.perf_counter() + SLICE_SECONDS
            # Ordering, counting and putting the two views together is Python work: in a thread
            # of normal priority (the GIL passes to the loop every few milliseconds). The
            # compression, mostly C that releases the GIL, in the render thread, below the
            # loop's priority.
            assembled = await asyncio.to_thread(self._assemble, *self._collect(now))
            loop = asyncio.get_running_loop()
            bodies = await loop.run_in_executor(render_executor(), self._compress, *assembled)
            self._publish(assembled[0], bodies, started)

    async def run(self) -> None:
        """Re-render on changes, when due and every :data:`TICK`, until cancelled. The first
        rendering waits for start-up to be over (/readyz would say ready, at most
        :data:`STARTUP_WAIT`), so that the first poll wave is rendered once, and not while
        /metrics renders it."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.store.readiness.wait_ready(), STARTUP_WAIT)
        await asyncio.to_thread(warm_up)
        while True:
            due = min(self.next_due, self._tick_at) - self.clock()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._feed.wait(), timeout=max(0.0, min(due, 3600.0)))
            try:
                await self.refresh()
            except Exception:
                # Keep serving the last rendering; the change that prompted this one is still
                # to render.
                log.error("status render failed", exc_info=True)
                self._feed.touch()
            await asyncio.sleep(self.min_interval)

    @property
    def next_due(self) -> float:
        """When the next account's rows change with time alone (``inf``: never)."""
        return self._due.next

    # ------------------------------------------------------------------ rows

    def _plan(self, now: float) -> _Plan:
        """Sync with the store's accounts; collect the accounts to render again."""
        accounts, entries = self.store.accounts, self._entries
        dirty, other = self._feed.take()
        plan = _Plan(other=other)
        if other:
            order = list(accounts)
            if order != self._order:
                self._order = order
                for name in [n for n in entries if n not in accounts]:
                    del entries[name]
                dirty.update(n for n in order if n not in entries)
        dirty.update(self._due.pop_due(now))
        plan.names = [n for n in dirty if n in accounts]
        return plan

    def _render_rows(self, names: list[str], now: float) -> None:
        """Snapshot and render these accounts (on the loop: it reads the live store)."""
        accounts, entries = self.store.accounts, self._entries
        for name in names:
            state = accounts.get(name)
            if state is None:
                continue  # removed since planning
            status = account_status(state, now)
            html = zlib.compress(render_account(status, now).encode(), HTML_LEVEL)
            data = json.dumps(account_json(status), separators=(",", ":")).encode()
            old = entries.get(name)
            if old is not None and old.row.json == data:
                data = old.row.json  # unchanged: the same object, so its JSON block is kept
            self._due.set(name, valid_until(status, now))
            row = Row(
                account=status.account,
                provider=status.provider,
                severity=status.severity,
                rank=status.rank,
                pools=len(status.pools),
                html_z=html,
                json=data,
                search=name.lower(),
            )
            entries[name] = _Entry(state, row)
        self.stats.accounts_rendered += len(names)

    def _collect(self, now: float) -> tuple[list[Row], int, dict[str, object]]:
        """What the next rendering is made of, taken on the loop."""
        entries, store = self._entries, self.store
        rows = [entries[n].row for n in self._order if n in entries]
        ts = store.reload_success_timestamp
        self._tick_at = now + TICK
        self._generation += 1
        info: dict[str, object] = {
            "token": self._token,
            "generation": self._generation,
            "generated_at": now,
            "reload_successful": store.reload_successful,
            "reload_success_timestamp": ts,
        }
        return rows, len(store.accounts) - len(rows), info

    # ------------------------------------------------------------------ the two prepared views

    def _assemble(
        self, rows: list[Row], waiting: int, info: dict[str, object]
    ) -> tuple[Rendering, bytes, tuple[bytes, ...], list[bytes]]:
        """The rendering (rows in page order, counts), its first page and the parts of the whole
        JSON (a thread: Python work)."""
        rows.sort(key=lambda r: r.rank)  # stable: config order within a rank
        rendering = Rendering(rows=tuple(rows), waiting=waiting, **info)  # type: ignore[arg-type]
        page = rendering.page_html(Query())
        head, frags, tail = rendering.json_parts(Query(per_page=None))
        return rendering, page, (head, tail), frags

    def _compress(
        self,
        rendering: Rendering,
        page: bytes,
        ends: tuple[bytes, ...],
        frags: list[bytes],
    ) -> tuple[Body, Body]:
        """The first page and the whole JSON with their gzip (the render thread). The JSON is
        deflated in blocks; a block whose fragments are the same objects as last time keeps its
        compressed bytes."""
        blocks = []
        for b, i in enumerate(range(0, len(frags), BLOCK_ROWS)):
            chunk = tuple(frags[i : i + BLOCK_ROWS])
            block = self._blocks[b] if b < len(self._blocks) else None
            if (
                block is None
                or len(block.rows) != len(chunk)
                or any(x is not y for x, y in zip(block.rows, chunk, strict=True))
            ):
                sep = b"," if i else b""
                block = _Block(chunk, deflate_segment(sep + b",".join(chunk), COMPRESS_LEVEL))
                self.stats.blocks_deflated += 1
            blocks.append(block)
        self._blocks = blocks
        head, tail = ends
        parts = (head, *_interleave(frags), tail)
        z = [deflate_segment(head), *(b.z for b in blocks), deflate_segment(tail)]
        page_body = Body((page,), rendering.etag("page", Query()), gzip_body(page))
        api_query = Query(per_page=None)
        api = Body(parts, rendering.etag("api", api_query), gzip_from_segments(z, parts))
        return page_body, api

    def _publish(self, rendering: Rendering, bodies: tuple[Body, Body], started: float) -> None:
        page, api = bodies
        rendering.keep("page", Query(), page)
        rendering.keep("api", Query(per_page=None), api)
        self.current = rendering
        self.stats.renders += 1
        self.stats.last_seconds = time.perf_counter() - started
