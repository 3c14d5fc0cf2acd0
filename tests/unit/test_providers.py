"""Response parsing of the built-in providers: documented shapes, and strictness."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from exporter.config import parse_config
from exporter.model import PollError, PoolValues, Reason
from exporter.providers import create_provider
from exporter.providers.fullenrich import FullEnrich
from exporter.providers.theirstack import TheirStack
from exporter.providers.windsurf import Windsurf, classify


def account(text: str) -> Any:
    return parse_config(f"accounts: [{text}]", env={}).accounts[0]


def theirstack(extra: str = "") -> TheirStack:
    p = create_provider(account(f"{{name: a, provider: theirstack, api_key: k{extra}}}"))
    assert isinstance(p, TheirStack)
    return p


def bad(fn: Any, *args: Any) -> PollError:
    with pytest.raises(PollError) as info:
        fn(*args)
    assert info.value.reason is Reason.BAD_RESPONSE
    return info.value


def test_theirstack_balance() -> None:
    r = TheirStack.parse_balance(
        {"api_credits": 900, "ui_credits": 40, "used_api_credits": 100, "used_ui_credits": 10}
    )
    assert r.pools == {
        "api": PoolValues(remaining=900, used=100),
        "ui": PoolValues(remaining=40, used=10),
    }
    assert r.expiry_timestamp is None
    r = TheirStack.parse_balance(
        {
            "api_credits": 0,
            "ui_credits": 0,
            "used_api_credits": 0,
            "used_ui_credits": 0,
            "earliest_expiration": "2026-12-01T00:00:00Z",
        }
    )
    assert r.expiry_timestamp == datetime(2026, 12, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "should be a JSON object, got array"),
        ({"ui_credits": 1, "used_api_credits": 1, "used_ui_credits": 1}, "api_credits is missing"),
        (
            {"api_credits": "5", "ui_credits": 1, "used_api_credits": 1, "used_ui_credits": 1},
            "got string",
        ),
        (
            {"api_credits": None, "ui_credits": 1, "used_api_credits": 1, "used_ui_credits": 1},
            "got null",
        ),
        (
            {"api_credits": 1, "ui_credits": 1, "used_api_credits": -1, "used_ui_credits": 1},
            "negative",
        ),
        (
            {
                "api_credits": float("nan"),
                "ui_credits": 1,
                "used_api_credits": 1,
                "used_ui_credits": 1,
            },
            "plausible",
        ),
        (
            {"api_credits": -1e300, "ui_credits": 1, "used_api_credits": 1, "used_ui_credits": 1},
            "plausible",
        ),
        (
            {"api_credits": 1e300, "ui_credits": 1, "used_api_credits": 1, "used_ui_credits": 1},
            "plausible",
        ),
        (
            {"api_credits": True, "ui_credits": 1, "used_api_credits": 1, "used_ui_credits": 1},
            "boolean",
        ),
        (
            {
                "api_credits": 1,
                "ui_credits": 1,
                "used_api_credits": 1,
                "used_ui_credits": 1,
                "earliest_expiration": "soon",
            },
            "not a valid date-time",
        ),
    ],
)
def test_theirstack_balance_strict(body: Any, fragment: str) -> None:
    assert fragment in bad(TheirStack.parse_balance, body).message


def test_theirstack_consumption_windows_and_timezone() -> None:
    p = theirstack(", consumption: {timezone: Europe/Madrid}")
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    buckets = [
        {
            "period_start": f"2026-11-{d:02d}T00:00:00+01:00",
            "api_credits_consumed": d,
            "ui_credits_consumed": 1,
        }
        for d in range(1, 23)
    ]
    r = p.parse_consumption(buckets, now)
    assert r.consumption["api"] == {"1d": 22, "7d": sum(range(16, 23)), "30d": sum(range(1, 23))}
    assert r.consumption["ui"] == {"1d": 1, "7d": 7, "30d": 22}
    assert r.daily_consumption["api"]["2026-11-22"] == 22
    # UTC stamps are mapped to the account's local day.
    r = p.parse_consumption(
        [
            {
                "period_start": "2026-11-21T23:00:00Z",
                "api_credits_consumed": 5,
                "ui_credits_consumed": 0,
            }
        ],
        now,
    )
    assert r.daily_consumption["api"]["2026-11-22"] == 5
    assert sum(r.daily_consumption["api"].values()) == 5


def test_theirstack_consumption_lists_every_day_of_the_range() -> None:
    """A day the answer leaves out (TheirStack may omit zero days) consumed 0."""
    r = theirstack().parse_consumption([], datetime(2026, 11, 22, tzinfo=UTC))
    days = {f"2026-10-{d:02d}" for d in range(24, 32)} | {f"2026-11-{d:02d}" for d in range(1, 23)}
    assert r.daily_consumption == {"api": dict.fromkeys(days, 0), "ui": dict.fromkeys(days, 0)}
    assert r.consumption["api"] == {"1d": 0, "7d": 0, "30d": 0}


def test_theirstack_short_lookback_omits_long_window() -> None:
    p = theirstack(", consumption: {lookback_days: 7}")
    r = p.parse_consumption([], datetime(2026, 11, 22, tzinfo=UTC))
    assert set(r.consumption["api"]) == {"1d", "7d"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        [1],
        [{"period_start": 5, "api_credits_consumed": 1, "ui_credits_consumed": 1}],
        [{"period_start": "nope", "api_credits_consumed": 1, "ui_credits_consumed": 1}],
        [{"period_start": "2026-11-01T00:00:00Z", "ui_credits_consumed": 1}],
        [
            {
                "period_start": "2026-11-01T00:00:00Z",
                "api_credits_consumed": "1",
                "ui_credits_consumed": 1,
            }
        ],
    ],
)
def test_theirstack_consumption_strict(body: Any) -> None:
    bad(theirstack().parse_consumption, body, datetime(2026, 11, 22, tzinfo=UTC))


def test_theirstack_endpoints() -> None:
    assert theirstack().endpoints == ("balance", "consumption")
    assert theirstack(", consumption: {enabled: false}").endpoints == ("balance",)


WINDSURF_BALANCE = {
    "promptCreditsPerSeat": 500,
    "numSeats": 50,
    "addOnCreditsAvailable": 10000,
    "addOnCreditsUsed": 3500,
    "billingCycleStart": "2026-01-01T00:00:00Z",
    "billingCycleEnd": "2026-02-01T00:00:00Z",
}


def test_windsurf_balance() -> None:
    r = Windsurf.parse_balance(WINDSURF_BALANCE)
    assert r.pools["prompt"] == PoolValues(limit=25000)
    assert r.pools["add_on"] == PoolValues(limit=10000, used=3500, remaining=6500)
    assert r.seats == 50
    assert r.cycle_start_timestamp == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert r.cycle_end_timestamp == datetime(2026, 2, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("key", list(WINDSURF_BALANCE)[:4])
def test_windsurf_balance_strict(key: str) -> None:
    body = dict(WINDSURF_BALANCE)
    wrong: object
    for wrong in ("twelve", None, True, [], {}, -1, 1e300, "NaN"):
        body[key] = wrong
        assert key in bad(Windsurf.parse_balance, body).message


def test_windsurf_analytics_strict() -> None:
    cycle = {k: WINDSURF_BALANCE[k] for k in ("billingCycleStart", "billingCycleEnd")}
    bad(Windsurf.parse_analytics, {"userTableStats": None, **cycle})
    bad(Windsurf.parse_analytics, {"userTableStats": [{"promptCreditsUsed": "x"}], **cycle})
    bad(Windsurf.parse_analytics, {"userTableStats": ["x"], **cycle})
    bad(Windsurf.parse_analytics, {"userTableStats": [], "billingCycleStart": 5})
    assert Windsurf.parse_analytics(cycle).pools["prompt"] == PoolValues(used=0)


def test_windsurf_classify() -> None:
    assert classify(200, {"error": "Invalid service key"}) is Reason.AUTH
    assert classify(500, {"error": "Insufficient permissions"}) is Reason.AUTH
    assert classify(200, {"error": "something else"}) is Reason.BAD_RESPONSE
    assert classify(500, {"error": "boom"}) is None
    assert classify(200, WINDSURF_BALANCE) is None


def test_fullenrich() -> None:
    assert FullEnrich.parse_balance({"balance": 4999.5}).pools == {
        "workspace": PoolValues(remaining=4999.5)
    }
    bad(FullEnrich.parse_balance, {"balance": None})
    bad(FullEnrich.parse_balance, {"credits": 5})
    bad(FullEnrich.parse_balance, "5000")
