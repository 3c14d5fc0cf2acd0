"""Helpers for the browser tests: headless Chromium through selenium and the Debian chromedriver
(never a downloaded browser).

Without chromium or chromedriver the browser tests skip; under REQUIRE_INTEGRATION=1 they fail.
Screenshots go to tests/artifacts/ (gitignored; CI can keep them as artifacts).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from . import ROOT, require_tool

ARTIFACTS = ROOT / "tests" / "artifacts"
WINDOW = (1480, 900)

# The flags that keep Chromium off the network and working as root in a container.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)

Driver = Any  # selenium.webdriver.Chrome (selenium ships no complete type information)


def chrome(javascript: bool, profile: str) -> Driver:
    chromium = require_tool("chromium")
    chromedriver = require_tool("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        opts.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    return webdriver.Chrome(options=opts, service=Service(chromedriver))


def console_errors(driver: Driver) -> list[dict[str, Any]]:
    """Browser console entries at warning level or worse since the last call."""
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def full_page_screenshot(
    driver: Driver, path: Path, *, width: int = WINDOW[0], scale: float = 1.0, dark: bool = False
) -> Path:
    """A PNG of the whole page (not only the viewport), in light or dark colour scheme."""
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]},
    )
    height = int(
        driver.execute_cdp_cmd(
            "Runtime.evaluate",
            {
                "expression": "Math.ceil(document.body.getBoundingClientRect().bottom)",
                "returnByValue": True,
            },
        )["result"]["value"]
    )
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": False},
    )
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
