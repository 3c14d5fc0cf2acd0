"""The status page in headless Chromium: the simulator, the exporter as a subprocess, selenium.

Every configured account appears with the right remaining value and state, failing accounts
show their reason and come first, the browser logs no error (the page's strict CSP turns any
inline script, style attribute or external asset into a console error), nothing is fetched
besides the document, it works with JavaScript disabled, and dark mode applies. The filters
(the summary's links and the GET form) and the pager work without JavaScript.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exporter.simulator import SimulatorThread
from support import ExporterProcess, http_get, sample_values, value, wait_for
from support.browser import ARTIFACTS, Driver, console_errors, full_page_screenshot
from support.leaks import find_secrets

SECRET_PREFIX = "browser-test-key-"
WEIRD = "r&d<lab>"  # an account name that needs escaping


def _days_back(n: int, api: int, ui: int) -> dict[str, dict[str, int]]:
    today = datetime.now(UTC).date()
    return {
        (today - timedelta(days=i)).isoformat(): {"api": api, "ui": ui} for i in range(1, n + 1)
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimulatorThread, Any]]:
    """One simulator and one exporter for the whole module (Chromium tests share them)."""
    sim = SimulatorThread()
    sim.start()
    key = {n: SECRET_PREFIX + n for n in ("ts", "ws", "fe", "broken", "revoked", "weird", "slow")}
    sim.add_account(
        "theirstack",
        key["ts"],
        api_credits=12_345,
        ui_credits=678,
        used_api_credits=7_655,
        used_ui_credits=22,
        earliest_expiration=(datetime.now(UTC) + timedelta(days=20)).isoformat(),
        consumption_days=_days_back(10, 700, 7),
    )
    sim.add_account(
        "windsurf",
        key["ws"],
        prompt_credits_per_seat=500,
        num_seats=10,
        add_on_credits_available=2_000,
        add_on_credits_used=1_500,
    )
    sim.add_account("fullenrich", key["fe"], balance=98_765.43)
    sim.add_account("fullenrich", key["broken"], balance=1, fail={"status": 401})
    sim.add_account("fullenrich", key["revoked"], balance=4_242)
    sim.add_account("fullenrich", key["weird"], balance=1_000_000)
    sim.add_account("fullenrich", key["slow"], balance=5, latency=120)

    def acct(name: str, provider: str, k: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "provider": provider,
            "api_key": key[k],
            "base_url": sim.base_url(provider),
            **extra,
        }

    config = {
        "defaults": {"interval": "1m", "timeout": "60s"},
        "accounts": [
            acct("growth", "theirstack", "ts", low_credit_threshold={"api": 1_000, "ui": 50}),
            acct("engineering", "windsurf", "ws", low_credit_threshold={"add_on": 1_000}),
            acct("sales", "fullenrich", "fe", labels={"team": "<b>sales</b>"}),
            acct("broken", "fullenrich", "broken"),
            acct("revoked", "fullenrich", "revoked", interval="1s"),
            acct(WEIRD, "fullenrich", "weird"),
            acct("slow", "fullenrich", "slow"),
        ],
    }
    exporter = ExporterProcess(config, tmp_path_factory.mktemp("browser-exporter"))
    try:
        exporter.wait_healthy()

        def polled() -> bool:
            accounts = status(exporter)["accounts"]
            states = {a["account"]: a["state"] for a in accounts}
            polled = ("growth", "engineering", "sales", "revoked", WEIRD)
            return (
                all(states[n] == "ok" for n in polled)
                and states["broken"] == "failing"
                and states["slow"] == "never_polled"
            )

        wait_for(polled)
        sim.update(key["revoked"], revoked=True)
        wait_for(lambda: account(status(exporter), "revoked")["state"] == "failing")
        yield sim, exporter
    finally:
        exporter.stop()
        sim.stop()


def status(exporter: ExporterProcess) -> dict[str, Any]:
    code, body = http_get(f"{exporter.url}/api/status")
    assert code == 200
    data: dict[str, Any] = json.loads(body)
    return data


def account(data: dict[str, Any], name: str) -> dict[str, Any]:
    hits: list[dict[str, Any]] = [a for a in data["accounts"] if a["account"] == name]
    (hit,) = hits
    return hit


EXPECTED = {
    # account: (state shown, {pool: remaining as shown})
    "growth": ("ok", {"api": "12,345", "ui": "678"}),
    "engineering": ("low", {"prompt": "\u2013", "add_on": "500"}),
    "sales": ("ok", {"workspace": "98,765.43"}),
    "broken": ("failing", {}),
    "revoked": ("failing", {"workspace": "4,242"}),
    WEIRD: ("ok", {"workspace": "1,000,000"}),
    "slow": ("never_polled", {}),
}


def rows(driver: Driver) -> dict[str, Any]:
    from selenium.webdriver.common.by import By

    return {
        b.get_attribute("data-account"): b
        for b in driver.find_elements(By.CSS_SELECTOR, "tbody.acct")
    }


def check_page(driver: Driver, exporter: ExporterProcess) -> None:
    """What a person looking at the page must see."""
    from selenium.webdriver.common.by import By

    driver.get(f"{exporter.url}/")
    groups = rows(driver)
    assert list(groups)[:2] == ["broken", "revoked"], list(groups)  # failing first
    assert list(groups)[2] == "slow"  # then never polled
    assert list(groups)[3] == "engineering"  # then low
    assert set(groups) == set(EXPECTED)

    for name, (severity, pools) in EXPECTED.items():
        group = groups[name]
        assert group.find_element(By.CSS_SELECTOR, "th.account .name").text == name
        assert group.get_attribute("data-severity") == severity
        badge = group.find_element(By.CSS_SELECTOR, ".badge").text
        shown = {
            r.get_attribute("data-pool"): r.find_element(
                By.CSS_SELECTOR, "td.remaining .value"
            ).text
            for r in group.find_elements(By.CSS_SELECTOR, "tr[data-pool]")
            if r.get_attribute("data-pool")
        }
        assert shown == pools, (name, shown)
        if severity == "failing":
            assert badge == "Failing: auth"
            detail = group.find_element(By.CSS_SELECTOR, ".detail").text
            assert detail == "balance: HTTP 401, the key was refused"
        else:
            assert badge == {"ok": "OK", "low": "Low", "never_polled": "Never polled"}[severity]

    growth = groups["growth"]
    assert "credits" in growth.find_element(By.CSS_SELECTOR, "td.remaining .unit").text
    assert growth.find_element(By.CSS_SELECTOR, "td.expiry").text == "20 days"
    labels = groups["sales"].find_element(By.CSS_SELECTOR, ".label").text
    assert labels == "team=<b>sales</b>"  # shown as text, not markup
    bar = groups["engineering"].find_element(By.CSS_SELECTOR, "svg.bar")
    assert (
        bar.get_attribute("aria-label") == "engineering add_on: 1,500 of 2,000 credits used (75%)"
    )
    assert "below 1,000" in groups["engineering"].text

    refresh = driver.find_element(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    assert refresh.get_attribute("content") == "30"
    assert driver.find_element(By.LINK_TEXT, "Metrics").get_attribute("href").endswith("/metrics")
    assert find_secrets(driver.page_source, [SECRET_PREFIX]) == []
    assert driver.title.startswith("\u26a0 2 failing")


def test_page_in_chromium(
    browser: Callable[..., Driver], setup: tuple[SimulatorThread, ExporterProcess]
) -> None:
    _, exporter = setup
    driver = browser(javascript=True)
    check_page(driver, exporter)

    # The numbers on the page are the ones /metrics serves.
    samples = sample_values(exporter.metrics())
    groups = rows(driver)
    from selenium.webdriver.common.by import By

    runway_cell = groups["growth"].find_element(By.CSS_SELECTOR, "tr[data-pool='api'] td.runway")
    runway = value(samples, "credits_runway_seconds", account="growth", pool="api")
    assert runway is not None and runway_cell.text == f"{runway / 86400:.0f} days"
    assert value(samples, "credits_remaining", account="sales") == 98_765.43

    # Nothing but the document was loaded, and the console is clean.
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loaded == []
    assert console_errors(driver) == []

    shot = full_page_screenshot(driver, ARTIFACTS / "status-page.png")
    assert shot.stat().st_size > 10_000
    dark = full_page_screenshot(driver, ARTIFACTS / "status-page-dark.png", dark=True)
    assert dark.read_bytes() != shot.read_bytes()
    assert console_errors(driver) == []


def test_page_without_javascript(
    browser: Callable[..., Driver], setup: tuple[SimulatorThread, ExporterProcess]
) -> None:
    _, exporter = setup
    driver = browser(javascript=False)
    # JavaScript really is off in this browser: a page's script would have changed the title.
    driver.get("data:text/html,<title>before</title><script>document.title='after'</script>")
    assert driver.title == "before"
    check_page(driver, exporter)
    from selenium.webdriver.common.by import By

    # The usage bars are drawn (inline SVG, laid out without any script).
    bars = driver.find_elements(By.CSS_SELECTOR, "svg.bar")
    assert len(bars) == 1 and all(b.size == {"width": 120, "height": 8} for b in bars)
    assert console_errors(driver) == []
    full_page_screenshot(driver, ARTIFACTS / "status-page-nojs.png")


def submit(driver: Driver) -> None:
    """Submit the filter form and wait for the new page (a form submission navigates after the
    click returns): until the old page's root is gone. Chromedriver says so with a stale
    element, or, when it asks just as the document is replaced, with "Node with given id does
    not belong to the document": gone either way."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, "form.filters button").click()

    def replaced(_: Driver) -> bool:
        try:
            old.is_enabled()
        except WebDriverException:
            return True
        return False

    WebDriverWait(driver, 10).until(replaced)


def test_filtered_and_paged_view(
    browser: Callable[..., Driver], setup: tuple[SimulatorThread, ExporterProcess]
) -> None:
    """Two accounts a page, the pager's links, the summary's links and the filter form, all
    with JavaScript off."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _, exporter = setup
    driver = browser(javascript=False)
    driver.get(f"{exporter.url}/?per_page=2")
    assert list(rows(driver)) == ["broken", "revoked"]
    assert "Showing 1\u20132 of 7 accounts" in driver.find_element(By.CSS_SELECTOR, ".showing").text
    driver.find_element(By.LINK_TEXT, "Next \u203a").click()
    assert driver.current_url.endswith("?per_page=2&page=2")
    assert list(rows(driver)) == ["slow", "engineering"]
    driver.find_element(By.LINK_TEXT, "Last \u00bb").click()
    assert list(rows(driver)) == [WEIRD]
    assert "page 4 of 4" in driver.find_element(By.CSS_SELECTOR, ".pager").text

    # The summary counts the whole set and links to each state.
    driver.find_element(By.CSS_SELECTOR, ".chip.failing a").click()
    assert list(rows(driver)) == ["broken", "revoked"]
    assert driver.find_element(By.CSS_SELECTOR, ".chip.ok strong").text == "3"

    # The form: a state and a provider, then a name.
    driver.get(f"{exporter.url}/")
    Select(driver.find_element(By.NAME, "state")).select_by_value("ok")
    Select(driver.find_element(By.NAME, "provider")).select_by_value("fullenrich")
    submit(driver)
    assert "state=ok" in driver.current_url and "provider=fullenrich" in driver.current_url
    assert set(rows(driver)) == {"sales", WEIRD}
    assert "Showing 1\u20132 of 2 matching accounts" in driver.page_source
    box = driver.find_element(By.NAME, "account")
    box.clear()
    box.send_keys("R&D")
    submit(driver)
    assert list(rows(driver)) == [WEIRD]
    driver.find_element(By.LINK_TEXT, "Clear filters").click()
    assert len(rows(driver)) == 7
    assert console_errors(driver) == []
    full_page_screenshot(driver, ARTIFACTS / "status-page-filtered.png")
