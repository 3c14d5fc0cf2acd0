"""An http_json API whose ``for_each`` names change from one answer to the next, against a real
exporter: only the pools of the latest answer have series, a status page entry and a history;
a pool that comes back starts a new history instead of finding the old one (histories of names
no longer reported are dropped: kept, they would grow without bound)."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from support import ExporterProcess, http_get, sample_values, wait_for
from support.servers import AppThread

KEY = "sk_changing_pools_0123456789abc"


class Rotating(AppThread):
    """Answers wallet ``w<n % 2>`` and a fresh ``x<n>`` on the n-th call (and the same pool
    ``steady`` every time)."""

    def __init__(self) -> None:
        self.calls = 0
        app = web.Application()
        app.router.add_get("/wallets", self.answer)
        super().__init__(app)

    async def answer(self, request: web.Request) -> web.Response:
        n = self.calls
        self.calls += 1
        items = [
            {"kind": f"w{n % 2}", "left": n},
            {"kind": f"x{n}", "left": n},
            {"kind": "steady", "left": 7},
        ]
        return web.json_response({"items": items})


def test_only_the_pools_reported_now_are_kept(tmp_path: Path) -> None:
    upstream = Rotating()
    upstream.start()
    config = {
        "defaults": {"interval": "200ms", "timeout": "2s"},
        "accounts": [
            {
                "name": "rotating",
                "provider": "http_json",
                "provider_name": "rotating",
                "api_key": KEY,
                "base_url": upstream.url,
                "request": {"url": "/wallets"},
                "auth": {"type": "bearer"},
                "pools": {"wallets": {"for_each": "items", "name": "kind", "remaining": "left"}},
            }
        ],
    }
    exp = ExporterProcess(config, tmp_path)
    try:
        exp.wait_ready()
        wait_for(lambda: upstream.calls >= 12)
        status = json.loads(http_get(f"{exp.url}/api/status?history=1")[1])
        samples = sample_values(exp.metrics())
    finally:
        exp.stop()
        upstream.stop()
    pools = status["accounts"][0]["pools"]
    remaining = {dict(labels)["pool"] for (name, labels) in samples if name == "credits_remaining"}
    for names in (set(pools), remaining):  # w0 or w1, the latest x<n>, steady
        assert len(names) == 3 and "steady" in names, names
        assert {n[0] for n in names} == {"s", "w", "x"}, names
    for name, pool in pools.items():
        if name == "steady":
            assert len(pool["history"]) >= 2, pool  # reported every time: its history grows
        else:
            # w0 and w1 alternate: each comes back after one answer without it, with a new
            # history of its latest point only.
            assert len(pool["history"]) == 1, (name, pool)
