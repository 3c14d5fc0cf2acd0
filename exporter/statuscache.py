"""The status page and ``/api/status`` at any number of accounts: rendered once per change,
served like /metrics.

On the event loop, in slices of at most :data:`SLICE_SECONDS`, the accounts that changed (the
store's :class:`~exporter.store.ChangeFeed` names them) or whose state changes with time alone
(:func:`~exporter.statushtml.valid_until`) are snapshotted
(:func:`~exporter.statuspage.account_status`: readers never touch the live store) and rendered
into two fragments each, their ``<tbody>`` (ages and countdowns left as marks, written when a
page is put together) and their JSON object (without the pools' history, which the row keeps as
the store's own immutable points for ``?history=1``). A :class:`Rendering` then holds the rows
in the page's order (problems first), the counts by state and by provider, both kinds of
fragment kept compressed in blocks (:mod:`exporter.statusblocks`: a block whose rows did not
change keeps its compressed bytes), and the two views everyone asks for with their gzip form:
the first page, and the whole JSON, whose gzip form is the blocks themselves. The blocks are
built in the render thread (C code that releases the GIL), the rest in a thread.

Any other view (filters, another page, the plain whole JSON) is made on the first request for
it from the blocks it needs (:mod:`exporter.web` bounds how many are made at once); a rendering
keeps the views asked for twice. Every view has an ETag; ``If-None-Match`` gets a 304 without
any work.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter

from . import __version__
from .deadlines import Deadlines
from .exposition import deflate_segment, gzip_from_segments, gzip_member, render_executor
from .log import get_logger
from .statusblocks import Fragments, build, pack
from .statushtml import (
    REFRESH_SECONDS,
    fill_times,
    render_account,
    render_shell,
    valid_until,
    warm_up,
)
from .statuspage import (
    SEVERITY_RANK,
    SEVERITY_TEXT,
    account_json,
    account_status,
    add_history,
)
from .statusquery import PAGE_PER_PAGE, PER_PAGE_CHOICES, Query
from .store import HISTORY_SPAN, Points, Store

log = get_logger("exporter.status")

SLICE_SECONDS = 0.005
#: Renders at most this often: the page refreshes every 30 s, the JSON is read by scripts.
MIN_INTERVAL = 2.0
COMPRESS_LEVEL = 6
#: The rows' HTML blocks are compressed at this (fast) level.
HTML_LEVEL = 1
LEVELS = (COMPRESS_LEVEL, HTML_LEVEL)  # of the JSON's blocks, of the HTML's
#: Views made on request are compressed at this (fast) level: most are asked for once.
VIEW_LEVEL = 1
#: The first rendering waits at most this long for start-up to be over.
STARTUP_WAIT = 5.0
#: A page's ages are to the minute: it is put together again at least this often.
TICK = 60.0
#: Views made on request that a rendering keeps (from their second request on), and how many
#: views asked for once it remembers.
VIEWS_KEPT = 16
VIEWS_SEEN = 256
#: ... and the bytes they may hold together (plain and gzip): a view of every account with its
#: history, at 10,000 accounts after a day, is tens of megabytes.
VIEWS_BYTES = 16 << 20
PAGE_QUERY = Query()
API_QUERY = Query(per_page=None)


@dataclass(frozen=True, slots=True, eq=False)
class Row:
    """One account as readers see it: what the filters and counts need, and its pools' history
    (the store's own points, shared) for ``?history=1``. Its two fragments are in the
    rendering's blocks, at its place in the page's order. Compared and hashed by identity: an
    account rendered again is a new row."""

    account: str
    provider: str
    severity: str
    rank: int
    pools: int
    histories: tuple[Points, ...]  # in the order of its JSON's pools


@dataclass(frozen=True, slots=True)
class Body:
    """A view's bytes: plain, as parts (the whole JSON is never joined with its ends into one
    copy), and gzipped; each made on the first request that wants it."""

    etag: str
    parts: tuple[bytes, ...] | None = None
    gzip: bytes | None = None

    @property
    def size(self) -> int:
        return sum(map(len, self.parts or ()))

    @property
    def held(self) -> int:
        """The bytes it holds (plain and gzip)."""
        return self.size + len(self.gzip or b"")

    def joined(self) -> bytes:
        parts = self.parts or (b"",)
        return parts[0] if len(parts) == 1 else b"".join(parts)


def gzip_body(data: bytes, level: int = COMPRESS_LEVEL) -> bytes:
    return gzip_from_segments([deflate_segment(data, level)], [data])


def _interleave(frags: list[bytes]) -> list[bytes]:
    """The fragments with a comma between each two."""
    out = [b","] * (2 * len(frags) - 1) if frags else []
    out[::2] = frags
    return out


class Rendering:
    """Everything readers need, immutable once published: the rows in page order with their
    fragments, the counts, and the views made so far."""

    def __init__(
        self,
        *,
        token: str,
        generation: int,
        generated_at: float,
        reload_successful: bool,
        reload_success_timestamp: float | None,
        rows: tuple[Row, ...] = (),
        json_fragments: Fragments | None = None,
        html_fragments: Fragments | None = None,
        waiting: int = 0,
        starting: bool = False,
    ) -> None:
        self.token = token
        self.generation = generation
        self.generated_at = generated_at
        self.reload_successful = reload_successful
        self.reload_success_timestamp = reload_success_timestamp
        self.rows = rows
        self.json = json_fragments or Fragments(sep=b",")
        self.html = html_fragments or Fragments()
        self.waiting = waiting
        self.starting = starting  # before the first rendering of the accounts
        self.by_state: dict[str, list[int]] = {s: [] for s in SEVERITY_RANK}
        self.by_provider: dict[str, list[int]] = {}
        self.provider_counts: dict[str, dict[str, int]] = {}
        self.pools = 0
        for i, row in enumerate(rows):
            sev, provider = row.severity, row.provider
            self.by_state[sev].append(i)
            self.by_provider.setdefault(provider, []).append(i)
            counts = self.provider_counts.get(provider)
            if counts is None:
                counts = self.provider_counts[provider] = dict.fromkeys(SEVERITY_RANK, 0)
            counts[sev] += 1
            self.pools += row.pools
        self.counts = {sev: len(members) for sev, members in self.by_state.items()}
        self.providers = sorted(self.by_provider)
        self._prepared: dict[tuple[str, str], Body] = {}
        self._views: OrderedDict[tuple[str, str], Body] = OrderedDict()
        self._seen: set[tuple[str, str]] = set()
        #: Large views being made (exporter.web): (kind, query, gzip) -> the task making it.
        self.building: dict[tuple[str, str, bool], asyncio.Task[Body]] = {}

    # ------------------------------------------------------------------ selecting

    def etag(self, kind: str, query: Query) -> str:
        view = zlib.crc32(f"{kind}?{query.key()}".encode())
        return f'W/"{self.token}-{self.generation}-{view:08x}"'

    def select(self, query: Query) -> list[int]:
        """The places (in page order) of the rows the filters let through."""
        candidates: list[list[int]] = []
        if query.states:
            candidates.append(self._union(self.by_state, query.states))
        if query.providers:
            candidates.append(self._union(self.by_provider, query.providers))
        needle = query.account.lower()
        if len(candidates) == 1 and not needle:
            return candidates[0]  # an index answers one kind of filter exactly
        places = min(candidates, key=len) if candidates else range(len(self.rows))
        states, providers, rows = set(query.states), set(query.providers), self.rows
        return [
            i
            for i in places
            if (not states or rows[i].severity in states)
            and (not providers or rows[i].provider in providers)
            and needle in rows[i].account.lower()
        ]

    @staticmethod
    def _union(index: dict[str, list[int]], keys: tuple[str, ...]) -> list[int]:
        if len(keys) == 1:
            return index.get(keys[0], [])
        return sorted({i for k in keys for i in index.get(k, ())})

    # ------------------------------------------------------------------ the views

    def cached(self, kind: str, query: Query) -> Body | None:
        key = (kind, query.key())
        body = self._prepared.get(key)
        if body is None:
            body = self._views.get(key)
            if body is not None:
                self._views.move_to_end(key)
        return body

    def keep(self, kind: str, query: Query, body: Body, *, prepared: bool = False) -> Body:
        """``body`` for the next requests of this view: always for the two prepared views,
        for another from its second request on (most are asked for once: they are not worth
        their memory), the least recently asked for going first beyond :data:`VIEWS_KEPT`
        views or :data:`VIEWS_BYTES` (a view larger than that is made on every request)."""
        key = (kind, query.key())
        if prepared or key in self._prepared:
            self._prepared[key] = body
        elif body.held > VIEWS_BYTES:
            self._views.pop(key, None)  # made again on each request
        elif key in self._views or key in self._seen:
            self._views[key] = body
            self._views.move_to_end(key)
            held = sum(b.held for b in self._views.values())
            while len(self._views) > VIEWS_KEPT or held > VIEWS_BYTES:
                held -= self._views.popitem(last=False)[1].held
        else:
            if len(self._seen) >= VIEWS_SEEN:
                self._seen.clear()
            self._seen.add(key)
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
        rows = fill_times(b"".join(self.html.get(selected[start:end])), self.generated_at)
        return b"".join([head.encode(), rows, tail.encode()])

    def api_parts(self, query: Query) -> tuple[bytes, ...]:
        """``/api/status`` for ``query`` as parts (the whole JSON: its ends and the accounts)."""
        selected = self.select(query)
        query = query.clamped(len(selected))
        start, end = query.window(len(selected))
        head, tail = self.json_ends(query, len(selected))
        if end - start == len(self.rows) and not query.history:  # every account, in order
            return (head, self.json.joined(), tail)
        frags = self.json.get(selected[start:end])
        if query.history:
            frags = [
                json.dumps(
                    add_history(json.loads(frag), self.rows[i].histories), separators=(",", ":")
                ).encode()
                for i, frag in zip(selected[start:end], frags, strict=True)
            ]
        return (head, *_interleave(frags), tail)

    def json_ends(self, query: Query, total: int) -> tuple[bytes, bytes]:
        """What comes before and after the accounts of ``/api/status`` for ``query`` (of
        ``total`` matching accounts)."""
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
            "total": total,
            "page": query.page,
            "per_page": query.per_page,
            "pages": query.pages(total),
        }
        text = json.dumps(head, separators=(",", ":"))
        return text[:-1].encode() + b',"accounts":[', b"]}"


@dataclass
class StatusStats:
    renders: int = 0
    accounts_rendered: int = 0
    blocks_deflated: int = 0
    last_seconds: float = 0.0


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
        self._rows: dict[str, Row] = {}
        self._order: list[str] = []
        #: The fragments of the rows rendered since the last rendering was published (packed).
        self._fresh: dict[Row, bytes] = {}
        self._due = Deadlines()
        self._tick_at = math.inf
        self._generation = 0
        self.current = self._empty()
        # With accounts already there (tests, a cache made late) render them now; an empty
        # store (the daemon's start) costs nothing and compiles no template.
        if store.accounts:
            self.render()

    # ------------------------------------------------------------------ public

    def render(self) -> Rendering:
        """Bring everything up to date now, synchronously (construction, tests)."""
        started = time.perf_counter()
        now = self.clock()
        names = self._plan(now).names
        with self._retry_on_failure(names):
            self._render_rows(names, now)
            rows, waiting, info = self._collect(now)
            self._publish(*self._assemble(self._build(rows), waiting, info), started)
        return self.current

    def _empty(self) -> Rendering:
        self._generation += 1
        return Rendering(
            token=self._token,
            generation=self._generation,
            generated_at=self.clock(),
            reload_successful=self.store.reload_successful,
            reload_success_timestamp=self.store.reload_success_timestamp,
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
            with self._retry_on_failure(names):
                deadline = time.perf_counter() + SLICE_SECONDS
                for i in range(0, len(names), 16):
                    self._render_rows(names[i : i + 16], now)
                    if time.perf_counter() >= deadline:
                        await asyncio.sleep(0)
                        deadline = time.perf_counter() + SLICE_SECONDS
                rows, waiting, info = self._collect(now)
                # The blocks, mostly compression (C that releases the GIL), in the render
                # thread, below the loop's priority; ordering, counting and putting the page
                # together, Python work, in a thread of normal priority (the GIL passes to
                # the loop every few milliseconds).
                loop = asyncio.get_running_loop()
                built = await loop.run_in_executor(render_executor(), self._build, rows)
                assembled = await asyncio.to_thread(self._assemble, built, waiting, info)
                self._publish(*assembled, started)

    @contextlib.contextmanager
    def _retry_on_failure(self, names: list[str]) -> Iterator[None]:
        """A render that fails leaves its accounts to the next one."""
        try:
            yield
        except BaseException:
            self._feed.put_back(names)
            raise

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
                # Keep serving the last rendering; the changes that prompted this one are
                # still to render.
                log.error("status render failed", exc_info=True)
            await asyncio.sleep(self.min_interval)

    @property
    def next_due(self) -> float:
        """When the next account's rows change with time alone (``inf``: never)."""
        return self._due.next

    # ------------------------------------------------------------------ rows

    def _plan(self, now: float) -> _Plan:
        """Sync with the store's accounts; collect the accounts to render again."""
        dirty, other = self._feed.take()
        try:
            return self._plan_taken(now, dirty, other)
        except BaseException:
            self._feed.put_back(dirty)  # a bug while planning: still to render
            raise

    def _plan_taken(self, now: float, dirty: set[str], other: bool) -> _Plan:
        accounts, rows = self.store.accounts, self._rows
        plan = _Plan(other=other)
        if other:
            order = list(accounts)
            if order != self._order:
                self._order = order
                for name in [n for n in rows if n not in accounts]:
                    del rows[name]
                dirty.update(n for n in order if n not in rows)
        dirty.update(self._due.pop_due(now))
        plan.names = [n for n in dirty if n in accounts]
        return plan

    def _render_rows(self, names: list[str], now: float) -> None:
        """Snapshot and render these accounts (on the loop: it reads the live store)."""
        accounts = self.store.accounts
        for name in names:
            state = accounts.get(name)
            if state is None:
                continue  # removed since planning
            status = account_status(state, now)
            self._due.set(name, valid_until(status, now))
            row = Row(
                account=status.account,
                provider=status.provider,
                severity=status.severity,
                rank=status.rank,
                pools=len(status.pools),
                histories=tuple(p.history for p in status.pools),
            )
            superseded = self._rows.get(name)
            if superseded is not None:  # if rendered since the last rendering: never shown
                self._fresh.pop(superseded, None)
            self._fresh[row] = pack(
                json.dumps(account_json(status), separators=(",", ":")).encode(),
                render_account(status, now).encode(),
            )
            self._rows[name] = row
        self.stats.accounts_rendered += len(names)

    def _collect(self, now: float) -> tuple[list[Row], int, dict[str, object]]:
        """What the next rendering is made of, taken on the loop."""
        rows, store = self._rows, self.store
        listed = [rows[n] for n in self._order if n in rows]
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
        return listed, len(store.accounts) - len(listed), info

    # ------------------------------------------------------------------ the rendering

    def _build(self, rows: list[Row]) -> tuple[list[Row], Fragments, Fragments]:
        """The rows in page order and their fragments' blocks (the render thread): a block
        whose rows did not change is kept, compressed as it was."""
        rows.sort(key=attrgetter("rank"))  # stable: config order within a rank
        old = self.current
        built = build(rows, self._fresh, (old.json, old.html), old.rows, levels=LEVELS)
        self.stats.blocks_deflated += built.deflated
        json_fragments, html_fragments = built.fragments
        return rows, json_fragments, html_fragments

    def _assemble(
        self,
        built: tuple[list[Row], Fragments, Fragments],
        waiting: int,
        info: dict[str, object],
    ) -> tuple[Rendering, Body, Body]:
        """The rendering (counts, indexes), its first page and the whole JSON's gzip, which is
        the JSON's blocks between its two ends (a thread)."""
        rows, json_fragments, html_fragments = built
        rendering = Rendering(
            rows=tuple(rows),
            json_fragments=json_fragments,
            html_fragments=html_fragments,
            waiting=waiting,
            **info,  # type: ignore[arg-type]
        )
        page = rendering.page_html(PAGE_QUERY)
        page_body = Body(rendering.etag("page", PAGE_QUERY), (page,), gzip_body(page))
        head, tail = rendering.json_ends(API_QUERY, len(rows))
        crc = zlib.crc32(tail, json_fragments.crc(zlib.crc32(head)))
        size = len(head) + json_fragments.size + len(tail)
        segments = [deflate_segment(head), *json_fragments.segments(), deflate_segment(tail)]
        api_body = Body(rendering.etag("api", API_QUERY), gzip=gzip_member(segments, crc, size))
        return rendering, page_body, api_body

    def _publish(self, rendering: Rendering, page: Body, api: Body, started: float) -> None:
        rendering.keep("page", PAGE_QUERY, page, prepared=True)
        rendering.keep("api", API_QUERY, api, prepared=True)
        self.current = rendering
        self._fresh = {}  # in the rendering's blocks now
        self.stats.renders += 1
        self.stats.last_seconds = time.perf_counter() - started
