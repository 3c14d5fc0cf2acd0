"""The simulated APIs of the http_json presets: documented shapes, auth, errors, misbehaviour,
and the exporter's own presets reading them over loopback."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from exporter.accounts import AccountBase
from exporter.config import parse_config
from exporter.http import AccountClient
from exporter.model import PollError, PoolValues, Reason
from exporter.providers import create_provider
from exporter.simulator import Simulator
from support import account_client

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp()
SID = "AC11111111111111111111111111111111"


class Env:
    def __init__(self, sim: Simulator, http: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.http = http

    async def get(
        self,
        provider: str,
        path: str,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        url = self.sim.base_url(provider) + path
        async with self.http.get(url, headers=headers or {}, params=params) as resp:
            raw = await resp.read()
            return resp.status, json.loads(raw)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    sim = Simulator(clock=lambda: T0)
    sim.add_account("openrouter", "or-key", total_credits=100.5, total_usage=25.75)
    sim.add_account(
        "deepl",
        "dl-key",
        character_count=10,
        character_limit=1_000_000_000_000,
        start_time="2026-11-05T00:00:00Z",
        end_time="2026-12-05T00:00:00Z",
    )
    sim.add_account("deepl", "dl-key:fx", character_count=3, character_limit=500_000)
    sim.add_account(
        "elevenlabs", "el-key", character_count=5, next_character_count_reset_unix=1_800_000_000
    )
    sim.add_account(
        "hunter",
        "hu-key",
        # available includes 50 left of a pack: remaining is not available - used.
        credits={"used": 1, "available": 150, "remaining": 129},
        searches=None,
        verifications={"used": 2, "available": 50},
    )
    sim.add_account("twilio", "tw-token", account_sid=SID, balance=-1.005, currency="EUR")
    sim.add_account("deepseek", "ds-key", balances={"CNY": 110, "USD": 0}, granted={"CNY": 10})
    await sim.start()
    async with aiohttp.ClientSession() as http:
        yield Env(sim, http)
    await sim.stop()


async def test_documented_shapes(env: Env) -> None:
    assert await env.get("openrouter", "/credits", {"Authorization": "Bearer or-key"}) == (
        200,
        {"data": {"total_credits": 100.5, "total_usage": 25.75}},
    )
    status, body = await env.get("deepl", "/v2/usage", {"Authorization": "DeepL-Auth-Key dl-key"})
    assert status == 200
    assert body["character_count"] == 10 and body["character_limit"] == 1_000_000_000_000
    assert body["start_time"] == "2026-11-05T00:00:00Z"
    assert body["end_time"] == "2026-12-05T00:00:00Z"
    status, body = await env.get(
        "deepl-free", "/v2/usage", {"Authorization": "DeepL-Auth-Key dl-key:fx"}
    )
    assert (status, body) == (200, {"character_count": 3, "character_limit": 500_000})
    status, body = await env.get("elevenlabs", "/v1/user/subscription", {"xi-api-key": "el-key"})
    assert status == 200
    assert body["character_count"] == 5 and body["character_limit"] == 100_000
    assert body["next_character_count_reset_unix"] == 1_800_000_000
    status, body = await env.get("hunter", "/account", params={"api_key": "hu-key"})
    assert status == 200
    assert body["data"]["reset_date"] == "2026-12-01"  # the first of next month by default
    assert body["data"]["requests"] == {
        "verifications": {"used": 2, "available": 50},
        "credits": {"used": 1, "available": 150, "remaining": 129},
    }
    path = f"/2010-04-01/Accounts/{SID}/Balance.json"
    assert await env.get("twilio", path, basic(SID, "tw-token")) == (
        200,
        {"account_sid": SID, "balance": "-1.00", "currency": "EUR"},
    )
    status, body = await env.get("deepseek", "/user/balance", {"Authorization": "Bearer ds-key"})
    assert status == 200
    assert body == {
        "is_available": True,
        "balance_infos": [
            {
                "currency": "CNY",
                "total_balance": "110.00",
                "granted_balance": "10.00",
                "topped_up_balance": "100.00",
            },
            {
                "currency": "USD",
                "total_balance": "0.00",
                "granted_balance": "0.00",
                "topped_up_balance": "0.00",
            },
        ],
    }


async def test_auth_failures(env: Env) -> None:
    status, body = await env.get("openrouter", "/credits", {"Authorization": "Bearer nope"})
    assert status == 401 and body == {"error": {"code": 401, "message": "User not found."}}
    status, body = await env.get("deepl", "/v2/usage", {"Authorization": "Bearer dl-key"})
    assert status == 401 and body == {"message": "Authorization failure, check auth_key"}
    # Each DeepL host takes only its own plan's keys.
    status, body = await env.get(
        "deepl", "/v2/usage", {"Authorization": "DeepL-Auth-Key dl-key:fx"}
    )
    assert status == 403 and "api-free.deepl.com" in body["message"]
    status, body = await env.get(
        "deepl-free", "/v2/usage", {"Authorization": "DeepL-Auth-Key dl-key"}
    )
    assert status == 403 and "https://api.deepl.com" in body["message"]
    status, body = await env.get("elevenlabs", "/v1/user/subscription")
    assert status == 401 and body["detail"]["status"] == "invalid_api_key"
    status, body = await env.get("hunter", "/account", params={"api_key": "nope"})
    assert status == 401 and body["errors"][0]["id"] == "authentication_failed"
    path = f"/2010-04-01/Accounts/{SID}/Balance.json"
    status, body = await env.get("twilio", path, basic(SID, "wrong"))
    assert status == 401 and body["code"] == 20003
    status, body = await env.get("twilio", path, basic("ACother", "tw-token"))
    assert status == 401 and body["code"] == 20003
    status, body = await env.get(
        "twilio", "/2010-04-01/Accounts/ACother/Balance.json", basic(SID, "tw-token")
    )
    assert status == 404 and body["code"] == 20404
    status, body = await env.get("twilio", path, {"Authorization": "Basic !!!"})
    assert status == 401
    status, body = await env.get("deepseek", "/user/balance", {"Authorization": "Bearer x"})
    assert status == 401 and body["error"]["type"] == "authentication_error"
    # A key of one provider is unknown to another.
    status, _ = await env.get("deepseek", "/user/balance", {"Authorization": "Bearer or-key"})
    assert status == 401


async def test_misbehaviour_switches(env: Env) -> None:
    env.sim.update("ds-key", malformed="missing_field")
    status, body = await env.get("deepseek", "/user/balance", {"Authorization": "Bearer ds-key"})
    assert status == 200 and body == {"is_available": True}
    env.sim.update("ds-key", malformed="negative")
    status, body = await env.get("deepseek", "/user/balance", {"Authorization": "Bearer ds-key"})
    assert body["balance_infos"][0]["total_balance"] == "110.00"  # strings are left alone
    env.sim.update("or-key", malformed="string_number")
    status, body = await env.get("openrouter", "/credits", {"Authorization": "Bearer or-key"})
    assert body == {"data": {"total_credits": "100.5", "total_usage": "25.75"}}
    env.sim.update("hu-key", fail={"status": 429, "retry_after": "7"})
    status, body = await env.get("hunter", "/account", params={"api_key": "hu-key"})
    assert status == 429 and body["errors"][0]["id"] == "too_many_requests"
    with pytest.raises(ValueError, match=r"hunter\.credits"):
        env.sim.update("hu-key", credits={"used": 1, "left": 2})
    with pytest.raises(ValueError, match=r"deepseek\.balances"):
        env.sim.update("ds-key", balances=[1])


def accounts(sim: Simulator) -> list[Any]:
    url = sim.url
    return parse_config(
        f"""
accounts:
  - {{name: o, provider: openrouter, api_key: or-key, base_url: "{url}/openrouter/api/v1"}}
  - name: d
    provider: deepl
    api_key: "dl-key"
    base_url: "{url}/deepl"
    base_url_if_key_suffix: {{":fx": "{url}/deepl-free"}}
  - name: df
    provider: deepl
    api_key: "dl-key:fx"
    base_url: "{url}/deepl"
    base_url_if_key_suffix: {{":fx": "{url}/deepl-free"}}
  - {{name: e, provider: elevenlabs, api_key: el-key, base_url: "{url}/elevenlabs"}}
  - {{name: h, provider: hunter, api_key: hu-key, base_url: "{url}/hunter/v2"}}
  - name: t
    provider: twilio
    api_key: tw-token
    base_url: "{url}/twilio"
    params: {{account_sid: {SID}}}
  - {{name: s, provider: deepseek, api_key: ds-key, base_url: "{url}/deepseek"}}
""",
        env={},
    ).accounts


def by_name_of(sim: Simulator) -> dict[str, AccountBase]:
    return {a.name: a for a in accounts(sim)}


def client(env: Env, account: AccountBase) -> AccountClient:
    return account_client(env.http, secret=account.secret)


async def test_presets_read_the_simulator(env: Env) -> None:
    readings = {}
    for account in accounts(env.sim):
        readings[account.name] = await create_provider(account).fetch(
            "balance", client(env, account)
        )
    assert readings["o"].pools == {"credits": PoolValues(remaining=74.75, used=25.75, limit=100.5)}
    assert readings["d"].pools == {"characters": PoolValues(used=10)}
    assert readings["d"].cycle_end_timestamp == datetime(2026, 12, 5, tzinfo=UTC).timestamp()
    assert readings["df"].pools == {
        "characters": PoolValues(remaining=499_997, used=3, limit=500_000)
    }
    assert readings["e"].pools == {
        "characters": PoolValues(remaining=99_995, used=5, limit=100_000)
    }
    assert readings["e"].cycle_end_timestamp == 1_800_000_000
    assert readings["h"].pools == {
        "credits": PoolValues(remaining=129, used=1, limit=150),
        # This meter's answer has no "remaining": never derived as available - used.
        "verifications": PoolValues(used=2, limit=50),
    }
    assert readings["h"].cycle_end_timestamp == datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    assert readings["t"].pools == {"eur": PoolValues(remaining=-1.0)}
    assert readings["s"].pools == {"cny": PoolValues(remaining=110), "usd": PoolValues(remaining=0)}

    # A Twilio subaccount has no balance of its own: the message says so (issue 11.9).
    env.sim.update("tw-token", subaccount=True)
    with pytest.raises(PollError) as info:
        twilio = by_name_of(env.sim)["t"]
        await create_provider(twilio).fetch("balance", client(env, twilio))
    assert info.value.reason is Reason.BAD_RESPONSE
    assert "currency is null: Twilio keeps no balance for a subaccount" in info.value.message
    assert "parent" in info.value.message
    env.sim.update("tw-token", subaccount=False)

    # Misbehaviour comes out classified.
    env.sim.update("ds-key", malformed="html")
    env.sim.update("tw-token", revoked=True)
    env.sim.update("or-key", malformed="null_field")
    by_name = by_name_of(env.sim)
    for name, reason, fragment in (
        ("s", Reason.BAD_RESPONSE, "not JSON (text/html)"),
        ("t", Reason.AUTH, "HTTP 401: Authenticate"),
        ("o", Reason.BAD_RESPONSE, "data.total_credits is null"),
    ):
        with pytest.raises(PollError) as info:
            await create_provider(by_name[name]).fetch("balance", client(env, by_name[name]))
        assert info.value.reason is reason
        assert fragment in info.value.message


# --------------------------------------------------------------------------- issue 14's presets

PLIVO_ID = "MA2025RK4E639VJFZAGV"


@pytest.fixture
async def env14() -> AsyncIterator[Env]:
    sim = Simulator(clock=lambda: T0)
    sim.add_account(
        "serpapi",
        "serp-key",
        searches_per_month=30000,
        this_month_usage=24042,
        extra_credits=500,
        plan_renewal_date="2026-12-17",
    )
    sim.add_account("serpapi", "serp-legacy", searches_per_month=100, legacy=True)
    sim.add_account("telnyx", "tx-key", balance=-12.5, credit_limit=100, pending=3)
    sim.add_account("firecrawl", "fc-key", remaining_credits=1000, plan_credits=500)
    sim.add_account("sendgrid", "sg-key", total=200, used=250)
    sim.add_account("vonage", "vn-secret", vonage_api_key="abcd1234", value=10.28)
    sim.add_account("plivo", "pl-token", auth_id=PLIVO_ID, cash_credits=1.809)
    sim.add_account("moonshot", "ms-key", voucher_balance=46.58893, cash_balance=-3.00001)
    sim.add_account("zerobounce", "zb-key", credits=2375323)
    sim.add_account("crustdata", "cd-key", credits=9406.5)
    sim.add_account("lusha", "lu-key", total=10000, used=1500)
    sim.add_account("boldsign", "bs-key", balance_credits=100)
    sim.add_account("dropcontact", "dc-key", credits=1250)
    sim.add_account("anticaptcha", "ac-key", balance=12.3456, captcha_credits=85000)
    await sim.start()
    async with aiohttp.ClientSession() as http:
        yield Env(sim, http)
    await sim.stop()


async def test_issue14_documented_shapes(env14: Env) -> None:
    status, body = await env14.get("serpapi", "/account.json", params={"api_key": "serp-key"})
    assert status == 200
    assert body["api_key"] == "serp-key"  # echoed, as the real API does
    assert {k: body[k] for k in ("plan_searches_left", "total_searches_left")} == {
        "plan_searches_left": 5958,
        "total_searches_left": 6458,
    }
    assert body["plan_renewal_date"] == "2026-12-17"
    status, body = await env14.get("serpapi", "/account.json", params={"api_key": "serp-legacy"})
    assert "plan_renewal_date" not in body and body["plan_searches_left"] == 100
    status, body = await env14.get("telnyx", "/balance", {"Authorization": "Bearer tx-key"})
    assert body == {
        "data": {
            "record_type": "balance",
            "pending": "3.00",
            "balance": "-12.50",
            "credit_limit": "100.00",
            "available_credit": "87.50",
            "currency": "USD",
        }
    }
    status, body = await env14.get(
        "firecrawl", "/v2/team/credit-usage", {"Authorization": "Bearer fc-key"}
    )
    assert body["success"] is True and body["data"]["remainingCredits"] == 1000
    assert body["data"]["billingPeriodStart"] == "2026-11-01T00:00:00Z"
    status, body = await env14.get(
        "sendgrid", "/v3/user/credits", {"Authorization": "Bearer sg-key"}
    )
    assert (body["remain"], body["overage"], body["next_reset"]) == (0, 50, "2026-12-01")
    status, body = await env14.get("vonage", "/account/get-balance", basic("abcd1234", "vn-secret"))
    assert body == {"value": 10.28, "autoReload": False}
    status, body = await env14.get("plivo", f"/v1/Account/{PLIVO_ID}/", basic(PLIVO_ID, "pl-token"))
    assert body["cash_credits"] == "1.80900" and body["auth_id"] == PLIVO_ID
    status, body = await env14.get(
        "moonshot", "/v1/users/me/balance", {"Authorization": "Bearer ms-key"}
    )
    assert body["data"]["available_balance"] == 46.58893  # cash owed: the vouchers alone
    status, body = await env14.get("zerobounce", "/v2/getcredits", params={"api_key": "zb-key"})
    assert body == {"Credits": 2375323}
    status, body = await env14.get("crustdata", "/user/credits", {"Authorization": "Bearer cd-key"})
    assert body == {"credits": 9406.5}
    status, body = await env14.get("lusha", "/v3/account/usage", {"api_key": "lu-key"})
    assert body["credits"] == {"total": 10000, "used": 1500, "remaining": 8500}
    status, body = await env14.get("boldsign", "/v1/plan/apiCreditsCount", {"X-API-KEY": "bs-key"})
    assert body == {"BalanceCredits": 100}
    status, body = await env14.get(
        "dropcontact", "/v1/account/credits", {"X-Access-Token": "dc-key"}
    )
    assert body == {"credits": 1250}
    url = env14.sim.base_url("anticaptcha") + "/getBalance"
    async with env14.http.post(url, json={"clientKey": "ac-key"}) as resp:
        assert (resp.status, await resp.json()) == (
            200,
            {"errorId": 0, "balance": 12.3456, "captchaCredits": 85000},
        )


async def test_issue14_refusals_in_the_providers_own_shape(env14: Env) -> None:
    status, body = await env14.get("serpapi", "/account.json", params={"api_key": "nope"})
    assert status == 401 and body["error"].startswith("Invalid API key.")
    # ZeroBounce and Anti-Captcha refuse a key inside a 200.
    assert await env14.get("zerobounce", "/v2/getcredits", params={"api_key": "nope"}) == (
        200,
        {"Credits": -1},
    )
    url = env14.sim.base_url("anticaptcha") + "/getBalance"
    async with env14.http.post(url, json={"clientKey": "nope"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["errorCode"] == "ERROR_KEY_DOES_NOT_EXIST"
    env14.sim.update("ac-key", error="ERROR_IP_NOT_ALLOWED")
    async with env14.http.post(url, json={"clientKey": "ac-key"}) as resp:
        assert (await resp.json())["errorId"] == 11
    with pytest.raises(ValueError, match=r"anticaptcha\.error"):
        env14.sim.update("ac-key", error="ERROR_MADE_UP")
    status, body = await env14.get("vonage", "/account/get-balance", basic("other", "vn-secret"))
    assert status == 401 and body["title"] == "Unauthorized"
    status, _ = await env14.get("plivo", "/v1/Account/MAOTHER/", basic(PLIVO_ID, "pl-token"))
    assert status == 404
    status, body = await env14.get("crustdata", "/user/credits")
    assert status == 401 and body == {"message": "Missing API key in request"}
    status, body = await env14.get("lusha", "/v3/account/usage", {"api_key": "nope"})
    assert status == 401 and body["statusCode"] == 401


def accounts14(sim: Simulator) -> dict[str, AccountBase]:
    url = sim.url
    entries = [
        f'{{name: serpapi, provider: serpapi, api_key: serp-key, base_url: "{url}/serpapi"}}',
        f'{{name: telnyx, provider: telnyx, api_key: tx-key, base_url: "{url}/telnyx/v2"}}',
        f'{{name: firecrawl, provider: firecrawl, api_key: fc-key, base_url: "{url}/firecrawl"}}',
        f'{{name: sendgrid, provider: sendgrid, api_key: sg-key, base_url: "{url}/sendgrid"}}',
        f'{{name: vonage, provider: vonage, api_key: vn-secret, base_url: "{url}/vonage",'
        " params: {vonage_api_key: abcd1234}}",
        f'{{name: plivo, provider: plivo, api_key: pl-token, base_url: "{url}/plivo",'
        f" params: {{auth_id: {PLIVO_ID}}}}}",
        f'{{name: moonshot, provider: moonshot, api_key: ms-key, base_url: "{url}/moonshot"}}',
        f'{{name: zerobounce, provider: zerobounce, api_key: zb-key, base_url: "{url}/zerobounce"}}',
        f'{{name: crustdata, provider: crustdata, api_key: cd-key, base_url: "{url}/crustdata"}}',
        f'{{name: lusha, provider: lusha, api_key: lu-key, base_url: "{url}/lusha"}}',
        f'{{name: boldsign, provider: boldsign, api_key: bs-key, base_url: "{url}/boldsign"}}',
        f'{{name: dropcontact, provider: dropcontact, api_key: dc-key, base_url: "{url}/dropcontact"}}',
        f'{{name: anticaptcha, provider: anticaptcha, api_key: ac-key, base_url: "{url}/anticaptcha"}}',
    ]
    config = parse_config("accounts:\n" + "".join(f"  - {e}\n" for e in entries), env={})
    return {a.name: a for a in config.accounts}


async def test_issue14_presets_read_the_simulator(env14: Env) -> None:
    by_name = accounts14(env14.sim)

    async def read(name: str) -> Any:
        account = by_name[name]
        return await create_provider(account).fetch("balance", client(env14, account))

    assert (await read("serpapi")).pools == {
        "searches": PoolValues(remaining=5958, used=24042, limit=30000),
        "extra_credits": PoolValues(remaining=500),
    }
    assert (await read("telnyx")).pools == {"usd": PoolValues(remaining=87.5)}  # on credit
    assert (await read("firecrawl")).pools == {"credits": PoolValues(remaining=1000, limit=500)}
    assert (await read("sendgrid")).pools == {
        "emails": PoolValues(remaining=0, used=250, limit=200)
    }
    assert (await read("vonage")).pools == {"balance": PoolValues(remaining=10.28)}
    assert (await read("plivo")).pools == {"cash_credits": PoolValues(remaining=1.809)}
    assert (await read("moonshot")).pools == {"available": PoolValues(remaining=46.58893)}
    assert (await read("zerobounce")).pools == {"credits": PoolValues(remaining=2375323)}
    assert (await read("crustdata")).pools == {"credits": PoolValues(remaining=9406.5)}
    assert (await read("lusha")).pools == {
        "credits": PoolValues(remaining=8500, used=1500, limit=10000)
    }
    assert (await read("boldsign")).pools == {"api_credits": PoolValues(remaining=100)}
    assert (await read("dropcontact")).pools == {"credits": PoolValues(remaining=1250)}
    assert (await read("anticaptcha")).pools == {"balance": PoolValues(remaining=12.3456)}

    # Refusals inside a 200 come out classified, never as a balance.
    env14.sim.update("zb-key", revoked=True)
    env14.sim.update("ac-key", error="ERROR_ZERO_BALANCE")
    env14.sim.update("serp-key", malformed="string_number")  # numbers as strings are read
    assert (await read("serpapi")).pools["searches"] == PoolValues(
        remaining=5958, used=24042, limit=30000
    )
    for name, reason, message in (
        ("zerobounce", Reason.AUTH, "Credits is -1: ZeroBounce's answer for an invalid API key"),
        (
            "anticaptcha",
            Reason.PAYMENT_REQUIRED,
            'errorId is 10: the balance is zero or negative ("ERROR_ZERO_BALANCE")',
        ),
    ):
        with pytest.raises(PollError) as info:
            await read(name)
        assert (info.value.reason, info.value.message) == (reason, message)
    env14.sim.update("ac-key", error=None, revoked=True)
    with pytest.raises(PollError) as info:
        await read("anticaptcha")
    assert info.value.reason is Reason.AUTH
    assert "ERROR_KEY_DOES_NOT_EXIST" in info.value.message


async def test_issue14_burns(env14: Env) -> None:
    """SerpApi burns the plan's searches, then the extra credits; Telnyx burns its balance down
    to minus its credit limit (used on credit)."""
    env14.sim.update("serp-key", burn_searches_per_day=6458.0)
    env14.sim.update("tx-key", burn_per_day=200.0)
    env14.sim.advance(86400)
    state = env14.sim.accounts()
    assert (state["serp-key"]["this_month_usage"], state["serp-key"]["extra_credits"]) == (30000, 0)
    assert state["tx-key"]["balance"] == -100.0
