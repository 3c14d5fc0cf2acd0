"""The README's screenshot: the page with ``make demo``'s data after a simulated day.

``make screenshot`` (UPDATE_SCREENSHOT=1) copies it to docs/img/status-page.png; otherwise it
only lands in tests/artifacts/. The demo's accounts are all healthy, so one key is revoked at the
end (research) to show what a failing account looks like.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

from exporter.config import Config
from exporter.daemon import new_session
from exporter.http import HttpClient
from exporter.scheduler import poll_all_once
from exporter.simulator import DEMO_ACCOUNTS, Simulator
from exporter.statushtml import format_number
from exporter.statuspage import account_status
from exporter.store import Store
from support import ROOT
from support.browser import ARTIFACTS, Driver, console_errors, full_page_screenshot
from support.demo_data import demo_exporter

README_IMAGE = ROOT / "docs" / "img" / "status-page.png"


async def revoke_research(sim: Simulator, store: Store, config: Config) -> None:
    sim.update("demo-theirstack-research", revoked=True)
    async with new_session() as session:
        await poll_all_once(store, HttpClient(session), config)
    sim.advance(20)  # the page is looked at a little after the last poll


def test_demo_screenshot(browser: Callable[..., Driver]) -> None:
    from selenium.webdriver.common.by import By

    with demo_exporter(revoke_research) as (url, _sim, store):
        driver = browser(javascript=True)
        driver.get(f"{url}/")
        now = store.clock()
        expected = sorted(
            (account_status(s, now) for s in store.accounts.values()), key=lambda a: a.rank
        )
        groups = driver.find_elements(By.CSS_SELECTOR, "tbody.acct")
        names = [g.get_attribute("data-account") for g in groups]
        assert names == ["research", "growth", "engineering", "design", "sales", "search", "voip"]
        assert sorted(names) == sorted(a["name"] for a in DEMO_ACCOUNTS)
        for group, acct in zip(groups, expected, strict=True):
            for row, pool in zip(
                group.find_elements(By.CSS_SELECTOR, "tr[data-pool]"), acct.pools, strict=True
            ):
                shown = row.find_element(By.CSS_SELECTOR, "td.remaining .value").text
                assert shown == format_number(pool.remaining)
                # A day of history: every pool has its sparkline.
                spark = row.find_element(By.CSS_SELECTOR, "svg.spark")
                assert "over the last 23." in spark.get_attribute("aria-label")
        assert groups[0].find_element(By.CSS_SELECTOR, ".badge").text == "Failing: auth"
        assert console_errors(driver) == []
        shot = full_page_screenshot(driver, ARTIFACTS / "status-page-demo.png", scale=2)
        full_page_screenshot(driver, ARTIFACTS / "status-page-demo-dark.png", scale=2, dark=True)
    if os.environ.get("UPDATE_SCREENSHOT", "") not in ("", "0"):
        README_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, README_IMAGE)
