"""The ``browser`` fixture: headless Chromium drivers (see support.browser)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator

import pytest

from support import require_tool
from support.browser import Driver, chrome


@pytest.fixture(scope="module")
def browser() -> Iterator[Callable[..., Driver]]:
    """Factory: ``browser(javascript=True)`` -> a Chrome driver, quit at the module's end.
    Skips (or fails under REQUIRE_INTEGRATION=1) at once without chromium or chromedriver."""
    require_tool("chromium")
    require_tool("chromedriver")
    drivers: list[Driver] = []
    profiles: list[str] = []

    def make(javascript: bool = True) -> Driver:
        profile = tempfile.mkdtemp(prefix="chromium-profile-")
        profiles.append(profile)
        driver = chrome(javascript, profile)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.quit()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)
