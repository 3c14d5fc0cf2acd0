"""The status page and /api/status without a browser: formatting, escaping, sorting, the SVG
pieces, what an error may show, and the JSON contract. (Caching, filters and paging:
test_statuscache.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from exporter import statushtml as sh
from exporter import statuspage as sp
from exporter.config import parse_config
from exporter.http import Exchange, interpret
from exporter.metrics import ExpositionCache
from exporter.model import PollError, PoolValues, Reading, Reason
from exporter.providers import windsurf
from exporter.statuscache import Rendering, StatusCache
from exporter.statusquery import Query
from exporter.store import HISTORY_POINTS, HISTORY_SPAN, History, Store
from exporter.web import create_app
from support.leaks import find_secrets

KEY = "sk-statuspage-secret-0123456789"
T0 = 1_790_000_000.0
SVG = ""  # inline SVG in HTML needs no namespace


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_store(accounts_yaml: str, clock: Clock | None = None) -> tuple[Store, Clock]:
    clock = clock or Clock()
    store = Store(clock=clock)
    store.set_accounts(parse_config(accounts_yaml, env={}).accounts)
    store.set_reload_result(True)
    return store, clock


def fe(remaining: float) -> Reading:
    return Reading(pools={"workspace": PoolValues(remaining=remaining)})


def rendering(store: Store) -> Rendering:
    return StatusCache(store).render()


def snapshot(store: Store) -> list[sp.AccountStatus]:
    """Every account's snapshot, in the page's order."""
    now = store.clock()
    statuses = [sp.account_status(s, now) for s in store.accounts.values()]
    return sorted(statuses, key=lambda a: a.rank)


def page(store: Store, query: Query | None = None) -> str:
    return rendering(store).page_html(query or Query(per_page=1000)).decode()


def api(store: Store) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(b"".join(rendering(store).api_parts(Query(per_page=None))))
    return data


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "\u2013"),
        (float("nan"), "\u2013"),
        (0, "0"),
        (-0.001, "0"),
        (7, "7"),
        (48200.0, "48,200"),
        (1234.5, "1,234.5"),
        (4821.25, "4,821.25"),
        (1234567.891, "1,234,567.89"),
        (2.999, "3"),
        (-1500, "-1,500"),
    ],
)
def test_format_number(value: float | None, text: str) -> None:
    assert sh.format_number(value) == text


@pytest.mark.parametrize(
    ("days", "text"),
    [
        (None, "\u2013"),
        (0.01, "< 1 h"),
        (0.5, "12 h"),
        (1.0, "1.0 days"),
        (3.44, "3.4 days"),
        (27.4, "27 days"),
        (1234.0, "1,234 days"),
        (-2.0, "2.0 days ago"),
        (-0.25, "6 h ago"),
    ],
)
def test_format_days(days: float | None, text: str) -> None:
    assert sh.format_days(days) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "never"),
        (-3, "< 1 min ago"),
        (12.4, "< 1 min ago"),
        (61, "1 min ago"),
        (3599, "59 min ago"),
        (3600, "1 h ago"),
        (5400, "1.5 h ago"),
        (86400, "1 day ago"),
        (86400 * 2.5, "2.5 days ago"),
    ],
)
def test_format_age(seconds: float | None, text: str) -> None:
    assert sh.format_age(seconds) == text


# --------------------------------------------------------------------------- errors


def test_http_errors_show_reason_and_status_only() -> None:
    err = PollError(Reason.AUTH, f"HTTP 401: Invalid key {KEY} for team acme", status=401)
    info = sp.public_error(err, KEY)
    assert (info.reason, info.status, info.message) == ("auth", 401, "HTTP 401")
    err = PollError(Reason.SERVER_ERROR, "HTTP 503: <html>upstream body</html>", status=503)
    assert sp.public_error(err).message == "HTTP 503"


def test_errors_the_provider_reports_beside_a_200_show_its_status_only() -> None:
    # Windsurf writes its verdict as {"error": "..."} on a 200: the text is the provider's own.
    body = json.dumps({"error": "Invalid service key for team acme, group blue"}).encode()
    with pytest.raises(PollError) as caught:
        interpret(
            Exchange(status=200, headers={}, body=body),
            secrets=(KEY,),
            error_message=windsurf.error_message,
            classify=windsurf.classify,
        )
    assert "group blue" in caught.value.message  # the log keeps it
    info = sp.public_error(caught.value.redacted(KEY), KEY)
    assert (info.reason, info.status, info.message) == ("auth", 200, "HTTP 200")


def test_other_errors_are_sanitised() -> None:
    # Quoted fragments of the response are elided, the key goes, URLs keep scheme and host.
    err = PollError(Reason.BAD_RESPONSE, f'balance should be a number, got the string "{KEY[:20]}"')
    msg = sp.public_error(err, KEY).message
    assert msg == 'balance should be a number, got the string "\u2026"'
    err = PollError(
        Reason.CONNECTION,
        f"cannot connect to https://api.example.com:8443/v0/x?api_key={KEY}&a=1: refused",
    )
    msg = sp.public_error(err, KEY).message
    assert msg == "cannot connect to https://api.example.com:8443 refused"
    leaked = sp.public_error(PollError(Reason.INTERNAL, f"key {KEY} leaked"), KEY).message
    assert find_secrets(leaked, [KEY]) == []
    long = sp.public_error(PollError(Reason.BAD_RESPONSE, "x" * 500)).message
    assert len(long) == sp.MAX_MESSAGE and long.endswith("\u2026")
    # A non-HTTP error that carries a 2xx status (e.g. HTML instead of JSON) keeps its text.
    err = PollError(Reason.BAD_RESPONSE, "HTTP 200 with not JSON (text/html)", status=200)
    assert sp.public_error(err).message == "HTTP 200 with not JSON (text/html)"


# --------------------------------------------------------------------------- SVG pieces


def spark_svg(points: list[tuple[float, float]], now: float) -> ET.Element | None:
    """The sparkline the page draws for a pool with this history (None: not drawn yet)."""
    store, clock = make_store("accounts: [{name: a, provider: fullenrich, api_key: k}]")
    store.record_success("a", "balance", fe(1), 0.1)
    history = store.accounts["a"].history["workspace"] = History()
    for point in points:
        history.append(point)
    clock.t = now
    html = page(store)
    found = re.search(r'<svg class="spark.*?</svg>', html)
    return ET.fromstring(found.group(0)) if found else None


def test_sparkline_svg() -> None:
    now = T0
    points = [(now - 3600 * (23 - i), 1000.0 - 10 * i) for i in range(24)]
    root = spark_svg(points, now)
    assert root is not None and root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    label = "a workspace remaining over the last 23 h: from 1,000 to 770 credits (lowest 770)"
    assert root.get("aria-label") == label
    assert root.find(f"{SVG}title").text == label  # type: ignore[union-attr]
    line = root.find(f"{SVG}path[@class='spark-line']")
    assert line is not None
    coords = [
        tuple(map(float, c.split(","))) for c in re.findall(r"[\d.]+,[\d.]+", line.get("d", ""))
    ]
    assert len(coords) == 24
    xs, ys = [c[0] for c in coords], [c[1] for c in coords]
    assert xs == sorted(xs) and xs[0] == sh.SPARK_PAD and xs[-1] == sh.SPARK_W - sh.SPARK_PAD
    # Highest value at the top, lowest at the bottom, decreasing values go down.
    assert ys[0] == sh.SPARK_PAD and ys[-1] == sh.SPARK_H - sh.SPARK_PAD
    assert ys == sorted(ys)
    dot = root.find(f"{SVG}circle")
    assert dot is not None and float(dot.get("cx", "0")) == xs[-1]


def test_sparkline_edge_cases() -> None:
    now = T0
    assert sh.sparkline([], now) is None
    assert sh.sparkline([(now, 5.0)], now) is None
    assert sh.sparkline([(now - 30, 1.0), (now, 5.0)], now) is None
    # Older than 24 h is not drawn.
    assert sh.sparkline([(now - 90000, 1.0), (now, 5.0)], now) is None
    flat = sh.sparkline([(now - 600, 5.0), (now, 5.0)], now)
    assert flat is not None
    assert {float(y) for _, y in re.findall(r"([\d.]+),([\d.]+)", flat["line"])} == {sh.SPARK_H / 2}
    many = [(now - 86000 + i * 300.0, float(i % 7)) for i in range(287)]
    drawn = sh.sparkline(many, now)
    assert drawn is not None and drawn["line"].count(",") == sh.SPARK_MAX_POINTS


def test_usage_bar() -> None:
    assert (sh.bar_fill(0.25), sh.bar_level(0.25)) == (f"{sh.BAR_W * 0.25:g}", "ok")
    assert (sh.bar_fill(0.8), sh.bar_level(0.8)) == (f"{sh.BAR_W * 0.8:g}", "warn")
    assert (sh.bar_fill(0.95), sh.bar_level(0.95)) == (f"{sh.BAR_W * 0.95:g}", "crit")
    assert (sh.bar_fill(1.7), sh.bar_level(1.7)) == (f"{sh.BAR_W}", "crit")  # clamped
    assert (sh.bar_fill(-1), sh.bar_level(-1)) == ("0", "ok")


# --------------------------------------------------------------------------- the snapshot


ACCOUNTS = f"""
defaults: {{max_staleness: 1h}}
accounts:
  - {{name: fine, provider: fullenrich, api_key: k-fine, low_credit_threshold: 100}}
  - {{name: low, provider: fullenrich, api_key: k-low, low_credit_threshold: 100}}
  - {{name: waiting, provider: fullenrich, api_key: k-wait}}
  - {{name: broken, provider: fullenrich, api_key: {KEY}}}
  - {{name: old, provider: fullenrich, api_key: k-old}}
  - {{name: alsofine, provider: fullenrich, api_key: k-fine2}}
"""


def populated() -> tuple[Store, Clock]:
    store, clock = make_store(ACCOUNTS)
    store.record_success("old", "balance", fe(10), 0.1)
    clock.t += 7200  # "old" is now past its max_staleness
    store.record_success("fine", "balance", fe(5000), 0.1)
    store.record_success("low", "balance", fe(99.5), 0.1)
    store.record_success("alsofine", "balance", fe(1), 0.1)
    store.record_success("broken", "balance", fe(42), 0.1)
    store.record_failure(
        "broken",
        "balance",
        PollError(Reason.AUTH, f"HTTP 401: invalid key {KEY}", status=401),
        0.1,
    )
    return store, clock


def test_states_and_problems_first() -> None:
    store, _ = populated()
    accounts = snapshot(store)
    order = [(a.account, a.state, a.severity) for a in accounts]
    assert order == [
        ("broken", "failing", "failing"),
        ("old", "stale", "stale"),
        ("waiting", "never_polled", "never_polled"),
        ("low", "ok", "low"),
        ("fine", "ok", "ok"),
        ("alsofine", "ok", "ok"),
    ]
    by = {a.account: a for a in accounts}
    assert by["broken"].pools[0].remaining == 42  # last good value stays while failing
    assert by["old"].pools == () and by["old"].stale  # dropped after max_staleness
    assert by["low"].pools[0].low and not by["fine"].pools[0].low
    counts = {"failing": 1, "stale": 1, "never_polled": 1, "low": 1, "ok": 2}
    assert rendering(store).counts == counts


def test_failing_and_stale_says_the_values_were_dropped() -> None:
    store, clock = make_store(
        "accounts: [{name: a, provider: fullenrich, api_key: k, max_staleness: 1h}]"
    )
    store.record_success("a", "balance", fe(10), 0.1)
    clock.t += 3601
    store.record_failure("a", "balance", PollError(Reason.TIMEOUT, "no answer within 15s"), 15)
    (acct,) = snapshot(store)
    assert (acct.state, acct.stale, acct.pools) == ("failing", True, ())
    html = page(store)
    assert "values dropped: older than max_staleness (1h)" in html
    assert "balance: no answer within 15s" in html
    assert api(store)["accounts"][0]["stale"] is True


def test_low_ignores_a_known_zero_limit_and_equal_values() -> None:
    store, _ = make_store(
        "accounts: [{name: ws, provider: windsurf, api_key: k, "
        "low_credit_threshold: {add_on: 10, prompt: 100}}]"
    )
    reading = Reading(
        pools={
            "add_on": PoolValues(remaining=0, used=0, limit=0),
            "prompt": PoolValues(remaining=100, used=0, limit=100),
        }
    )
    store.record_success("ws", "balance", reading, 0.1)
    (acct,) = snapshot(store)
    assert [p.low for p in acct.pools] == [False, False]
    assert acct.severity == "ok"


def test_runway_expiry_cycle_and_usage() -> None:
    store, _ = make_store("accounts: [{name: ts, provider: theirstack, api_key: k}]")
    store.record_success(
        "ts",
        "balance",
        Reading(
            pools={"api": PoolValues(remaining=700, used=300)},
            expiry_timestamp=T0 + 10 * 86400,
        ),
        0.1,
    )
    store.record_success(
        "ts", "consumption", Reading(consumption={"api": {"1d": 5, "7d": 70, "30d": 300}}), 0.1
    )
    (acct,) = snapshot(store)
    (api,) = acct.pools
    assert api.runway_days == pytest.approx(70.0)  # 700 / (70 / 7)
    assert api.used_ratio is None  # no limit known
    assert acct.days_until_expiry == pytest.approx(10.0)
    assert (api.runway_source, api.burn_per_day) == ("consumption", 10.0)

    store2, _ = make_store("accounts: [{name: ws, provider: windsurf, api_key: k}]")
    store2.record_success(
        "ws",
        "balance",
        Reading(
            pools={"add_on": PoolValues(remaining=250, used=750, limit=1000)},
            cycle_end_timestamp=T0 + 2.5 * 86400,
        ),
        0.1,
    )
    (acct,) = snapshot(store2)
    assert acct.pools[0].used_ratio == pytest.approx(0.75)
    assert acct.days_until_cycle_end == pytest.approx(2.5)
    html = page(store2)
    assert "750 / 1,000 \u00b7 75%" in html and "2.5 days" in html


def test_windsurf_team_burn_and_runway() -> None:
    """Issue 14: a Windsurf team with consumption shows its burn and runway like TheirStack's
    pools, from the 7-day history CascadeAnalytics gives, on the team's remaining."""
    store, _ = make_store(
        "accounts: [{name: ws, provider: windsurf, api_key: k, prompt_usage: true, "
        "consumption: {}, low_credit_threshold: {team: 6000}}]"
    )
    cycle: dict[str, Any] = {
        "cycle_start_timestamp": T0 - 86400,
        "cycle_end_timestamp": T0 + 20 * 86400,
    }
    balance = Reading(
        pools={
            "prompt": PoolValues(limit=5000),
            "add_on": PoolValues(limit=2000, used=500, remaining=1500),
        },
        **cycle,
    )
    store.record_success("ws", "balance", balance, 0.1)
    store.record_success(
        "ws", "user_analytics", Reading(pools={"prompt": PoolValues(used=1500)}, **cycle), 0.1
    )
    week = Reading(consumption={"team": {"1d": 60, "7d": 490, "30d": 1900}})
    store.record_success("ws", "consumption", week, 0.1)
    (acct,) = snapshot(store)
    assert [p.pool for p in acct.pools] == ["prompt", "add_on", "team"]
    team = acct.pools[2]
    assert (team.remaining, team.used, team.limit) == (5000, 2000, 7000)
    assert (team.runway_source, team.burn_per_day) == ("consumption", 70.0)
    assert team.runway_days == pytest.approx(5000 / 70)
    assert team.low and acct.severity == "low"  # 5,000 < 6,000
    assert [p.runway_days for p in acct.pools[:2]] == [None, None]
    html = page(store)
    assert "at 70 credits/day (7-day average)" in html and ">71 days</td>" in html
    data = api(store)["accounts"][0]["pools"]["team"]
    assert (data["runway_source"], data["consumption_7d"]) == ("consumption", 490)


def test_history_is_last_24h_and_bounded() -> None:
    store, clock = make_store("accounts: [{name: a, provider: fullenrich, api_key: k}]")
    for i in range(400):  # 400 polls one step apart: more than a day
        store.record_success("a", "balance", fe(10_000 - i), 0.1)
        clock.t += HISTORY_SPAN / HISTORY_POINTS
    (acct,) = snapshot(store)
    hist = acct.pools[0].history
    assert 0 < len(hist) <= 288
    assert all(clock.t - t <= 86400 for t, _ in hist)
    assert hist[-1][1] == 10_000 - 399


# --------------------------------------------------------------------------- the page


class TagChecker(HTMLParser):
    """Fails on a closing tag that does not match the open one (a cheap well-formedness check)."""

    VOID = {"meta", "link", "br", "img", "input", "hr", "circle", "rect", "path"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_html(page: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.stack == [], checker.stack
    return checker


def test_page_structure_and_no_script() -> None:
    store, _ = populated()
    html = page(store)
    checker = check_html(html)
    assert '<meta http-equiv="refresh" content="30">' in html
    assert "<script" not in html.lower()
    assert not any(
        k.startswith("on") or k == "style" for _, attrs in checker.attrs for k in attrs
    ), "no event handlers, no style attributes (the CSP allows neither)"
    # No external asset: every href/src is a same-origin path, a link to another view of the
    # page (a query string) or a data: URI; the filter form submits to the page itself.
    for tag, attrs in checker.attrs:
        for key in ("href", "src"):
            url = attrs.get(key)
            if url is not None:
                assert url.startswith(("/", "?", "data:")), (tag, url)
    assert 'href="/metrics"' in html and 'href="/api/status"' in html
    (form,) = [attrs for tag, attrs in checker.attrs if tag == "form"]
    assert form.get("method") == "get" and "action" not in form
    # Table semantics: column headers, one row group per account, accessible bars/sparklines.
    assert html.count('<th scope="col"') == 11
    assert html.count('scope="rowgroup"') == 6
    assert all(
        attrs.get("aria-label")
        for tag, attrs in checker.attrs
        if tag == "svg" and attrs.get("role")
    )
    # Rows in problem order.
    accounts = re.findall(r'<tbody class="acct [a-z_]+" data-account="([^"]+)"', html)
    assert accounts == ["broken", "old", "waiting", "low", "fine", "alsofine"]
    assert "Failing: auth" in html and "HTTP 401, the key was refused" in html
    assert "values dropped" in html and "waiting for the first poll" in html
    assert "below 100" in html and "99.5" in html
    assert "1 failing" in rendering(store).title()


def test_the_stylesheet_matches_the_csp_hash() -> None:
    store, _ = populated()
    html = page(store)
    (css,) = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in sh.CONTENT_SECURITY_POLICY
    assert "script-src" not in sh.CONTENT_SECURITY_POLICY  # default-src 'none' covers it
    assert "default-src 'none'" in sh.CONTENT_SECURITY_POLICY
    assert "prefers-color-scheme:dark" in css


def test_everything_from_the_config_is_escaped() -> None:
    evil = "<img/src=x>"
    store, _ = make_store(
        f"""accounts:
  - name: '{evil}'
    provider: fullenrich
    api_key: {KEY}
    labels: {{team: '"><b>bold</b>', env: "a&b"}}
"""
    )
    store.record_success(evil, "balance", fe(1234.5), 0.1)
    html = page(store)
    check_html(html)
    assert evil not in html and "<b>bold</b>" not in html
    assert "&lt;img/src=x&gt;" in html
    assert "team=&#34;&gt;&lt;b&gt;bold&lt;/b&gt;" in html and "env=a&amp;b" in html
    assert find_secrets(html, [KEY]) == []


def test_secret_never_shown() -> None:
    store, _ = populated()
    assert find_secrets(page(store), [KEY]) == []
    assert find_secrets(repr(api(store)), [KEY]) == []


def test_reload_failed_banner() -> None:
    store, clock = populated()
    clock.t += 60
    store.set_reload_result(False)
    html = page(store)
    assert 'role="alert"' in html and "reload failed" in html
    assert "Config reload failed; running the config loaded" in html
    store.set_reload_result(True)
    assert 'role="alert"' not in page(store)


def test_no_accounts() -> None:
    store, _ = make_store("accounts: []")
    starting = StatusCache(store).current  # before its first rendering
    assert "Starting: the accounts show" in starting.page_html(Query()).decode()
    html = page(store)
    check_html(html)
    assert "No accounts configured." in html


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], Store, Clock]]:
    store, clock = populated()

    async def reload() -> list[str]:
        return []

    c = TestClient(TestServer(create_app(store, ExpositionCache(store), reload)))
    await c.start_server()
    yield c, store, clock
    await c.close()


async def test_page_over_http(
    client: tuple[TestClient[web.Request, web.Application], Store, Clock],
) -> None:
    c, _, _ = client
    r = await c.get("/")
    assert r.status == 200 and r.content_type == "text/html"
    assert r.headers["Content-Security-Policy"] == sh.CONTENT_SECURITY_POLICY
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert find_secrets(await r.text(), [KEY]) == []


async def test_api_status_contract(
    client: tuple[TestClient[web.Request, web.Application], Store, Clock],
) -> None:
    c, store, _ = client
    data: dict[str, Any] = await (await c.get("/api/status")).json()
    # Keys from before the status page: still there, same meaning.
    assert data["version"] and data["config_reload_successful"] is True
    for acct in data["accounts"]:
        assert {"account", "provider", "state", "last_success", "errors", "pools"} <= acct.keys()
        for pool in acct["pools"].values():
            assert {"remaining", "used", "limit"} <= pool.keys()
    assert [a["account"] for a in data["accounts"]] == [
        "broken",
        "old",
        "waiting",
        "low",
        "fine",
        "alsofine",
    ]
    assert [a["rank"] for a in data["accounts"]] == [0, 1, 2, 3, 4, 4]
    by = {a["account"]: a for a in data["accounts"]}
    assert by["broken"]["errors"] == {
        "balance": {"reason": "auth", "status": 401, "message": "HTTP 401"}
    }
    low = by["low"]["pools"]["workspace"]
    assert low["remaining"] == 99.5 and low["low"] is True and low["low_threshold"] == 100
    assert low["unit"] == "credits" and "history" not in low  # only when asked for
    assert by["waiting"]["state"] == "never_polled" and by["waiting"]["pools"] == {}
    assert data["counts"]["ok"] == 2 and data["severity_rank"]["failing"] == 0
    assert find_secrets(repr(data), [KEY]) == []
    # ?history=1: the same accounts, each pool with its history (whole seconds, values).
    full: dict[str, Any] = await (await c.get("/api/status?history=1")).json()
    low_history = {a["account"]: a for a in full["accounts"]}["low"]["pools"]["workspace"]
    store_points = list(store.accounts["low"].history["workspace"])
    assert low_history["history"] == [[int(t), v] for t, v in store_points] != []
    for entry, plain in zip(full["accounts"], data["accounts"], strict=True):
        pools = entry["pools"]
        assert all(isinstance(pools[p].pop("history"), list) for p in pools)
        assert entry == plain
    r = await c.get("/api/status?history=maybe")
    assert r.status == 400 and "history: expected 1 or 0" in await r.text()


def _theme_colours() -> dict[str, dict[str, str]]:
    light = re.search(r":root\{(.*?)\}", sh.CSS, re.S)
    dark = re.search(r"prefers-color-scheme:dark\)\{:root\{(.*?)\}", sh.CSS, re.S)
    assert light and dark

    def parse(block: str) -> dict[str, str]:
        return dict(re.findall(r"--([a-z-]+):(#[0-9a-f]{6})", block))

    return {"light": parse(light.group(1)), "dark": parse(dark.group(1))}


def _contrast(a: str, b: str) -> float:
    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_text_contrast_meets_wcag_aa(theme: str) -> None:
    c = _theme_colours()[theme]
    pairs = [
        ("fg", "card"),
        ("fg", "bg"),
        ("muted", "card"),
        ("muted", "bg"),
        ("muted", "head"),
        ("muted", "idle-bg"),
        ("accent", "card"),
        ("warn", "card"),
        ("crit", "card"),
        ("ok", "ok-bg"),
        ("warn", "warn-bg"),
        ("crit", "crit-bg"),
        ("idle", "idle-bg"),
    ]
    for fg, bg in pairs:
        assert _contrast(c[fg], c[bg]) >= 4.5, (theme, fg, bg, _contrast(c[fg], c[bg]))
