"""The providers read the example responses of their own documentation (tests/fixtures/providers,
each with the address of its page) into the values docs/providers.md promises."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import parse_config
from exporter.model import PollError, PoolValues, Reading, Reason
from exporter.providers import create_provider, fullenrich, theirstack
from exporter.providers.base import merge_pools
from exporter.providers.http_json import HttpJson
from exporter.providers.theirstack import TheirStack
from exporter.providers.windsurf import Windsurf

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers"
DOC = (Path(__file__).resolve().parents[2] / "docs" / "providers.md").read_text()


def examples(provider: str) -> dict[str, Any]:
    """name -> the example's parsed body."""
    data = yaml.safe_load((FIXTURES / f"{provider}.yaml").read_text())
    assert data["provider"] == provider
    return {e["name"]: json.loads(e["body"]) for e in data["examples"]}


def provider_for(text: str) -> Any:
    return create_provider(parse_config(f"accounts: [{text}]", env={}).accounts[0])


def test_every_fixture_names_its_source() -> None:
    files = sorted(FIXTURES.glob("*.yaml"))
    assert {f.stem for f in files} >= {"theirstack", "windsurf", "fullenrich"}
    for path in files:
        for example in yaml.safe_load(path.read_text())["examples"]:
            assert example["source"].startswith("https://"), (path.name, example["name"])
            assert isinstance(example["verbatim"], bool)
            assert example["verbatim"] or example.get("note"), (path.name, example["name"])
            json.loads(example["body"])


def test_windsurf_documented_balance() -> None:
    r = Windsurf.parse_balance(examples("windsurf")["balance"])
    assert r.pools == {
        "prompt": PoolValues(limit=25000),
        "add_on": PoolValues(limit=10000, used=3500, remaining=6500),
    }
    assert r.seats == 50
    assert r.cycle_start_timestamp == datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def test_windsurf_team_without_add_on_credits() -> None:
    """Issue 11.1: protobuf JSON leaves the zero add-on fields out; prompt and seats stay."""
    r = Windsurf.parse_balance(examples("windsurf")["balance_without_add_on_credits"])
    assert r.pools == {
        "prompt": PoolValues(limit=25000),
        "add_on": PoolValues(limit=0, used=0, remaining=0),
    }
    assert r.seats == 50


def test_windsurf_documented_analytics_without_cycle_reports_no_usage() -> None:
    """Issue 11.2: the older documented answer has no promptCreditsUsed and no billing cycle:
    used and remaining are absent (not 0 and the whole limit), and the note says why."""
    r = Windsurf.parse_analytics(examples("windsurf")["analytics_without_cycle"])
    assert r.pools == {"prompt": PoolValues()}
    assert "names no billing cycle" in r.notes["prompt"]


def test_windsurf_analytics_with_cycle_and_balance() -> None:
    p = provider_for("{name: e, provider: windsurf, api_key: k, prompt_usage: true}")
    ex = examples("windsurf")
    analytics = Windsurf.parse_analytics(ex["analytics_with_cycle"])
    assert analytics.pools == {"prompt": PoolValues(used=1500)}  # "1200" + 300 + left out
    balance = Windsurf.parse_balance(ex["balance"])
    merged = Reading(pools=merge_pools(balance.pools, analytics.pools))
    derived = p.derive(merged, {"balance": balance, "user_analytics": analytics})
    assert derived.pools["prompt"] == PoolValues(limit=25000, used=1500, remaining=23500)


def test_windsurf_cascade_runs_are_the_team_daily_consumption() -> None:
    """Issue 14: promptsUsed is "Credits consumed (in cents)", an int64 written as a string,
    per day, model, mode and conversation: each day's rows add up, divided by 100."""
    p = provider_for("{name: e, provider: windsurf, api_key: k, consumption: {lookback_days: 7}}")
    r = p.parse_consumption(
        examples("windsurf")["cascade_runs"], datetime(2026, 1, 20, 9, tzinfo=UTC)
    )
    assert r.daily_consumption["team"]["2026-01-19"] == 19.25  # "1850" + "75"
    assert r.daily_consumption["team"]["2026-01-20"] == 12  # "1200" + a row without credits
    assert r.daily_consumption["team"]["2026-01-14"] == 0  # no rows: nothing consumed
    assert len(r.daily_consumption["team"]) == 7
    assert r.consumption == {"team": {"1d": 12, "7d": 31.25}}  # no 30d window in 7 days
    assert r.pools == {} and r.notes == {}


def test_windsurf_cascade_schema_is_navigated_to_its_placeholders() -> None:
    """The documented schema nests the rows as the exporter reads them: the only thing it
    refuses is the placeholder, "<string>" is no date."""
    p = provider_for("{name: e, provider: windsurf, api_key: k, consumption: {}}")
    with pytest.raises(PollError) as info:
        p.parse_consumption(examples("windsurf")["cascade_analytics_schema"], datetime.now(UTC))
    assert info.value.reason is Reason.BAD_RESPONSE
    assert info.value.message.startswith("queryResults[0].cascadeRuns.cascadeRuns[0].day ")


def test_theirstack_documented_answers() -> None:
    ex = examples("theirstack")
    r = TheirStack.parse_balance(ex["credit_balance"])
    assert r.pools == {
        "api": PoolValues(remaining=0, used=0),
        "ui": PoolValues(remaining=0, used=0),
    }
    assert r.expiry_timestamp is None
    p = provider_for("{name: t, provider: theirstack, api_key: k}")
    r = p.parse_consumption(ex["credits_consumption"], datetime(2019, 8, 25, 12, tzinfo=UTC))
    assert r.daily_consumption["api"]["2019-08-24"] == 0
    assert r.consumption["api"] == {"1d": 0, "7d": 0, "30d": 0}
    assert theirstack.error_message(ex["error"]) == "Not allowed exception"


def test_fullenrich_documented_answers() -> None:
    ex = examples("fullenrich")
    assert fullenrich.FullEnrich.parse_balance(ex["credits"]).pools == {
        "workspace": PoolValues(remaining=5000)
    }
    assert fullenrich.error_message(ex["unknown_api_key"]) == "Unknown api key"
    assert fullenrich.error_message(ex["authorization_not_set"]) == "Authorization headers not set"


def test_openrouter_documented_answers() -> None:
    ex = examples("openrouter")
    p = provider_for("{name: o, provider: openrouter, api_key: k}")
    assert p.parse(ex["credits"]).pools == {
        "credits": PoolValues(remaining=74.75, used=25.75, limit=100.5)
    }


def test_openrouter_key_override_reads_the_usage_of_the_limit_period() -> None:
    """Issue 11.9: the per-key override of docs/providers.md reads the usage of the period the
    limit resets on (limit_reset), not the all-time usage."""
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", DOC, re.S) if "name: router-key" in b)
    config = parse_config(block, env={v: "k-123456" for v in re.findall(r"\$\{(\w+)", block)})
    (account,) = [a for a in config.accounts if a.name == "router-key"]
    key = examples("openrouter")["current_key"]
    provider = create_provider(account)
    assert isinstance(provider, HttpJson)
    assert provider.parse(key).pools == {
        "credits": PoolValues(remaining=74.5, used=25.5, limit=100)
    }
    # A key used for months: the all-time usage is far above this month's.
    key["data"] |= {"usage": 310.25, "usage_daily": 1.5, "usage_weekly": 9.0}
    assert key["data"]["limit_reset"] == "monthly"
    provider = create_provider(account)
    assert isinstance(provider, HttpJson)
    pool = provider.parse(key).pools["credits"]
    assert pool == PoolValues(remaining=74.5, used=25.5, limit=100)
    assert pool.used is not None and pool.remaining is not None
    assert pool.used + pool.remaining == pool.limit


def test_hunter_remaining_as_given() -> None:
    """Issue 11.9: available includes pack credits; remaining is Hunter's own, never
    available - used."""
    ex = examples("hunter")
    p = provider_for("{name: h, provider: hunter, api_key: k}")
    assert p.parse(ex["account_current_plan"]).pools == {
        "credits": PoolValues(remaining=1930, used=320, limit=2250)
    }
    older = p.parse(ex["account_two_meters_without_remaining"])
    assert older.pools == {
        "searches": PoolValues(used=30, limit=500),
        "verifications": PoolValues(used=12, limit=1000),
    }
    # Nothing to alert on without a remaining: the log and the status page say so.
    assert older.notes == {
        pool: (
            f"remaining not in the answer (data.requests.{pool}.remaining): none is published "
            "for this pool, so CreditsLow and CreditsExhausted cannot fire for it"
        )
        for pool in ("searches", "verifications")
    }
    assert p.parse(ex["account_current_plan"]).notes == {}


def test_twilio_subaccount_says_so() -> None:
    """Issue 11.9: a subaccount's null balance and currency: poll the parent account."""
    ex = examples("twilio")
    p = provider_for("{name: t, provider: twilio, api_key: k, params: {account_sid: AC1}}")
    assert p.parse(ex["balance"]).pools == {"usd": PoolValues(remaining=12.34)}
    with pytest.raises(PollError) as info:
        p.parse(ex["subaccount"])
    assert info.value.reason is Reason.BAD_RESPONSE
    assert "subaccount" in info.value.message and "parent" in info.value.message
    assert "should be a string" not in info.value.message


def test_deepseek_documented_answer() -> None:
    p = provider_for("{name: d, provider: deepseek, api_key: k}")
    assert p.parse(examples("deepseek")["balance"]).pools == {"cny": PoolValues(remaining=110)}


# --------------------------------------------------------------------------- presets of issue 14


def preset(name: str, extra: str = "") -> Any:
    return provider_for(f"{{name: a, provider: {name}, api_key: k-0123456789{extra}}}")


def refused(p: Any, body: Any) -> PollError:
    with pytest.raises(PollError) as info:
        p.parse(body)
    return info.value


def day(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_serpapi_documented_answers() -> None:
    ex = examples("serpapi")
    p = preset("serpapi")
    r = p.parse(ex["account"])
    # total_searches_left (plan + extra) is not a pool of its own: it would count twice.
    assert r.pools == {
        "searches": PoolValues(remaining=5958, used=24042, limit=30000),
        "extra_credits": PoolValues(remaining=0),
    }
    assert r.cycle_end_timestamp == day("2026-12-17")
    r = p.parse(ex["account_without_monthly_plan"])
    assert r.pools["extra_credits"] == PoolValues(remaining=12000)
    assert r.cycle_end_timestamp is None
    assert p.error_message(ex["invalid_api_key"]).startswith("Invalid API key.")


def test_telnyx_documented_answers() -> None:
    ex = examples("telnyx")
    p = preset("telnyx")
    # What the account can still spend: available_credit, "balance + credit limit".
    assert p.parse(ex["balance"]).pools == {"usd": PoolValues(remaining=400)}
    assert p.units() == {"usd": "usd"}
    assert p.error_message(ex["authentication_failed"]).startswith(
        "The required authentication headers"
    )
    assert p.error_message(ex["too_many_requests"]).startswith("You have exceeded")


def test_telnyx_on_its_credit_line_is_not_exhausted() -> None:
    """A balance below 0 within the credit line: the account keeps working, so what it can
    still spend is published (CreditsExhausted stays quiet); beyond the line it is below 0."""
    p = preset("telnyx")

    def answer(balance: str, available: str) -> dict[str, Any]:
        data = {"balance": balance, "credit_limit": "100.00", "available_credit": available}
        return {"data": {**data, "record_type": "balance", "pending": "0.00", "currency": "USD"}}

    assert p.parse(answer("-20.00", "80.00")).pools == {"usd": PoolValues(remaining=80)}
    assert p.parse(answer("-104.50", "-4.50")).pools == {"usd": PoolValues(remaining=-4.5)}


def test_firecrawl_documented_answers() -> None:
    ex = examples("firecrawl")
    p = preset("firecrawl")
    r = p.parse(ex["credit_usage"])
    # planCredits excludes coupons and packs: no used is derived from it.
    assert r.pools == {"credits": PoolValues(remaining=1000, limit=500000)}
    assert r.cycle_start_timestamp == day("2025-01-01")
    assert r.cycle_end_timestamp == day("2025-01-31T23:59:59")
    assert p.error_message(ex["not_found"]) == "Could not find credit usage information"


def test_sendgrid_documented_answers() -> None:
    ex = examples("sendgrid")
    p = preset("sendgrid")
    r = p.parse(ex["credits"])
    assert r.pools == {"emails": PoolValues(remaining=200, used=0, limit=200)}
    assert (r.cycle_start_timestamp, r.cycle_end_timestamp) == (
        day("2013-01-01"),
        day("2013-02-01"),
    )
    assert p.error_message(ex["authorization_required"]) == "authorization required"


def test_vonage_documented_answers() -> None:
    ex = examples("vonage")
    p = preset("vonage", ", params: {vonage_api_key: abcd1234}")
    assert p.parse(ex["balance"]).pools == {"balance": PoolValues(remaining=10.28)}
    assert p.units() == {"balance": "eur"}
    assert p.error_message(ex["out_of_credit"]) == "Your current balance is 30, but that costs 50."


def test_plivo_documented_answer() -> None:
    p = preset("plivo", ", params: {auth_id: MA2025RK4E639VJFZAGV}")
    assert p.url == "https://api.plivo.com/v1/Account/MA2025RK4E639VJFZAGV/"
    assert p.parse(examples("plivo")["account"]).pools == {
        "cash_credits": PoolValues(remaining=1.809)
    }
    assert p.units() == {"cash_credits": "usd"}


def test_moonshot_documented_answers_and_unit_by_host() -> None:
    ex = examples("moonshot")
    p = preset("moonshot")
    assert p.parse(ex["balance"]).pools == {"available": PoolValues(remaining=49.58894)}
    assert p.parse(ex["balance_owing_cash"]).pools == {"available": PoolValues(remaining=46.58893)}
    assert p.units() == {"available": "usd"}
    # The China platform answers the same shape in yuan.
    assert preset("moonshot", ", base_url: https://api.moonshot.cn").units() == {"available": "cny"}


def test_zerobounce_invalid_key_is_auth_not_a_balance() -> None:
    ex = examples("zerobounce")
    p = preset("zerobounce")
    assert p.parse(ex["credits"]).pools == {"credits": PoolValues(remaining=2375323)}
    error = refused(p, ex["invalid_api_key"])
    assert error.reason is Reason.AUTH
    assert error.message == "Credits is -1: ZeroBounce's answer for an invalid API key"
    assert refused(p, {"Credits": "-1"}).reason is Reason.AUTH  # a number written as a string


def test_crustdata_documented_answers() -> None:
    ex = examples("crustdata")
    p = preset("crustdata")
    assert p.parse(ex["credits"]).pools == {"credits": PoolValues(remaining=9406)}
    assert p.error_message(ex["missing_api_key"]) == "Missing API key in request"
    assert p.error_message(ex["invalid_api_key"]) == "Invalid API key in request"


def test_lusha_documented_answers() -> None:
    ex = examples("lusha")
    p = preset("lusha")
    r = p.parse(ex["usage"])
    assert r.pools == {"credits": PoolValues(remaining=8500, used=1500, limit=10000)}
    assert r.cycle_end_timestamp is None  # plan.endDate is the annual plan's end
    assert p.error_message(ex["unauthorized"]) == "Unauthorized"


def test_boldsign_documented_answer() -> None:
    p = preset("boldsign")
    assert p.parse(examples("boldsign")["api_credits"]).pools == {
        "api_credits": PoolValues(remaining=100)
    }


def test_dropcontact_documented_schema() -> None:
    p = preset("dropcontact")
    assert p.parse(examples("dropcontact")["credits"]).pools == {
        "credits": PoolValues(remaining=1250)
    }


def test_anticaptcha_errors_in_a_200() -> None:
    ex = examples("anticaptcha")
    p = preset("anticaptcha")
    # captchaCredits is undocumented beyond its name: not published.
    assert p.parse(ex["balance"]).pools == {"balance": PoolValues(remaining=12.3456)}
    error = refused(p, ex["key_does_not_exist"])
    assert error.reason is Reason.AUTH
    assert error.message == 'errorId is 1: the key was refused ("ERROR_KEY_DOES_NOT_EXIST")'
    error = refused(p, ex["zero_balance"])
    assert error.reason is Reason.PAYMENT_REQUIRED
    assert "ERROR_ZERO_BALANCE" in error.message
    error = refused(p, {"errorId": 14, "errorCode": "ERROR_NO_SUCH_METHOD"})
    assert error.reason is Reason.BAD_RESPONSE
    assert error.message == 'errorId is 14: Anti-Captcha reports an error ("ERROR_NO_SUCH_METHOD")'
    # An HTTP error body is read at errorDescription.
    assert p.error_message(ex["key_does_not_exist"]) == (
        "Account authorization key not found in the system"
    )
