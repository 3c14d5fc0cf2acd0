"""The status page and /api/status served like /metrics: rendered once per change from
snapshots taken on the event loop, kept with their gzip form and an ETag, filtered and paged
from the kept fragments, and re-rendered when their texts change with time alone."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from exporter import statuscache, statusquery
from exporter import statushtml as sh
from exporter.config import parse_config
from exporter.metrics import ExpositionCache
from exporter.model import PollError, PoolValues, Reading, Reason
from exporter.statusblocks import BLOCK_ROWS
from exporter.statuscache import StatusCache
from exporter.statuspage import HISTORY_RUNWAY_MIN_SPAN, account_status, burn_from_history
from exporter.statusquery import MAX_PER_PAGE, Query, QueryError, parse_query
from exporter.store import AccountState, Store
from exporter.web import BUILDS_KEY, STATUS_KEY, VIEW_BUILDS, create_app

T0 = 1_790_000_000.0
N = 300  # three JSON blocks


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def fe(remaining: float) -> Reading:
    return Reading(pools={"workspace": PoolValues(remaining=remaining)})


def big_store(n: int = N) -> tuple[Store, Clock]:
    """``n`` accounts: every tenth a TheirStack one, the rest FullEnrich; all polled once,
    account 7 failing."""
    clock = Clock()
    store = Store(clock=clock)
    lines = [
        f"  - {{name: Acct-{i:04d}, provider: {'theirstack' if i % 10 == 0 else 'fullenrich'}, "
        f"api_key: key-{i}, low_credit_threshold: 100}}"
        for i in range(n)
    ]
    store.set_accounts(parse_config("accounts:\n" + "\n".join(lines), env={}).accounts)
    store.set_reload_result(True)
    for i in range(n):
        name = f"Acct-{i:04d}"
        if i % 10 == 0:
            store.record_success(name, "balance", Reading(pools={"api": PoolValues(50.0)}), 0.1)
            store.record_success(name, "consumption", Reading(), 0.1)
        else:
            store.record_success(name, "balance", fe(1000.0 + i), 0.1)
    store.record_failure("Acct-0007", "balance", PollError(Reason.AUTH, "no", status=401), 0.1)
    return store, clock


@pytest.fixture
async def served() -> AsyncIterator[
    tuple[TestClient[web.Request, web.Application], Store, Clock, StatusCache]
]:
    store, clock = big_store()
    status = StatusCache(store, min_interval=3600)  # renders only when the test says so

    async def reload() -> list[str]:
        return []

    client = TestClient(TestServer(create_app(store, ExpositionCache(store), reload, status)))
    await client.start_server()
    yield client, store, clock, status
    await client.close()


Served = tuple[TestClient[web.Request, web.Application], Store, Clock, StatusCache]
PLAIN = {"Accept-Encoding": "identity"}  # the test client asks for gzip unless told


def names(page: str) -> list[str]:
    return re.findall(r'<tbody class="acct [a-z_]+" data-account="([^"]+)"', page)


# --------------------------------------------------------------------------- once per change


async def test_rendered_once_per_change_never_per_request(served: Served) -> None:
    client, store, _, status = served
    before = status.stats.accounts_rendered
    for _ in range(3):
        for path in ("/", "/api/status", "/?state=ok&page=2", "/api/status?provider=theirstack"):
            assert (await client.get(path)).status == 200
    assert status.stats.accounts_rendered == before  # requests render no account

    # A change is not served until the cache renders it (never rendered for a request)...
    store.record_success("Acct-0001", "balance", fe(4242.0), 0.1)
    data = await (await client.get("/api/status?account=acct-0001")).json()
    assert data["accounts"][0]["pools"]["workspace"]["remaining"] == 1001.0
    # ... and then only the account that changed is rendered again.
    await status.refresh()
    assert status.stats.accounts_rendered == before + 1
    data = await (await client.get("/api/status?account=acct-0001")).json()
    assert data["accounts"][0]["pools"]["workspace"]["remaining"] == 4242.0
    assert "4,242" in await (await client.get("/?account=Acct-0001")).text()


async def test_snapshots_are_taken_on_the_event_loop(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live store (whose records the loop mutates, e.g. a pool's history arrays one
    after the other) is read on the loop's thread only, never from a worker thread."""
    client, store, _, status = served
    loop_thread = threading.get_ident()
    readers: set[int] = set()
    merged = AccountState.merged

    def spy(self: AccountState, now: float) -> Reading:
        readers.add(threading.get_ident())
        return merged(self, now)

    monkeypatch.setattr(AccountState, "merged", spy)
    store.record_success("Acct-0002", "balance", fe(1.0), 0.1)
    await status.refresh()
    for path in ("/", "/api/status", "/?state=low"):
        assert (await client.get(path)).status == 200
    assert readers == {loop_thread}


def test_history_in_a_snapshot_does_not_move() -> None:
    """A snapshot shares the store's points (no copy) and keeps them as they were while the
    store moves on to new ones."""
    store, clock = big_store(5)
    live = store.accounts["Acct-0003"].history["workspace"]
    before = account_status(store.accounts["Acct-0003"], clock.t).pools[0].history
    assert before is live.points
    clock.t += 600
    store.record_success("Acct-0003", "balance", fe(1.0), 0.1)
    assert list(before) == [(T0, 1003.0)]
    assert list(live) == [(T0, 1003.0), (T0 + 600, 1.0)]


async def test_changes_are_coalesced() -> None:
    store, _ = big_store(20)
    ExpositionCache(store)  # /metrics serves every first poll: start-up is over
    status = StatusCache(store, min_interval=0.05)
    task = asyncio.create_task(status.run())
    try:
        await asyncio.sleep(0)
        renders = status.stats.renders
        for i in range(200):  # a burst of polls between two renders
            store.record_success(f"Acct-{i % 20:04d}", "balance", fe(float(i)), 0.1)
        for _ in range(200):
            await asyncio.sleep(0.01)
            data = json.loads(
                b"".join(status.current.api_parts(Query(account="acct-0019", per_page=None)))
            )
            if data["accounts"][0]["pools"]["workspace"]["remaining"] == 199.0:
                break
        else:
            pytest.fail("the burst was never rendered")
        assert status.stats.renders - renders <= 2
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# --------------------------------------------------------------------------- gzip and ETag


async def test_gzip_from_the_kept_copy(served: Served) -> None:
    client, _, _, status = served
    for path, kind, query in (("/", "page", Query()), ("/api/status", "api", Query(per_page=None))):
        r = await client.get(path, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
        raw = await r.read()
        assert r.headers["Content-Encoding"] == "gzip" and r.headers["Vary"] == "Accept-Encoding"
        kept = status.current.cached(kind, query)
        assert kept is not None and raw == kept.gzip
        plain = await (await client.get(path, headers={"Accept-Encoding": "identity"})).read()
        kept = status.current.cached(kind, query)  # the plain form made once asked for, kept
        assert kept is not None and gzip.decompress(raw) == plain == kept.joined()
    api = status.current.cached("api", Query(per_page=None))
    assert api is not None and api.gzip is not None
    data = json.loads(gzip.decompress(api.gzip))
    assert len(data["accounts"]) == N


async def test_only_changed_json_blocks_are_compressed_again(served: Served) -> None:
    _, store, _, status = served
    deflated = status.stats.blocks_deflated
    store.record_success("Acct-0299", "balance", fe(777.0), 0.1)  # the last block, still ok
    await status.refresh()
    assert status.stats.blocks_deflated == deflated + 1
    body = status.current.cached("api", Query(per_page=None))
    assert body is not None and body.gzip is not None
    data = json.loads(gzip.decompress(body.gzip))
    assert {a["account"]: a for a in data["accounts"]}["Acct-0299"]["pools"]["workspace"] == (
        json.loads(b"".join(status.current.api_parts(Query(account="acct-0299"))))["accounts"][0][
            "pools"
        ]["workspace"]
    )
    assert len(data["accounts"]) == N > 2 * BLOCK_ROWS


async def test_etag_and_not_modified(served: Served) -> None:
    client, store, _, status = served
    etags = {}
    for path in ("/", "/api/status", "/?state=ok", "/?state=ok&page=2", "/api/status?per_page=5"):
        r = await client.get(path)
        assert r.status == 200 and r.headers["Cache-Control"] == "no-cache"
        etags[path] = r.headers["ETag"]
        r = await client.get(path, headers={"If-None-Match": etags[path]})
        assert r.status == 304 and await r.read() == b""
        assert r.headers["ETag"] == etags[path]
    assert len(set(etags.values())) == len(etags)  # one per view
    # The same view asked another way has the same ETag.
    r = await client.get(
        "/?page=2&state=ok&per_page=100", headers={"If-None-Match": etags["/?state=ok&page=2"]}
    )
    assert r.status == 304
    # A list of validators, one of them ours; a stale one gets the page.
    r = await client.get("/", headers={"If-None-Match": f'W/"x", {etags["/"]}'})
    assert r.status == 304
    store.record_success("Acct-0001", "balance", fe(1.0), 0.1)
    await status.refresh()
    r = await client.get("/", headers={"If-None-Match": etags["/"]})
    assert r.status == 200 and r.headers["ETag"] != etags["/"]


async def test_a_quiet_store_keeps_its_etag(served: Served) -> None:
    client, _, _, status = served
    etag = (await client.get("/api/status")).headers["ETag"]
    await status.refresh()  # nothing changed, nothing due
    r = await client.get("/api/status", headers={"If-None-Match": etag})
    assert r.status == 304


async def test_large_views_made_at_once_are_bounded(served: Served) -> None:
    """Views of more than a page's accounts are made in a thread, VIEW_BUILDS at a time: one
    more is answered 429 with Retry-After, a small view and the prepared ones are still served."""
    client, _, _, _ = served
    builds = client.app[BUILDS_KEY]
    for _ in range(VIEW_BUILDS):
        await builds.acquire()  # as many large views being made as allowed
    r = await client.get("/api/status?state=ok")
    assert r.status == 429 and r.headers["Retry-After"] == "1"
    assert "too many status views" in await r.text()
    assert (await client.get("/api/status?history=1&per_page=5")).status == 429
    assert (await client.get("/?state=ok&per_page=10")).status == 200
    r = await client.get("/api/status", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200  # the prepared whole JSON: its gzip form is ready
    builds.release()
    data = await (await client.get("/api/status?state=ok")).json()
    assert data["total"] == len(data["accounts"]) == N - N // 10 - 1  # not low, not failing


async def test_requests_for_a_view_being_made_wait_for_it(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent requests for the same large view share one making of it (the bound counts
    views, not requests): with one build left, eight clients asking at once all get it."""
    client, _, _, status = served
    builds = client.app[BUILDS_KEY]
    for _ in range(VIEW_BUILDS - 1):
        await builds.acquire()
    made: list[Query] = []
    real = statuscache.Rendering.api_parts

    def counted(self: statuscache.Rendering, query: Query) -> tuple[bytes, ...]:
        made.append(query)
        return real(self, query)

    monkeypatch.setattr(statuscache.Rendering, "api_parts", counted)
    responses = await asyncio.gather(
        *(client.get("/api/status?state=ok&per_page=500") for _ in range(8))
    )
    bodies = {await r.read() for r in responses}
    assert [r.status for r in responses] == [200] * 8 and len(bodies) == 1
    assert len(made) == 1 and not status.current.building
    await builds.acquire()  # the permit the build took is back: the last one, taken now
    assert builds.locked()


async def test_kept_views_are_bounded_in_bytes(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A view is kept from its second request on, while the kept views fit in VIEWS_BYTES;
    a larger one is made again on each request (and is the same)."""
    client, _, _, status = served
    small, large = Query(per_page=5), Query(per_page=None, history=True)
    first = await (await client.get("/api/status?per_page=5", headers=PLAIN)).read()
    assert status.current.cached("api", small) is None  # asked for once: not kept
    assert await (await client.get("/api/status?per_page=5", headers=PLAIN)).read() == first
    kept = status.current.cached("api", small)
    assert kept is not None and kept.joined() == first
    monkeypatch.setattr(statuscache, "VIEWS_BYTES", 4 * len(first))
    for _ in range(3):
        body = await (await client.get("/api/status?history=1", headers=PLAIN)).read()
        assert len(body) > 4 * len(first) and status.current.cached("api", large) is None
    assert len(json.loads(body)["accounts"]) == N
    assert status.current.cached("api", small) is not None  # the small one stayed


# --------------------------------------------------------------------------- filters and paging


async def test_page_summary_filters_and_paging(served: Served) -> None:
    client, _, _, _ = served
    page = await (await client.get("/")).text()
    # Problems first, then 100 rows a page, with the counts of the whole set at the top.
    shown = names(page)
    assert shown[0] == "Acct-0007" and len(shown) == 100
    assert "Showing 1\u2013100 of 300 accounts" in page
    assert '<a href="?state=failing">' in page and "<strong>1</strong> failing" in page
    assert "<strong>30</strong> low" in page and "<strong>269</strong> ok" in page
    assert re.search(
        r'data-provider="theirstack">.*?<a href="\?state=low&amp;provider=theirstack">30</a>',
        page,
        re.S,
    )
    assert '<a href="?page=2" rel="next">' in page and '<a href="?page=3">Last' in page

    page = await (await client.get("/?state=ok&provider=fullenrich&per_page=25&page=3")).text()
    assert names(page) == [f"Acct-{i:04d}" for i in range(1, 300) if i % 10 and i != 7][50:75]
    assert "Showing 51\u201375 of 269 matching accounts" in page
    assert 'href="?state=ok&amp;provider=fullenrich&amp;per_page=25&amp;page=2" rel="prev"' in page
    assert '<option value="ok" selected>' in page and '<option value="25" selected>' in page

    page = await (await client.get("/?account=acct-001")).text()  # case ignored
    assert sorted(names(page)) == [f"Acct-{i:04d}" for i in range(10, 20)]
    page = await (await client.get("/?state=failing,low")).text()
    assert len(names(page)) == 31 and names(page)[0] == "Acct-0007"
    page = await (await client.get("/?state=failing&state=low")).text()
    assert len(names(page)) == 31
    page = await (await client.get("/?account=nobody")).text()
    assert names(page) == [] and "No account matches these filters." in page
    page = await (await client.get("/?page=99")).text()  # past the end: the last page
    assert len(names(page)) == 100 and "page 3 of 3" in page


async def test_api_filters_paging_and_total(served: Served) -> None:
    client, _, _, _ = served
    data = await (await client.get("/api/status")).json()
    assert data["total"] == N and len(data["accounts"]) == N and data["per_page"] is None
    assert data["counts"] == {"failing": 1, "stale": 0, "never_polled": 0, "low": 30, "ok": 269}
    assert data["counts_by_provider"]["theirstack"]["low"] == 30
    data = await (await client.get("/api/status?provider=fullenrich&per_page=10&page=2")).json()
    assert data["total"] == 270 and data["page"] == 2 and data["per_page"] == 10
    fullenrich = [f"Acct-{i:04d}" for i in range(1, 300) if i % 10 and i != 7]
    assert [a["account"] for a in data["accounts"]] == ["Acct-0007", *fullenrich][10:20]
    assert data["filters"] == {"state": [], "provider": ["fullenrich"], "account": ""}
    data = await (await client.get("/api/status?state=low&account=ACCT-00")).json()
    assert [a["account"] for a in data["accounts"]] == [f"Acct-00{i}0" for i in range(10)]


async def test_api_pages_as_the_page_does(served: Served) -> None:
    """A page past the last is the last one, in /api/status as on the page, and the JSON says
    which page it holds; without per_page every account is on the one page, whatever `page`
    asks."""
    client, _, _, _ = served
    path = "?provider=fullenrich&per_page=100&page=99"
    data = await (await client.get(f"/api/status{path}")).json()
    shown = names(await (await client.get(f"/{path}")).text())
    assert [a["account"] for a in data["accounts"]] == shown and len(shown) == 70
    assert (data["page"], data["per_page"], data["total"]) == (3, 100, 270)
    assert data["pages"] == 3
    data = await (await client.get("/api/status?page=4")).json()
    assert len(data["accounts"]) == N
    assert (data["page"], data["pages"], data["per_page"]) == (1, 1, None)
    data = await (await client.get("/api/status?per_page=7&page=2")).json()
    assert (data["page"], data["pages"], len(data["accounts"])) == (2, 43, 7)
    data = await (await client.get("/api/status?account=nobody&per_page=5&page=2")).json()
    assert (data["page"], data["pages"], data["total"], data["accounts"]) == (1, 1, 0, [])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("state=broken", "state: unknown state 'broken'"),
        ("per_page=0", "per_page: expected a whole number from 1 to 1,000"),
        (f"per_page={MAX_PER_PAGE + 1}", "per_page: expected"),
        ("page=-1", "page: expected a whole number"),
        ("page=two", "page: expected"),
        ("account=" + "x" * 201, "account: at most 200 characters"),
    ],
)
async def test_bad_queries_are_refused_naming_the_parameter(
    served: Served, query: str, message: str
) -> None:
    client, _, _, _ = served
    for path in ("/", "/api/status"):
        r = await client.get(f"{path}?{query}")
        assert r.status == 400 and message in await r.text()


def test_query_round_trip() -> None:
    q = parse_query({"state": "low, failing", "provider": "x", "page": "2"}, default_per_page=100)
    assert q == Query(("low", "failing"), ("x",), "", 2, 100)
    assert parse_query({"per_page": "all"}, default_per_page=None).per_page is None
    with pytest.raises(QueryError):
        parse_query({"per_page": "all"}, default_per_page=100)  # the page is always paged
    assert q.href(page=3) == "?state=low&state=failing&provider=x&page=3"


# --------------------------------------------------------------------------- time alone


async def test_time_alone_renders_no_account_but_the_texts_move(served: Served) -> None:
    client, _, clock, status = served
    text = await (await client.get("/?account=acct-0001")).text()
    assert "&lt; 1 min ago" in text
    rendered, renders = status.stats.accounts_rendered, status.stats.renders
    clock.t += 30
    await status.refresh()  # nothing changed, the minute has not passed: nothing to do
    assert status.stats.renders == renders
    clock.t += 31
    await status.refresh()  # the page's minute: put together again, no account rendered
    assert status.stats.renders == renders + 1
    assert status.stats.accounts_rendered == rendered
    text = await (await client.get("/?account=acct-0001")).text()
    assert ">1 min ago</time>" in text and "&lt; 1 min" not in text

    # max_staleness (6 h by default) passes without a poll: the accounts turn stale, their
    # values drop (that one does render them again).
    clock.t = T0 + 6 * 3600 + 1
    await status.refresh()
    assert status.stats.accounts_rendered == rendered + N
    data = await (await client.get("/api/status?account=acct-0001")).json()
    assert data["accounts"][0]["state"] == "stale" and data["accounts"][0]["pools"] == {}
    assert data["counts"]["stale"] == N - 1  # every account but the failing one
    text = await (await client.get("/?account=acct-0001")).text()
    assert "last success 6 h ago" in text


def test_time_marks_are_written_escaped() -> None:
    now = T0
    row = b"".join(
        [
            b"<td>" + str(sh.age_mark(now - 30)).encode() + b"</td>",
            b"<td>" + str(sh.age_mark(now - 3 * 3600)).encode() + b"</td>",
            b'<svg aria-label="over the last ' + str(sh.since_mark(now - 5400)).encode() + b'">',
            b"<td>" + str(sh.days_mark(now + 20 * 86400)).encode() + b"</td>",
            b"<td>" + str(sh.days_mark(now - 2 * 86400)).encode() + b"</td>",
        ]
    )
    assert sh.fill_times(row, now) == (
        b"<td>&lt; 1 min ago</td><td>3 h ago</td>"
        b'<svg aria-label="over the last 1.5 h"><td>20 days</td><td>2.0 days ago</td>'
    )
    # An account name cannot make a mark: the template escapes its "<".
    store, _ = big_store(1)
    evil = str(sh.age_mark(now)).replace("age", "days")
    assert (
        evil.encode()
        not in sh.render_account(
            dataclasses.replace(account_status(store.accounts["Acct-0000"], now), account=evil), now
        ).encode()
    )


# --------------------------------------------------------------------------- runway from history


def test_burn_from_history_ignores_top_ups() -> None:
    hour = 3600.0
    points = [(T0, 1000.0), (T0 + hour, 900.0), (T0 + 2 * hour, 5000.0), (T0 + 4 * hour, 4800.0)]
    # Falls of 100 and 200 over 4 h; the top-up counts nothing: 300 / 4 h = 1,800 a day.
    assert burn_from_history(points) == pytest.approx(1800.0)
    assert burn_from_history([(T0, 5.0), (T0 + 2 * hour, 5.0)]) is None  # flat: no runway
    short = [(T0, 10.0), (T0 + HISTORY_RUNWAY_MIN_SPAN - 1, 5.0)]
    assert burn_from_history(short) is None


def test_runway_for_a_balance_only_provider() -> None:
    clock = Clock()
    store = Store(clock=clock)
    store.set_accounts(
        parse_config("accounts: [{name: fe, provider: fullenrich, api_key: k}]", env={}).accounts
    )
    for remaining in (10_000.0, 9_900.0, 20_000.0, 19_900.0, 19_800.0):  # a top-up in between
        store.record_success("fe", "balance", fe(remaining), 0.1)
        clock.t += 3600
    status = StatusCache(store)
    (pool,) = account_status(store.accounts["fe"], clock.t).pools
    # Falls of 100 + 100 + 100 over the 4 h the history spans: 1,800 a day.
    assert pool.runway_source == "balance_history"
    assert pool.burn_per_day == pytest.approx(1800.0)
    assert pool.runway_days == pytest.approx(19_800 / 1800)
    html = status.current.page_html(Query()).decode()
    assert '~11 days<span class="sub">from balance history</span>' in html
    assert (
        "at 1,800 credits/day: the fall of the balance over the last 24 h, top-ups ignored" in html
    )
    data: dict[str, Any] = json.loads(b"".join(status.current.api_parts(Query(per_page=None))))
    entry = data["accounts"][0]["pools"]["workspace"]
    assert entry["runway_source"] == "balance_history"
    assert entry["runway_days"] == pytest.approx(11.0)


async def test_the_app_keeps_rendering() -> None:
    """create_app runs the status cache while it serves: a change shows without anyone calling
    refresh."""
    store, _ = big_store(3)
    status = StatusCache(store, min_interval=0.01)

    async def reload() -> list[str]:
        return []

    client = TestClient(TestServer(create_app(store, ExpositionCache(store), reload, status)))
    await client.start_server()
    try:
        assert client.app[STATUS_KEY] is status
        store.record_success("Acct-0001", "balance", fe(31337.0), 0.1)
        for _ in range(300):
            if "31,337" in await (await client.get("/")).text():
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the change never showed")
    finally:
        await client.close()


async def test_a_failed_render_leaves_its_changes_to_the_next(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render that fails after taking the store's changes puts them back: the next render
    shows them although nothing changed since."""
    client, store, _, status = served
    real = status._render_rows
    calls: list[list[str]] = []

    def failing_once(names: list[str], now: float) -> None:
        calls.append(list(names))
        if len(calls) == 1:
            raise RuntimeError("render bug")
        real(names, now)

    monkeypatch.setattr(status, "_render_rows", failing_once)
    store.record_success("Acct-0001", "balance", fe(4242.0), 0.1)
    with pytest.raises(RuntimeError):
        await status.refresh()
    await status.refresh()
    assert calls == [["Acct-0001"], ["Acct-0001"]]
    data = await (await client.get("/api/status?account=acct-0001")).json()
    assert data["accounts"][0]["pools"]["workspace"]["remaining"] == 4242.0


async def test_scattered_views_are_made_in_a_thread(served: Served) -> None:
    """A page filtered by provider or account takes its accounts from every block: it is made
    like a large view (a permit, in a thread); a page by state, whose accounts are next to each
    other, at once."""
    client, _, _, _ = served
    builds = client.app[BUILDS_KEY]
    for _ in range(VIEW_BUILDS):
        await builds.acquire()
    assert (await client.get("/?provider=theirstack")).status == 429
    assert (await client.get("/?account=acct-00")).status == 429
    assert (await client.get("/?state=low")).status == 200
    builds.release()
    page = await (await client.get("/?provider=theirstack")).text()
    assert names(page) == [f"Acct-{i:04d}" for i in range(0, N, 10)]


async def test_a_gzip_request_keeps_only_the_gzip_form(served: Served) -> None:
    """The history of every account is made for a gzip request and kept compressed only (its
    plain form would not fit the kept views' bytes); its second request is the kept copy."""
    client, _, _, status = served
    query = Query(per_page=None, history=True)
    raws = []
    for _ in range(2):
        r = await client.get(
            "/api/status?history=1", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
        )
        raws.append(await r.read())
    kept = status.current.cached("api", query)
    assert kept is not None and kept.parts is None and kept.gzip == raws[1]
    data = json.loads(gzip.decompress(raws[0]))
    assert all("history" in p for a in data["accounts"] for p in a["pools"].values())


def test_long_queries_are_not_remembered() -> None:
    """A query naming many providers is keyed without being kept (a remembered query is kept
    whole: thousands of providers in one query string would be kept 1,024 times)."""
    statusquery._key.cache_clear()
    short = Query(providers=("theirstack", "fullenrich"))
    long = Query(providers=tuple(f"p{i}" for i in range(statusquery.KEY_CACHE_VALUES + 1)))
    wide = Query(providers=("p" * (statusquery.KEY_CACHE_CHARS + 1),))
    assert short.key() == short.query_string(every=True)
    assert long.key() == long.query_string(every=True)
    assert wide.key() == wide.query_string(every=True)
    assert statusquery._key.cache_info().currsize == 1


async def test_a_failed_plan_leaves_its_changes_to_the_next(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, store, _, status = served
    real = status._plan_taken
    failed: list[bool] = []

    def failing_once(*args: Any) -> Any:
        if not failed:
            failed.append(True)
            raise RuntimeError("plan bug")
        return real(*args)

    monkeypatch.setattr(status, "_plan_taken", failing_once)
    store.record_success("Acct-0002", "balance", fe(2222.0), 0.1)
    with pytest.raises(RuntimeError):
        await status.refresh()
    await status.refresh()
    data = await (await client.get("/api/status?account=acct-0002")).json()
    assert data["accounts"][0]["pools"]["workspace"]["remaining"] == 2222.0
