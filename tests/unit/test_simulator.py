"""The simulated provider APIs: shapes, auth, failure injection, malformed bodies, time."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from exporter.simulator import (
    DEMO_ACCOUNTS,
    MALFORMED_MODES,
    SIMULATED_APIS,
    Simulator,
    SimulatorThread,
)
from support.leaks import find_secrets

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp()
TS_KEY = "ts-key"
WS_KEY = "ws-key"
DAY_TO_CYCLE_END = datetime(2026, 12, 1, tzinfo=UTC).timestamp() - T0
FE_KEY = "fe-key"
BALANCE = "/v0/billing/credit-balance"
CONSUMPTION = "/v0/teams/credits_consumption"


@dataclass
class Resp:
    status: int
    headers: CIMultiDictProxy[str]
    content_type: str
    raw: bytes

    async def text(self) -> str:
        return self.raw.decode()


async def _resp(resp: aiohttp.ClientResponse) -> Resp:
    raw = await resp.read()
    return Resp(resp.status, resp.headers, resp.content_type, raw)


class Env:
    def __init__(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.http = http

    async def ts(self, path: str = BALANCE, key: str | None = TS_KEY, **params: str) -> Resp:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        url = self.sim.base_url("theirstack") + path
        async with self.http.get(url, headers=headers, params=params) as resp:
            return await _resp(resp)

    async def ws(self, path: str = "/GetTeamCreditBalance", **body: Any) -> Resp:
        body.setdefault("service_key", WS_KEY)
        async with self.http.post(self.sim.base_url("windsurf") + path, json=body) as resp:
            return await _resp(resp)

    async def fe(self, authorization: str | None = f"Bearer {FE_KEY}") -> Resp:
        headers = {"Authorization": authorization} if authorization is not None else {}
        url = self.sim.base_url("fullenrich") + "/account/credits"
        async with self.http.get(url, headers=headers) as resp:
            return await _resp(resp)


async def body(resp: Resp) -> Any:
    return json.loads(resp.raw)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    sim = Simulator(clock=lambda: T0)
    sim.add_account(
        "theirstack",
        TS_KEY,
        api_credits=1000,
        ui_credits=50,
        used_api_credits=200,
        used_ui_credits=5,
    )
    sim.add_account(
        "windsurf",
        WS_KEY,
        prompt_credits_per_seat=500,
        num_seats=4,
        add_on_credits_available=1000,
        add_on_credits_used=100,
        billing_cycle_start="2026-11-01T00:00:00Z",
        billing_cycle_end="2026-12-01T00:00:00Z",
        users=[
            {"name": "Ada", "email": "ada@example.com", "promptCreditsUsed": 300, "activeDays": 5},
            {"name": "Bob", "email": "bob@example.com", "promptCreditsUsed": 100, "group": "ml"},
        ],
    )
    sim.add_account("fullenrich", FE_KEY, balance=1234.5)
    await sim.start()
    async with aiohttp.ClientSession() as http:
        yield Env(sim, http)
    await sim.stop()


# --------------------------------------------------------------------------- TheirStack


async def test_theirstack_balance_shape_and_rate_limit_headers(env: Env) -> None:
    resp = await env.ts()
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await body(resp) == {
        "ui_credits": 50,
        "used_ui_credits": 5,
        "api_credits": 1000,
        "used_api_credits": 200,
    }
    assert resp.headers["RateLimit-Policy"] == '"per-second";q=4;w=1'
    assert resp.headers["RateLimit"].startswith('"per-second";r=3;t=1;pk="')
    assert find_secrets(resp.headers["RateLimit"], [TS_KEY]) == []
    assert resp.headers["RateLimit-Limit"] == "4"
    assert resp.headers["RateLimit-Remaining"] == "3"
    assert resp.headers["RateLimit-Reset"] == "1"
    assert (await env.ts()).headers["RateLimit-Remaining"] == "2"


async def test_theirstack_earliest_expiration_present_only_when_set(env: Env) -> None:
    env.sim.update(TS_KEY, earliest_expiration="2026-12-10T00:00:00Z")
    assert (await body(await env.ts()))["earliest_expiration"] == "2026-12-10T00:00:00Z"
    env.sim.update(TS_KEY, earliest_expiration=None)
    assert "earliest_expiration" not in await body(await env.ts())


@pytest.mark.parametrize(
    ("key", "description"),
    [
        (None, "Missing Authorization header with a Bearer token"),
        ("nope", "Invalid API key"),
        (WS_KEY, "Invalid API key"),  # a key of another provider
        ("revoked", "This API key has been revoked"),
    ],
)
async def test_theirstack_auth_failures(env: Env, key: str | None, description: str) -> None:
    env.sim.add_account("theirstack", "revoked", revoked=True)
    for path in (BALANCE, CONSUMPTION):
        resp = await env.ts(path, key=key)
        assert resp.status == 401
        assert await body(resp) == {
            "request_id": None,
            "error": {
                "code": "E-001",
                "title": "Not allowed exception",
                "description": description,
            },
        }


async def test_theirstack_consumption_default_range(env: Env) -> None:
    env.sim.update(
        TS_KEY,
        consumption_days={"2026-11-20": {"api": 12, "ui": 3}, "2026-11-01": {"api": 7}},
    )
    rows = await body(await env.ts(CONSUMPTION))
    assert len(rows) == 30
    assert rows[0]["period_start"] == "2026-10-22T00:00:00Z"
    assert rows[-1] == {
        "period_start": "2026-11-20T00:00:00Z",
        "api_credits_consumed": 12,
        "ui_credits_consumed": 3,
    }
    starts = [r["period_start"] for r in rows]
    assert starts == sorted(starts)
    by_day = {r["period_start"][:10]: r for r in rows}
    assert by_day["2026-11-01"]["api_credits_consumed"] == 7
    assert by_day["2026-11-02"]["api_credits_consumed"] == 0  # zero days are listed
    assert sum(r["api_credits_consumed"] for r in rows) == 19


async def test_theirstack_consumption_range_and_timezones(env: Env) -> None:
    env.sim.update(TS_KEY, consumption_days={"2026-11-18": {"api": 5, "ui": 1}})
    rows = await body(
        await env.ts(
            CONSUMPTION,
            start_datetime="2026-11-17T00:00:00",
            end_datetime="2026-11-19T23:59:59",
            timezone="Europe/Madrid",
        )
    )
    assert [r["period_start"] for r in rows] == [
        "2026-11-17T00:00:00+01:00",
        "2026-11-18T00:00:00+01:00",
        "2026-11-19T00:00:00+01:00",
    ]
    assert [r["api_credits_consumed"] for r in rows] == [0, 5, 0]
    rows = await body(
        await env.ts(CONSUMPTION, start_datetime="2026-11-18T00:00:00", timezone="Asia/Kolkata")
    )
    assert rows[0]["period_start"] == "2026-11-18T00:00:00+05:30"
    assert rows[-1]["period_start"] == "2026-11-20T00:00:00+05:30"
    # Across a DST change the offset follows the day.
    rows = await body(
        await env.ts(
            CONSUMPTION,
            start_datetime="2026-10-24T00:00:00",
            end_datetime="2026-10-26T00:00:00",
            timezone="Europe/Madrid",
        )
    )
    assert [r["period_start"][-6:] for r in rows] == ["+02:00", "+02:00", "+01:00"]


@pytest.mark.parametrize(
    "params",
    [
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": "../../etc/passwd"},
        {"start_datetime": "yesterday"},
        {"start_datetime": "2026-11-20T00:00:00", "end_datetime": "2026-11-10T00:00:00"},
    ],
)
async def test_theirstack_consumption_invalid_params(env: Env, params: dict[str, str]) -> None:
    resp = await env.ts(CONSUMPTION, **params)
    assert resp.status == 422
    data = await body(resp)
    assert data["request_id"] is None
    assert data["error"]["title"]


async def test_theirstack_burn_over_advance(env: Env) -> None:
    env.sim.update(TS_KEY, burn_api_per_day=96, burn_ui_per_day=24)
    env.sim.advance(6 * 3600)  # a quarter of a day
    data = await body(await env.ts())
    assert data["api_credits"] == 1000 - 24
    assert data["used_api_credits"] == 200 + 24
    assert data["ui_credits"] == 50 - 6
    assert data["used_ui_credits"] == 5 + 6
    today = (await body(await env.ts(CONSUMPTION)))[-1]
    assert today == {
        "period_start": "2026-11-20T00:00:00Z",
        "api_credits_consumed": 24,
        "ui_credits_consumed": 6,
    }
    # Balances never go below zero.
    env.sim.advance(40 * 86400)
    data = await body(await env.ts())
    assert data["ui_credits"] == 0
    assert data["used_ui_credits"] == 55
    assert data["api_credits"] == 0


async def test_theirstack_burn_fractional_rate_settles_exactly(env: Env) -> None:
    env.sim.update(TS_KEY, burn_api_per_day=10)  # one credit every 2.4 hours
    for _ in range(10):
        env.sim.advance(8640)
        await env.ts()  # settling at arbitrary moments loses nothing
    assert (await body(await env.ts()))["api_credits"] == 990


async def test_theirstack_consumption_day_rollover(env: Env) -> None:
    env.sim.update(TS_KEY, burn_api_per_day=96, consumption_days={"2026-11-20": {"api": 4}})
    env.sim.advance(86400)  # 2026-11-21T10:00Z
    rows = await body(await env.ts(CONSUMPTION))
    assert rows[-1]["period_start"] == "2026-11-21T00:00:00Z"
    assert rows[0]["period_start"] == "2026-10-23T00:00:00Z"
    # 14 hours of the 20th (56) on top of the 4 set, then 10 hours of the 21st.
    assert [r["api_credits_consumed"] for r in rows[-2:]] == [60, 40]
    # Madrid days start at 23:00Z: 13 hours burnt on the 20th, 11 so far on the 21st.
    rows = await body(await env.ts(CONSUMPTION, timezone="Europe/Madrid"))
    assert [r["period_start"] for r in rows[-2:]] == [
        "2026-11-20T00:00:00+01:00",
        "2026-11-21T00:00:00+01:00",
    ]
    assert [r["api_credits_consumed"] for r in rows[-2:]] == [4 + 52, 44]


# --------------------------------------------------------------------------- Windsurf


async def test_windsurf_balance_shape(env: Env) -> None:
    resp = await env.ws()
    assert resp.status == 200
    assert await body(resp) == {
        "promptCreditsPerSeat": 500,
        "numSeats": 4,
        "addOnCreditsAvailable": 1000,
        "addOnCreditsUsed": 100,
        "billingCycleStart": "2026-11-01T00:00:00Z",
        "billingCycleEnd": "2026-12-01T00:00:00Z",
    }
    assert "RateLimit" not in resp.headers


async def test_windsurf_user_analytics_shape_and_group(env: Env) -> None:
    data = await body(await env.ws("/UserPageAnalytics"))
    assert data["billingCycleStart"] == "2026-11-01T00:00:00Z"
    assert data["billingCycleEnd"] == "2026-12-01T00:00:00Z"
    users = data["userTableStats"]
    assert [u["email"] for u in users] == ["ada@example.com", "bob@example.com"]
    assert {"name", "email", "activeDays", "promptCreditsUsed", "teamStatus"} <= set(users[0])
    assert [u["promptCreditsUsed"] for u in users] == [300, 100]
    grouped = await body(await env.ws("/UserPageAnalytics", group_name="ml"))
    assert [u["name"] for u in grouped["userTableStats"]] == ["Bob"]


async def test_windsurf_protobuf_json_shapes(env: Env) -> None:
    """Zero fields left out, counts as strings, the older analytics shape, and analytics lagging
    a cycle behind the balance after a reset: every shape the real API may serve."""
    env.sim.update(WS_KEY, add_on_credits_available=0, add_on_credits_used=0)
    assert await body(await env.ws()) == {
        "promptCreditsPerSeat": 500,
        "numSeats": 4,
        "billingCycleStart": "2026-11-01T00:00:00Z",
        "billingCycleEnd": "2026-12-01T00:00:00Z",
    }
    env.sim.update(WS_KEY, numbers_as_strings=True)
    data = await body(await env.ws())
    assert (data["promptCreditsPerSeat"], data["numSeats"]) == ("500", "4")
    users = (await body(await env.ws("/UserPageAnalytics")))["userTableStats"]
    assert [u["promptCreditsUsed"] for u in users] == ["300", "100"]
    assert "activeDays" not in users[1]  # 0: left out
    env.sim.update(WS_KEY, numbers_as_strings=False, analytics_shape="legacy")
    legacy = await body(await env.ws("/UserPageAnalytics"))
    assert set(legacy) == {"userTableStats"}
    assert all("promptCreditsUsed" not in u for u in legacy["userTableStats"])
    env.sim.update(WS_KEY, analytics_shape="current", analytics_lag_seconds=3 * 3600)
    env.sim.advance(DAY_TO_CYCLE_END + 3600)  # an hour into the next cycle
    assert (await body(await env.ws()))["billingCycleStart"] == "2026-12-01T00:00:00Z"
    lagging = await body(await env.ws("/UserPageAnalytics"))
    assert lagging["billingCycleStart"] == "2026-11-01T00:00:00Z"
    assert [u["promptCreditsUsed"] for u in lagging["userTableStats"]] == [300, 100]
    env.sim.advance(2 * 3600)
    caught_up = await body(await env.ws("/UserPageAnalytics"))
    assert caught_up["billingCycleStart"] == "2026-12-01T00:00:00Z"
    assert [u.get("promptCreditsUsed") for u in caught_up["userTableStats"]] == [None, None]
    with pytest.raises(ValueError, match="analytics_shape"):
        env.sim.update(WS_KEY, analytics_shape="newest")


async def test_windsurf_auth_and_permissions(env: Env) -> None:
    for key in ("unknown", "", TS_KEY):
        resp = await env.ws(service_key=key)
        assert resp.status == 401
        assert await body(resp) == {"error": "Invalid service key"}
    async with env.http.post(env.sim.base_url("windsurf") + "/GetTeamCreditBalance") as bare:
        assert bare.status == 401  # no body at all
    env.sim.update(WS_KEY, permissions=["Billing Read"])
    assert (await env.ws()).status == 200
    resp = await env.ws("/UserPageAnalytics")
    assert resp.status == 403
    assert await body(resp) == {"error": "Insufficient permissions"}
    env.sim.update(WS_KEY, permissions=["Teams Read-Only"])
    assert (await env.ws()).status == 403
    assert (await env.ws("/UserPageAnalytics")).status == 200


async def test_windsurf_burn_and_cycle_rollover(env: Env) -> None:
    env.sim.update(WS_KEY, burn_prompt_per_day=100, burn_add_on_per_day=10)
    env.sim.advance(86400)
    users = (await body(await env.ws("/UserPageAnalytics")))["userTableStats"]
    assert sum(u["promptCreditsUsed"] for u in users) == 400 + 100
    assert (await body(await env.ws()))["addOnCreditsUsed"] == 110
    # Past the seats' pool (2000), prompt usage draws add-on credits.
    env.sim.update(WS_KEY, burn_add_on_per_day=0, burn_prompt_per_day=1600)
    env.sim.advance(86400)
    users = (await body(await env.ws("/UserPageAnalytics")))["userTableStats"]
    assert sum(u["promptCreditsUsed"] for u in users) == 2000
    assert (await body(await env.ws()))["addOnCreditsUsed"] == 110 + 100
    # The cycle ends on 2026-12-01: used counters reset, the add-on allotment shrinks.
    env.sim.update(WS_KEY, burn_prompt_per_day=0)
    env.sim.advance(10 * 86400)
    data = await body(await env.ws())
    assert data["billingCycleStart"] == "2026-12-01T00:00:00Z"
    assert data["billingCycleEnd"] == "2027-01-01T00:00:00Z"
    assert "addOnCreditsUsed" not in data  # 0: protobuf JSON leaves it out
    assert data["addOnCreditsAvailable"] == 1000 - 210
    users = (await body(await env.ws("/UserPageAnalytics")))["userTableStats"]
    assert [u.get("promptCreditsUsed") for u in users] == [None, None]


def cascade_query(**extra: Any) -> dict[str, Any]:
    return {
        "start_timestamp": "2026-11-01T00:00:00Z",
        "end_timestamp": "2026-11-30T23:59:59Z",
        "query_requests": [{"cascade_runs": {}}],
        **extra,
    }


def runs_by_day(data: Any) -> dict[str, int]:
    """Hundredths of a credit per ``day`` of a CascadeAnalytics answer."""
    out: dict[str, int] = {}
    for row in data["queryResults"][0]["cascadeRuns"].get("cascadeRuns", []):
        out[row["day"]] = out.get(row["day"], 0) + int(row.get("promptsUsed", "0"))
    return out


async def test_windsurf_cascade_runs_shape(env: Env) -> None:
    """Rows per day, model, mode and conversation, int64s as strings, a free model's row
    without promptsUsed, no rows for a day without use, and one result per query."""
    env.sim.update(WS_KEY, cascade_days={"2026-11-18": 12.34, "2026-11-19": 0})
    data = await body(await env.ws("/CascadeAnalytics", **cascade_query()))
    rows = data["queryResults"][0]["cascadeRuns"]["cascadeRuns"]
    assert [r["day"] for r in rows] == ["2026-11-18T00:00:00Z"] * 3
    assert [list(r) for r in rows[:2]] == [
        ["day", "model", "mode", "messagesSent", "cascadeId", "promptsUsed"]
    ] * 2
    assert [r.get("promptsUsed") for r in rows] == ["823", "411", None]
    assert all(isinstance(r["messagesSent"], str) for r in rows)
    assert len({r["cascadeId"] for r in rows}) == 1
    assert {r["mode"] for r in rows} <= {
        "CONVERSATIONAL_PLANNER_MODE_DEFAULT",
        "CONVERSATIONAL_PLANNER_MODE_READ_ONLY",
        "CONVERSATIONAL_PLANNER_MODE_NO_TOOL",
    }
    env.sim.update(WS_KEY, cascade_day_form="date")
    query = cascade_query(query_requests=[{"cascade_lines": {}}, {"cascade_runs": {}}])
    data = await body(await env.ws("/CascadeAnalytics", **query))
    assert data["queryResults"][0] == {"cascadeLines": {}}
    assert runs_by_day({"queryResults": data["queryResults"][1:]}) == {"2026-11-18": 1234}
    # Out of the asked range: no rows, the result still there (an empty message).
    data = await body(await env.ws("/CascadeAnalytics", **cascade_query(end_timestamp=None)))
    assert runs_by_day(data) == {"2026-11-18": 1234}
    later = cascade_query(start_timestamp="2026-11-19T00:00:00Z")
    assert await body(await env.ws("/CascadeAnalytics", **later)) == {
        "queryResults": [{"cascadeRuns": {}}]
    }
    assert env.sim.accounts()[WS_KEY]["cascade_days"] == {"2026-11-18": 12.34}


async def test_windsurf_cascade_follows_the_burn_and_lags(env: Env) -> None:
    """Every credit burnt (prompt or add-on) is in the consumption history, by UTC day; with
    a lag, the latest buckets are reported later."""
    env.sim.update(WS_KEY, burn_prompt_per_day=96, burn_add_on_per_day=24)
    env.sim.advance(14 * 3600)  # to 2026-11-21T00:00Z
    usage = await body(await env.ws("/UserPageAnalytics"))
    used = sum(u["promptCreditsUsed"] for u in usage["userTableStats"]) - 400
    add_on = (await body(await env.ws()))["addOnCreditsUsed"] - 100
    data = await body(await env.ws("/CascadeAnalytics", **cascade_query()))
    assert runs_by_day(data) == {"2026-11-20T00:00:00Z": 100 * (used + add_on)}
    assert used + add_on == (96 + 24) * 14 // 24
    env.sim.advance(6 * 3600)
    env.sim.update(WS_KEY, cascade_lag_seconds=3 * 3600)
    lagging = runs_by_day(await body(await env.ws("/CascadeAnalytics", **cascade_query())))
    assert lagging == {"2026-11-20T00:00:00Z": 7000, "2026-11-21T00:00:00Z": 1500}
    env.sim.update(WS_KEY, cascade_lag_seconds=0)
    live = runs_by_day(await body(await env.ws("/CascadeAnalytics", **cascade_query())))
    assert live == {"2026-11-20T00:00:00Z": 7000, "2026-11-21T00:00:00Z": 3000}


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"query_requests": []}, "query_requests is required"),
        ({"query_requests": [{"cascade_everything": {}}]}, "one known data source"),
        ({"start_timestamp": "last week"}, "invalid start_timestamp"),
        ({"end_timestamp": 1790000000}, "invalid end_timestamp"),
        ({"start_timestamp": "2026-12-01T00:00:00Z"}, "must not be after end_timestamp"),
    ],
)
async def test_windsurf_cascade_bad_requests(env: Env, query: Any, error: str) -> None:
    resp = await env.ws("/CascadeAnalytics", **cascade_query(**query))
    assert resp.status == 400
    assert error in (await body(resp))["error"]


async def test_windsurf_cascade_needs_teams_read_only(env: Env) -> None:
    env.sim.update(WS_KEY, permissions=["Billing Read"])
    resp = await env.ws("/CascadeAnalytics", **cascade_query())
    assert (resp.status, await body(resp)) == (403, {"error": "Insufficient permissions"})


# --------------------------------------------------------------------------- FullEnrich


async def test_fullenrich_balance_and_burn(env: Env) -> None:
    resp = await env.fe()
    assert resp.status == 200
    assert await body(resp) == {"balance": 1234.5}
    env.sim.update(FE_KEY, burn_per_day=10)
    env.sim.advance(3600 * 6)
    assert await body(await env.fe()) == {"balance": 1232.0}
    env.sim.advance(3600)
    assert (await body(await env.fe()))["balance"] == pytest.approx(1231.58, abs=0.01)


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, {"code": "error.authorization.not_set", "message": "Authorization headers not set"}),
        (
            f"Token {FE_KEY}",
            {
                "code": "error.authorization.not_bearer",
                "message": "Authorization headers do not have prefix 'bearer'",
            },
        ),
        ("Bearer nope", {"code": "error.api.key", "message": "Unknown api key"}),
        ("Bearer revoked", {"code": "error.api.key", "message": "Unknown api key"}),
    ],
)
async def test_fullenrich_auth_failures(
    env: Env, authorization: str | None, expected: dict[str, str]
) -> None:
    env.sim.add_account("fullenrich", "revoked", balance=5, revoked=True)
    resp = await env.fe(authorization)
    assert resp.status == 401
    assert await body(resp) == expected


# --------------------------------------------------------------------------- failure injection


async def test_fail_with_documented_default_bodies(env: Env) -> None:
    env.sim.update(TS_KEY, fail={"status": 402})
    resp = await env.ts()
    assert resp.status == 402
    assert (await body(resp))["error"]["title"] == "Payment required"
    env.sim.update(FE_KEY, fail={"status": 429, "retry_after": "7"})
    resp = await env.fe()
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "7"
    assert await body(resp) == {
        "code": "error.rate.limit",
        "message": "Too many requests. Try again in 1m",
    }
    env.sim.update(WS_KEY, fail={"status": 503})
    assert await body(await env.ws()) == {"error": "Service unavailable"}
    env.sim.update(TS_KEY, fail=None)
    assert (await env.ts()).status == 200


async def test_fail_with_custom_bodies(env: Env) -> None:
    env.sim.update(TS_KEY, fail={"status": 502, "body": "<h1>bad gateway</h1>"})
    resp = await env.ts()
    assert (resp.status, resp.content_type) == (502, "text/plain")
    assert await resp.text() == "<h1>bad gateway</h1>"
    html = "text/html; charset=utf-8"
    env.sim.update(TS_KEY, fail={"status": 500, "body": "<p>oops</p>", "content_type": html})
    assert (await env.ts()).headers["Content-Type"] == html
    env.sim.update(TS_KEY, fail={"status": 400, "body": {"detail": "x"}})
    resp = await env.ts()
    assert resp.status == 400
    assert await body(resp) == {"detail": "x"}
    # Auth is checked before injected failures.
    assert (await env.ts(key="nope")).status == 401


async def test_fail_with_headers_redirects(env: Env) -> None:
    target = "http://127.0.0.1:9/elsewhere"
    env.sim.update(FE_KEY, fail={"status": 307, "headers": {"Location": target}})
    url = env.sim.base_url("fullenrich") + "/account/credits"
    headers = {"Authorization": f"Bearer {FE_KEY}"}
    async with env.http.get(url, headers=headers, allow_redirects=False) as resp:
        assert (resp.status, resp.headers["Location"]) == (307, target)
    with pytest.raises(ValueError, match="headers"):
        env.sim.update(FE_KEY, fail={"status": 307, "headers": ["Location"]})


async def test_paths_fail_hits_one_endpoint_only(env: Env) -> None:
    env.sim.update(TS_KEY, paths_fail={"credits_consumption": {"status": 500}})
    assert (await env.ts()).status == 200
    resp = await env.ts(CONSUMPTION)
    assert resp.status == 500
    assert (await body(resp))["error"]["title"] == "Internal server error"
    env.sim.update(WS_KEY, paths_fail={"/UserPageAnalytics": {"status": 429, "retry_after": "30"}})
    assert (await env.ws()).status == 200
    resp = await env.ws("/UserPageAnalytics")
    assert (resp.status, resp.headers["Retry-After"]) == (429, "30")


async def test_rate_limit_per_second(env: Env) -> None:
    env.sim.update(FE_KEY, rate_limit_per_second=2)
    assert [(await env.fe()).status for _ in range(2)] == [200, 200]
    resp = await env.fe()
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "1"
    assert (await body(resp))["code"] == "error.rate.limit"
    env.sim.advance(1.5)
    assert (await env.fe()).status == 200


async def test_rate_limit_headers_theirstack(env: Env) -> None:
    env.sim.update(TS_KEY, rate_limit_per_second=10, rate_limit_per_minute=3)
    remaining = []
    for _ in range(3):
        resp = await env.ts()
        remaining.append(resp.headers["RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    assert resp.headers["RateLimit-Policy"] == '"per-second";q=10;w=1, "per-minute";q=3;w=60'
    resp = await env.ts()
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "60"
    assert resp.headers["RateLimit-Remaining"] == "0"
    env.sim.advance(60)
    assert (await env.ts()).status == 200


async def test_latency(env: Env) -> None:
    env.sim.update(FE_KEY, latency=0.2)
    started = time.monotonic()
    assert (await env.fe()).status == 200
    assert time.monotonic() - started >= 0.2


# --------------------------------------------------------------------------- malformed modes


async def test_malformed_html_invalid_json_huge(env: Env) -> None:
    env.sim.update(TS_KEY, malformed="html")
    resp = await env.ts()
    assert (resp.status, resp.content_type) == (200, "text/html")
    assert resp.raw.startswith(b"<!DOCTYPE html>")
    env.sim.update(TS_KEY, malformed="invalid_json")
    resp = await env.ts()
    assert (resp.status, resp.content_type) == (200, "application/json")
    with pytest.raises(ValueError):
        json.loads(resp.raw)
    env.sim.update(TS_KEY, malformed="huge_body")
    resp = await env.ts()
    assert len(resp.raw) > 1024 * 1024
    assert json.loads(resp.raw)["api_credits"] == 1000


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("wrong_shape", [{"balance": 1234.5}]),
        ("missing_field", {}),
        ("string_number", {"balance": "1234.5"}),
        ("null_field", {"balance": None}),
        ("negative", {"balance": -1234.5}),
        ("absurd", {"balance": 10**18}),
    ],
)
async def test_malformed_shapes_fullenrich(env: Env, mode: str, expected: Any) -> None:
    env.sim.update(FE_KEY, malformed=mode)
    resp = await env.fe()
    assert resp.status == 200
    assert await body(resp) == expected


async def test_malformed_shapes_other_endpoints(env: Env) -> None:
    env.sim.update(TS_KEY, malformed="missing_field")
    data = await body(await env.ts())
    assert "api_credits" not in data
    assert data["ui_credits"] == 50
    rows = await body(await env.ts(CONSUMPTION))
    assert all("api_credits_consumed" not in r for r in rows)
    env.sim.update(TS_KEY, malformed="wrong_shape")
    assert isinstance(await body(await env.ts(CONSUMPTION)), dict)
    env.sim.update(TS_KEY, malformed="string_number")
    assert (await body(await env.ts()))["used_api_credits"] == "200"
    env.sim.update(WS_KEY, malformed="null_field")
    assert (await body(await env.ws("/UserPageAnalytics")))["userTableStats"] is None
    env.sim.update(WS_KEY, malformed="negative")
    users = (await body(await env.ws("/UserPageAnalytics")))["userTableStats"]
    assert [u["promptCreditsUsed"] for u in users] == [-300, -100]
    # Error answers are never malformed: the documented body stays intact.
    assert await body(await env.ws(service_key="nope")) == {"error": "Invalid service key"}


async def test_malformed_trickle(env: Env) -> None:
    env.sim.update(FE_KEY, malformed="trickle")
    url = env.sim.base_url("fullenrich") + "/account/credits"
    headers = {"Authorization": f"Bearer {FE_KEY}"}
    timeout = aiohttp.ClientTimeout(sock_read=0.3)
    async with env.http.get(url, headers=headers, timeout=timeout) as resp:
        assert resp.status == 200  # headers arrive at once...
        assert await resp.content.read(1) == b" "
        with pytest.raises(asyncio.TimeoutError):  # ...the body does not
            await resp.read()
    # A trickle in flight does not hold up stop().
    pending = asyncio.ensure_future(env.http.get(url, headers=headers))
    await asyncio.sleep(0.2)
    # A deadline far below the trickle's minute: stop ends it instead of waiting for it.
    async with asyncio.timeout(20):
        await env.sim.stop()
    resp = await pending
    resp.release()


async def test_malformed_reset(env: Env) -> None:
    env.sim.update(TS_KEY, malformed="reset")
    url = env.sim.base_url("theirstack") + BALANCE
    async with env.http.get(url, headers={"Authorization": f"Bearer {TS_KEY}"}) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    env.sim.update(TS_KEY, malformed=None)
    assert (await env.ts()).status == 200


def test_malformed_modes_listed() -> None:
    assert set(MALFORMED_MODES) == {
        "html",
        "invalid_json",
        "wrong_shape",
        "missing_field",
        "string_number",
        "null_field",
        "negative",
        "absurd",
        "huge_body",
        "trickle",
        "reset",
    }


# --------------------------------------------------------------------------- state API


def test_state_api_validation() -> None:
    sim = Simulator(clock=lambda: T0)
    with pytest.raises(ValueError, match="unknown provider"):
        sim.add_account("nope", "k")
    with pytest.raises(ValueError, match="unknown field"):
        sim.add_account("theirstack", "k", api_credit=1)
    with pytest.raises(ValueError, match="malformed"):
        sim.add_account("theirstack", "k", malformed="garbled")
    with pytest.raises(ValueError, match="api_credits"):
        sim.add_account("theirstack", "k", api_credits="many")
    with pytest.raises(KeyError):
        sim.update("k", api_credits=1)
    with pytest.raises(ValueError):
        sim.advance(-1)
    sim.add_account("theirstack", "k", api_credits=1)
    with pytest.raises(ValueError):
        sim.update("k", api_credits=2, fail={"status": "bad"})
    assert sim.accounts()["k"]["api_credits"] == 1  # a failed update changes nothing
    sim.add_account("theirstack", "k")  # replaces
    assert sim.accounts()["k"]["api_credits"] == 0
    with pytest.raises(RuntimeError):
        sim.base_url("theirstack")


async def test_calls_counting(env: Env) -> None:
    await env.ts()
    await env.ts(CONSUMPTION)
    await env.ts(key=None)
    await env.ws("/UserPageAnalytics")
    await env.fe()
    await env.fe("Bearer other")
    async with env.http.get(env.sim.url + "/_sim/calls") as resp:
        summary = await resp.json()
    assert env.sim.calls() == 6
    assert env.sim.calls(TS_KEY) == 2
    assert env.sim.calls(TS_KEY, "credit-balance") == 1
    assert env.sim.calls(path="/theirstack/v0/billing/credit-balance") == 2
    assert env.sim.calls("") == 1
    assert env.sim.calls(WS_KEY, "GetTeamCreditBalance") == 0
    assert env.sim.calls(path="/account/credits") == 2
    assert summary["total"] == 6  # control calls are not counted
    assert summary["by_key"][FE_KEY] == 1
    assert summary["by_path"]["/windsurf/api/v1/UserPageAnalytics"] == 1


async def test_control_http_api(env: Env) -> None:
    url = env.sim.url + "/_sim"
    async with env.http.put(
        url + "/accounts/new-key", json={"provider": "fullenrich", "balance": 10.25}
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["balance"] == 10.25
    assert await body(await env.fe("Bearer new-key")) == {"balance": 10.25}
    async with env.http.patch(url + "/accounts/new-key", json={"fail": {"status": 500}}) as resp:
        assert resp.status == 200
    assert (await env.fe("Bearer new-key")).status == 500
    async with env.http.patch(url + "/accounts/ghost", json={"balance": 1}) as resp:
        assert resp.status == 404
    async with env.http.patch(url + "/accounts/new-key", json={"balanse": 1}) as resp:
        assert resp.status == 400
        assert "balanse" in (await resp.json())["error"]
    async with env.http.put(url + "/accounts/x", json={"balance": 1}) as resp:
        assert resp.status == 400
    async with env.http.put(url + "/accounts/x", data=b"[1,") as resp:
        assert resp.status == 400
    async with env.http.get(url + "/accounts") as resp:
        state = await resp.json()
    assert set(state["accounts"]) == {TS_KEY, WS_KEY, FE_KEY, "new-key"}
    assert state["accounts"][TS_KEY]["provider"] == "theirstack"
    assert state["now"] == T0
    async with env.http.post(url + "/clock", json={"advance_seconds": 86400}) as resp:
        assert (await resp.json())["now"] == T0 + 86400
    assert env.sim.now() == T0 + 86400
    async with env.http.post(url + "/clock", json={"advance_seconds": -5}) as resp:
        assert resp.status == 400
    async with env.http.delete(url + "/accounts/new-key") as resp:
        assert resp.status == 204
    assert (await env.fe("Bearer new-key")).status == 401
    assert env.sim.calls() > 0
    async with env.http.post(url + "/reset-calls") as resp:
        assert (await resp.json())["total"] == 0
    assert env.sim.calls() == 0


async def test_control_api_sets_consumption_history(env: Env) -> None:
    url = env.sim.url + f"/_sim/accounts/{TS_KEY}"
    patch = {"consumption_days": {"2026-11-19": {"api": 9, "ui": 1}}}
    async with env.http.patch(url, json=patch) as resp:
        assert (await resp.json())["consumption_days"] == {"2026-11-19": {"api": 9, "ui": 1}}
    rows = await body(await env.ts(CONSUMPTION))
    assert rows[-2]["api_credits_consumed"] == 9


# --------------------------------------------------------------------------- demo and threads


async def test_seed_demo() -> None:
    sim = Simulator(seed_demo=True, clock=lambda: T0)
    state = sim.accounts()
    assert set(state) == {a["api_key"] for a in DEMO_ACCOUNTS}
    assert {a["name"]: a["provider"] for a in DEMO_ACCOUNTS} == {
        "growth": "theirstack",
        "research": "theirstack",
        "engineering": "windsurf",
        "design": "windsurf",
        "sales": "fullenrich",
        "search": "serpapi",
        "voip": "telnyx",
    }
    for account in DEMO_ACCOUNTS:
        assert state[account["api_key"]]["provider"] == account["provider"]
        assert "base_url" not in account
    assert next(a for a in DEMO_ACCOUNTS if a["name"] == "engineering")["prompt_usage"] is True
    research = state["demo-theirstack-research"]
    expiry = datetime.fromisoformat(research["earliest_expiration"]).timestamp()
    assert 19 * 86400 <= expiry - T0 <= 21 * 86400
    assert len(research["consumption_days"]) >= 28
    sales = state["demo-fullenrich-sales"]["balance"]
    assert sales != int(sales)
    assert state["demo-windsurf-engineering"]["users"]
    sim.advance(3600)
    later = sim.accounts()
    assert (
        later["demo-theirstack-growth"]["api_credits"]
        < state["demo-theirstack-growth"]["api_credits"]
    )
    assert later["demo-fullenrich-sales"]["balance"] < sales
    # The two preset accounts burn too: searches from the plan, dollars from the balance.
    search, voip = state["demo-serpapi-search"], state["demo-telnyx-voip"]
    assert later["demo-serpapi-search"]["this_month_usage"] > search["this_month_usage"]
    assert later["demo-telnyx-voip"]["balance"] < voip["balance"]
    assert (
        later["demo-windsurf-engineering"]["add_on_credits_used"]
        > state["demo-windsurf-engineering"]["add_on_credits_used"]
    )


def test_simulator_thread_from_sync_code() -> None:
    thread = SimulatorThread(Simulator(clock=lambda: T0))
    url = thread.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        thread.add_account("fullenrich", FE_KEY, balance=99.5, burn_per_day=24)
        request = urllib.request.Request(
            thread.base_url("fullenrich") + "/account/credits",
            headers={"Authorization": f"Bearer {FE_KEY}"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert json.loads(resp.read()) == {"balance": 99.5}
        thread.advance(3600)
        thread.update(FE_KEY, latency=0)
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert json.loads(resp.read()) == {"balance": 98.5}
        thread.update(FE_KEY, fail={"status": 503, "retry_after": "2"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code == 503
        assert info.value.headers["Retry-After"] == "2"
        info.value.close()
        assert thread.calls(FE_KEY) == 3
        assert thread.base_url("windsurf") == url + "/windsurf/api/v1"
    finally:
        thread.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/_sim/calls", timeout=2)


def test_simulator_thread_reports_a_failed_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        thread = SimulatorThread(port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="failed to start") as info:
            thread.start()
        assert isinstance(info.value.__cause__, OSError)
        thread.stop()  # harmless


def test_base_urls_cover_every_provider() -> None:
    with SimulatorThread() as thread:
        for name, api in SIMULATED_APIS.items():
            assert thread.base_url(name) == thread.simulator.url + api.mount


def test_main_standalone_demo() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter.simulator", "--listen", "127.0.0.1:0", "--demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(
            url + "/theirstack" + BALANCE,
            headers={"Authorization": "Bearer demo-theirstack-growth"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert json.loads(resp.read())["api_credits"] > 0
        with urllib.request.urlopen(url + "/_sim/accounts", timeout=5) as resp:
            assert "demo-windsurf-engineering" in json.loads(resp.read())["accounts"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        proc.stdout.close()


def test_main_rejects_bad_listen() -> None:
    from exporter.simulator import main

    with pytest.raises(SystemExit) as info:
        main(["--listen", "nowhere"])
    assert info.value.code == 2
