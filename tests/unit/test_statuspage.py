"""The status page and /api/status without a browser: formatting, escaping, sorting, the SVG
pieces, what an error may show, and the JSON contract."""

from __future__ import annotations

import base64
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from exporter import statuspage as sp
from exporter.config import parse_config
from exporter.metrics import ExpositionCache
from exporter.model import PollError, PoolValues, Reading, Reason
from exporter.store import HISTORY_STEP, Store
from exporter.web import create_app

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
    assert sp.format_number(value) == text


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
    assert sp.format_days(days) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "never"),
        (-3, "0 s ago"),
        (12.4, "12 s ago"),
        (61, "1 min ago"),
        (3599, "59 min ago"),
        (3600, "1 h ago"),
        (5400, "1.5 h ago"),
        (86400, "1 day ago"),
        (86400 * 2.5, "2.5 days ago"),
    ],
)
def test_format_age(seconds: float | None, text: str) -> None:
    assert sp.format_age(seconds) == text


# --------------------------------------------------------------------------- errors


def test_http_errors_show_reason_and_status_only() -> None:
    err = PollError(Reason.AUTH, f"HTTP 401: Invalid key {KEY} for team acme", status=401)
    info = sp.public_error(err, KEY)
    assert (info.reason, info.status, info.message) == ("auth", 401, "HTTP 401")
    err = PollError(Reason.SERVER_ERROR, "HTTP 503: <html>upstream body</html>", status=503)
    assert sp.public_error(err).message == "HTTP 503"


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
    assert KEY not in sp.sanitize_message(f"key {KEY} leaked", KEY)
    long = sp.sanitize_message("x" * 500)
    assert len(long) == sp.MAX_MESSAGE and long.endswith("\u2026")
    # A non-HTTP error that carries a 2xx status (e.g. HTML instead of JSON) keeps its text.
    err = PollError(Reason.BAD_RESPONSE, "HTTP 200 with not JSON (text/html)", status=200)
    assert sp.public_error(err).message == "HTTP 200 with not JSON (text/html)"


# --------------------------------------------------------------------------- SVG pieces


def test_sparkline_svg() -> None:
    now = T0
    points = [(now - 3600 * (23 - i), 1000.0 - 10 * i) for i in range(24)]
    svg = sp.sparkline_svg(points, now, 'growth api <"remaining">')
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label") == 'growth api <"remaining">'
    assert root.find(f"{SVG}title").text == 'growth api <"remaining">'  # type: ignore[union-attr]
    line = root.find(f"{SVG}path[@class='spark-line']")
    assert line is not None
    coords = [
        tuple(map(float, c.split(","))) for c in re.findall(r"[\d.]+,[\d.]+", line.get("d", ""))
    ]
    assert len(coords) == 24
    xs, ys = [c[0] for c in coords], [c[1] for c in coords]
    assert xs == sorted(xs) and xs[0] == sp.SPARK_PAD and xs[-1] == sp.SPARK_W - sp.SPARK_PAD
    # Highest value at the top, lowest at the bottom, decreasing values go down.
    assert ys[0] == sp.SPARK_PAD and ys[-1] == sp.SPARK_H - sp.SPARK_PAD
    assert ys == sorted(ys)
    dot = root.find(f"{SVG}circle")
    assert dot is not None and float(dot.get("cx", "0")) == xs[-1]


def test_sparkline_edge_cases() -> None:
    now = T0
    assert "collecting" in sp.sparkline_svg([], now, "x")
    assert "collecting" in sp.sparkline_svg([(now, 5.0)], now, "x")
    assert "collecting" in sp.sparkline_svg([(now - 30, 1.0), (now, 5.0)], now, "x")
    # Older than 24 h is not drawn.
    assert "collecting" in sp.sparkline_svg([(now - 90000, 1.0), (now, 5.0)], now, "x")
    flat = ET.fromstring(sp.sparkline_svg([(now - 600, 5.0), (now, 5.0)], now, "x"))
    d = flat.find(f"{SVG}path[@class='spark-line']").get("d", "")  # type: ignore[union-attr]
    assert {float(y) for _, y in re.findall(r"([\d.]+),([\d.]+)", d)} == {sp.SPARK_H / 2}
    many = [(now - 86000 + i * 300.0, float(i % 7)) for i in range(287)]
    svg = sp.sparkline_svg(many, now, "x")
    d = ET.fromstring(svg).find(f"{SVG}path[@class='spark-line']").get("d", "")  # type: ignore[union-attr]
    assert d.count(",") == sp.SPARK_MAX_POINTS


def test_usage_bar_svg() -> None:
    def fill(svg: str) -> tuple[float, str]:
        root = ET.fromstring(svg)
        rect = root.findall(f"{SVG}rect")[1]
        return float(rect.get("width", "-1")), rect.get("class", "")

    assert fill(sp.usage_bar_svg(0.25, "a")) == (sp.BAR_W * 0.25, "bar-fill ok")
    assert fill(sp.usage_bar_svg(0.8, "a")) == (sp.BAR_W * 0.8, "bar-fill warn")
    assert fill(sp.usage_bar_svg(0.95, "a")) == (sp.BAR_W * 0.95, "bar-fill crit")
    assert fill(sp.usage_bar_svg(1.7, "a")) == (sp.BAR_W, "bar-fill crit")  # clamped
    assert fill(sp.usage_bar_svg(-1, "a")) == (0.0, "bar-fill ok")
    root = ET.fromstring(sp.usage_bar_svg(0.5, "x & <y>"))
    assert root.get("role") == "img" and root.get("aria-label") == "x & <y>"


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
    status = sp.snapshot(store)
    order = [(a.account, a.state, a.severity) for a in status.accounts]
    assert order == [
        ("broken", "failing", "failing"),
        ("old", "stale", "stale"),
        ("waiting", "never_polled", "never_polled"),
        ("low", "ok", "low"),
        ("fine", "ok", "ok"),
        ("alsofine", "ok", "ok"),
    ]
    by = {a.account: a for a in status.accounts}
    assert by["broken"].pools[0].remaining == 42  # last good value stays while failing
    assert by["old"].pools == () and by["old"].stale  # dropped after max_staleness
    assert by["low"].pools[0].low and not by["fine"].pools[0].low
    assert status.counts() == {"failing": 1, "stale": 1, "never_polled": 1, "low": 1, "ok": 2}


def test_failing_and_stale_says_the_values_were_dropped() -> None:
    store, clock = make_store(
        "accounts: [{name: a, provider: fullenrich, api_key: k, max_staleness: 1h}]"
    )
    store.record_success("a", "balance", fe(10), 0.1)
    clock.t += 3601
    store.record_failure("a", "balance", PollError(Reason.TIMEOUT, "no answer within 15s"), 15)
    status = sp.snapshot(store)
    (acct,) = status.accounts
    assert (acct.state, acct.stale, acct.pools) == ("failing", True, ())
    page = sp.render_html(status)
    assert "values dropped: older than max_staleness (1h)" in page
    assert "balance: no answer within 15s" in page
    assert sp.status_json(status)["accounts"][0]["stale"] is True


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
    (acct,) = sp.snapshot(store).accounts
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
    (acct,) = sp.snapshot(store).accounts
    (api,) = acct.pools
    assert api.runway_days == pytest.approx(70.0)  # 700 / (70 / 7)
    assert api.used_ratio is None  # no limit known
    assert acct.days_until_expiry == pytest.approx(10.0)
    assert sp.runway_days(10, 0) is None and sp.runway_days(None, 7) is None

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
    (acct,) = sp.snapshot(store2).accounts
    assert acct.pools[0].used_ratio == pytest.approx(0.75)
    assert acct.days_until_cycle_end == pytest.approx(2.5)
    page = sp.render_html(sp.snapshot(store2))
    assert "750 / 1,000 &middot; 75%" in page and "2.5 days" in page


def test_history_is_last_24h_and_bounded() -> None:
    store, clock = make_store("accounts: [{name: a, provider: fullenrich, api_key: k}]")
    for i in range(400):  # 400 polls one step apart: more than a day
        store.record_success("a", "balance", fe(10_000 - i), 0.1)
        clock.t += HISTORY_STEP
    (acct,) = sp.snapshot(store).accounts
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
    page = sp.render_html(sp.snapshot(store))
    checker = check_html(page)
    assert '<meta http-equiv="refresh" content="30">' in page
    assert "<script" not in page.lower()
    assert not any(
        k.startswith("on") or k == "style" for _, attrs in checker.attrs for k in attrs
    ), "no event handlers, no style attributes (the CSP allows neither)"
    # No external asset: every href/src is a same-origin path or a data: URI.
    for tag, attrs in checker.attrs:
        for key in ("href", "src"):
            url = attrs.get(key)
            if url is not None:
                assert url.startswith(("/", "data:")), (tag, url)
    assert 'href="/metrics"' in page and 'href="/api/status"' in page
    # Table semantics: column headers, one row group per account, accessible bars/sparklines.
    assert page.count('<th scope="col"') == 11
    assert page.count('scope="rowgroup"') == 6
    assert all(
        attrs.get("aria-label")
        for tag, attrs in checker.attrs
        if tag == "svg" and attrs.get("role")
    )
    # Rows in problem order.
    accounts = re.findall(r'<tbody class="acct [a-z_]+" data-account="([^"]+)"', page)
    assert accounts == ["broken", "old", "waiting", "low", "fine", "alsofine"]
    assert "Failing: auth" in page and "HTTP 401, the key was refused" in page
    assert "values dropped" in page and "waiting for the first poll" in page
    assert "below 100" in page and "99.5" in page
    assert "1 failing" in sp._title(sp.snapshot(store))


def test_the_stylesheet_matches_the_csp_hash() -> None:
    store, _ = populated()
    page = sp.render_html(sp.snapshot(store))
    (css,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in sp.CONTENT_SECURITY_POLICY
    assert "script-src" not in sp.CONTENT_SECURITY_POLICY  # default-src 'none' covers it
    assert "default-src 'none'" in sp.CONTENT_SECURITY_POLICY
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
    page = sp.render_html(sp.snapshot(store))
    check_html(page)
    assert evil not in page and "<b>bold</b>" not in page
    assert "&lt;img/src=x&gt;" in page
    assert "team=&quot;&gt;&lt;b&gt;bold&lt;/b&gt;" in page and "env=a&amp;b" in page
    assert KEY not in page


def test_secret_never_shown() -> None:
    store, _ = populated()
    status = sp.snapshot(store)
    assert KEY not in sp.render_html(status)
    assert KEY not in repr(sp.status_json(status))


def test_reload_failed_banner() -> None:
    store, clock = populated()
    clock.t += 60
    store.set_reload_result(False)
    page = sp.render_html(sp.snapshot(store))
    assert 'role="alert"' in page and "reload failed" in page
    assert "Config reload failed; running the config loaded" in page
    store.set_reload_result(True)
    assert 'role="alert"' not in sp.render_html(sp.snapshot(store))


def test_no_accounts() -> None:
    store, _ = make_store("accounts: []")
    page = sp.render_html(sp.snapshot(store))
    check_html(page)
    assert "No accounts configured." in page


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient, Store, Clock]]:
    store, clock = populated()

    async def reload() -> list[str]:
        return []

    c = TestClient(TestServer(create_app(store, ExpositionCache(store), reload)))
    await c.start_server()
    yield c, store, clock
    await c.close()


async def test_page_over_http(client: tuple[TestClient, Store, Clock]) -> None:
    c, _, _ = client
    r = await c.get("/")
    assert r.status == 200 and r.content_type == "text/html"
    assert r.headers["Content-Security-Policy"] == sp.CONTENT_SECURITY_POLICY
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert KEY not in await r.text()


async def test_api_status_contract(client: tuple[TestClient, Store, Clock]) -> None:
    c, _, _ = client
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
    assert low["unit"] == "credits" and len(low["history"]) == 1
    assert by["waiting"]["state"] == "never_polled" and by["waiting"]["pools"] == {}
    assert data["counts"]["ok"] == 2 and data["severity_rank"]["failing"] == 0
    assert KEY not in repr(data)


def _theme_colours() -> dict[str, dict[str, str]]:
    light = re.search(r":root\{(.*?)\}", sp.CSS, re.S)
    dark = re.search(r"prefers-color-scheme:dark\)\{:root\{(.*?)\}", sp.CSS, re.S)
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
