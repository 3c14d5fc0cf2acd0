"""Windsurf against its API's own format (protobuf JSON) and its two endpoints' billing cycles."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exporter.config import parse_config
from exporter.http import Exchange, interpret
from exporter.model import PollError, PoolValues, Reading, Reason
from exporter.providers import create_provider
from exporter.providers.base import merge_pools
from exporter.providers.windsurf import Windsurf, classify, error_message

JAN = {"billingCycleStart": "2026-01-01T00:00:00Z", "billingCycleEnd": "2026-02-01T00:00:00Z"}
FEB = {"billingCycleStart": "2026-02-01T00:00:00Z", "billingCycleEnd": "2026-03-01T00:00:00Z"}


def windsurf() -> Windsurf:
    text = "accounts: [{name: e, provider: windsurf, api_key: k, prompt_usage: true}]"
    p = create_provider(parse_config(text, env={}).accounts[0])
    assert isinstance(p, Windsurf)
    return p


def combine(balance: dict[str, Any] | None, analytics: dict[str, Any] | None) -> Reading:
    """What the store publishes from the two endpoints' last good readings."""
    readings = {}
    if balance is not None:
        readings["balance"] = Windsurf.parse_balance(balance)
    if analytics is not None:
        readings["user_analytics"] = Windsurf.parse_analytics(analytics)
    notes: dict[str, str] = {}
    for r in readings.values():
        notes.update(r.notes)
    merged = Reading(pools=merge_pools(*(r.pools for r in readings.values())), notes=notes)
    return windsurf().derive(merged, readings)


def test_omitted_numeric_fields_are_zero() -> None:
    """Issue 11.1: a team that never bought add-on credits gets neither add-on field."""
    r = Windsurf.parse_balance({"promptCreditsPerSeat": 500, "numSeats": 8, **JAN})
    assert r.pools == {
        "prompt": PoolValues(limit=4000),
        "add_on": PoolValues(limit=0, used=0, remaining=0),
    }
    assert r.seats == 8
    assert Windsurf.parse_balance({"numSeats": 3}).pools["prompt"] == PoolValues(limit=0)


def test_numbers_written_as_strings_are_numbers() -> None:
    body = {
        "promptCreditsPerSeat": "500",
        "numSeats": "50",
        "addOnCreditsAvailable": "10000",
        "addOnCreditsUsed": 3500,
        **JAN,
    }
    r = Windsurf.parse_balance(body)
    assert r.pools["add_on"] == PoolValues(limit=10000, used=3500, remaining=6500)
    assert r.pools["prompt"] == PoolValues(limit=25000)
    users = {"userTableStats": [{"promptCreditsUsed": "12"}, {"promptCreditsUsed": 30}], **JAN}
    assert Windsurf.parse_analytics(users).pools["prompt"] == PoolValues(used=42)


@pytest.mark.parametrize("wrong", ["lots", "1_000", None, True, {"value": 1}, [1], -5])
def test_present_field_of_another_type_is_an_error(wrong: Any) -> None:
    with pytest.raises(PollError) as info:
        Windsurf.parse_balance({"promptCreditsPerSeat": 500, "numSeats": wrong, **JAN})
    assert info.value.reason is Reason.BAD_RESPONSE
    assert "numSeats" in info.value.message


def test_an_empty_object_is_not_a_balance() -> None:
    with pytest.raises(PollError) as info:
        Windsurf.parse_balance({})
    assert "none of the balance fields" in info.value.message


def test_empty_error_beside_data_is_success() -> None:
    """Issue 11.4: protobuf writes "no error" as an empty string."""
    body = {"userTableStats": [{"name": "a", "promptCreditsUsed": 5}], "error": "", **JAN}
    assert classify(200, body) is None
    assert classify(200, {"error": "  "}) is None
    assert Windsurf.parse_analytics(body).pools["prompt"] == PoolValues(used=5)
    assert classify(200, {"error": "Invalid service key"}) is Reason.AUTH
    assert classify(200, {"error": "something broke"}) is Reason.BAD_RESPONSE
    assert classify(500, {"error": "boom"}) is None


@pytest.mark.parametrize(
    "text",
    ["Rate limit exceeded", "rate-limited: try again later", "Too Many Requests", "ratelimit hit"],
)
def test_a_rate_limit_inside_a_200_is_rate_limited(text: str) -> None:
    """Windsurf documents a 429 but no body: an error beside a 200 that says it is being rate
    limited is counted as rate_limited (the alerts and the backoff read it so), not as a
    response the exporter could not read."""
    assert classify(200, {"error": text}) is Reason.RATE_LIMITED
    body = json.dumps({"error": text}).encode()
    with pytest.raises(PollError) as info:
        interpret(
            Exchange(200, {}, body), secrets=(), error_message=error_message, classify=classify
        )
    assert (info.value.reason, info.value.status) == (Reason.RATE_LIMITED, 200)
    # An auth refusal stays auth, whatever else it says.
    assert classify(200, {"error": "Invalid service key (rate limit 10/s)"}) is Reason.AUTH


def test_usage_only_from_an_answer_that_names_its_cycle() -> None:
    """Issue 11.2: without billingCycleStart/End, promptCreditsUsed is not tied to a cycle."""
    users = {"userTableStats": [{"name": "a", "promptCreditsUsed": 100}, {"name": "b"}]}
    r = Windsurf.parse_analytics(users)
    assert r.pools == {"prompt": PoolValues()}
    assert set(r.notes) == {"prompt"}
    assert "prompt usage not reported" in r.notes["prompt"]
    assert "names no billing cycle" in r.notes["prompt"]
    assert Windsurf.parse_analytics({**users, **JAN}).pools == {"prompt": PoolValues(used=100)}
    half = {**users, "billingCycleStart": JAN["billingCycleStart"]}
    assert Windsurf.parse_analytics(half).pools == {"prompt": PoolValues()}
    # Combined with the balance: the limit stays, used and remaining are absent.
    balance = {"promptCreditsPerSeat": 500, "numSeats": 2, **JAN}
    published = combine(balance, users)
    assert published.pools["prompt"] == PoolValues(limit=1000)
    assert published.notes == r.notes


def test_same_cycle_combines_usage_and_limit() -> None:
    balance = {"promptCreditsPerSeat": 500, "numSeats": 2, **JAN}
    analytics = {"userTableStats": [{"promptCreditsUsed": 300}], **JAN}
    published = combine(balance, analytics)
    assert published.pools["prompt"] == PoolValues(limit=1000, used=300, remaining=700)
    assert published.notes == {}


def test_cycles_that_differ_keep_only_the_limit() -> None:
    """Issue 11.3: right after a reset the balance is on the new cycle while analytics still
    reports last cycle's usage: new limit - old usage would fire false low-credit alerts."""
    balance = {"promptCreditsPerSeat": 500, "numSeats": 2, **FEB}
    analytics = {"userTableStats": [{"promptCreditsUsed": 950}], **JAN}
    published = combine(balance, analytics)
    assert published.pools["prompt"] == PoolValues(limit=1000)
    note = published.notes["prompt"]
    assert "2026-02-01T00:00:00Z to 2026-03-01T00:00:00Z" in note  # the balance's
    assert "2026-01-01T00:00:00Z to 2026-02-01T00:00:00Z" in note  # the analytics'
    # The balance names no cycle: no match either.
    no_cycle = {"promptCreditsPerSeat": 500, "numSeats": 2}
    published = combine(no_cycle, analytics)
    assert published.pools["prompt"] == PoolValues(limit=1000)
    assert "names no billing cycle" in published.notes["prompt"]


def test_each_endpoint_alone() -> None:
    analytics = {"userTableStats": [{"promptCreditsUsed": 300}], **JAN}
    assert combine(None, analytics).pools["prompt"] == PoolValues(used=300)
    balance = {"promptCreditsPerSeat": 500, "numSeats": 2, **JAN}
    assert combine(balance, None).pools["prompt"] == PoolValues(limit=1000)
