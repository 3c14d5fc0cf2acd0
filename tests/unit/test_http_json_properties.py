"""Property tests of the http_json provider: whatever an API answers, the parser returns a
Reading or raises PollError(BAD_RESPONSE), never anything else; whatever a config holds, loading
it returns a Config or raises ConfigError."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.config import parse_config
from exporter.configfile import ConfigError
from exporter.model import PollError, Reading, Reason
from exporter.providers import create_provider
from exporter.providers.http_json import (
    PRESETS,
    HttpJson,
    parse_path,
    read_number,
    read_timestamp,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)  # json.loads accepts NaN and Infinity
    | st.text(max_size=12)
    | st.sampled_from(["12.5", "-3", "1e999", "nan", "2026-12-01", "2026-12-01T00:00:00Z", "USD"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["data", "currency"]), inner, max_size=4
        )
    ),
    max_leaves=20,
)

EXAMPLES: dict[str, Any] = {
    "openrouter": {"data": {"total_credits": 100.5, "total_usage": 25.75}},
    "deepl": {
        "character_count": 180118,
        "character_limit": 1000000000000,
        "start_time": "2026-11-05T09:18:42Z",
        "end_time": "2026-12-05T09:18:42Z",
    },
    "elevenlabs": {
        "character_count": 17231,
        "character_limit": 100000,
        "next_character_count_reset_unix": 1738356858,
    },
    "hunter": {
        "data": {
            "reset_date": "2026-12-09",
            "requests": {
                "credits": {"used": 15, "available": 1000},
                "searches": {"used": 10, "available": 500},
                "verifications": {"used": 5, "available": 1000},
            },
        }
    },
    "twilio": {"account_sid": "AC1", "balance": "12.34", "currency": "USD"},
    "deepseek": {
        "is_available": True,
        "balance_infos": [
            {"currency": "CNY", "total_balance": "110.00", "granted_balance": "10.00"},
            {"currency": "USD", "total_balance": "1.00", "granted_balance": "0.00"},
        ],
    },
    "serpapi": {
        "searches_per_month": 30000,
        "plan_searches_left": 5958,
        "extra_credits": 10,
        "this_month_usage": 24042,
        "plan_renewal_date": "2026-12-17",
    },
    "telnyx": {
        "data": {
            "balance": "300.00",
            "currency": "USD",
            "credit_limit": "100.00",
            "available_credit": "400.00",
        }
    },
    "firecrawl": {
        "success": True,
        "data": {
            "remainingCredits": 1000,
            "planCredits": 500000,
            "billingPeriodStart": "2025-01-01T00:00:00Z",
            "billingPeriodEnd": None,
        },
    },
    "sendgrid": {
        "remain": 200,
        "total": 200,
        "used": 0,
        "last_reset": "2013-01-01",
        "next_reset": "2013-02-01",
    },
    "vonage": {"value": 10.28, "autoReload": False},
    "plivo": {"auth_id": "MA1", "cash_credits": "1.80900"},
    "moonshot": {"code": 0, "data": {"available_balance": 49.58894}, "status": True},
    "zerobounce": {"Credits": 2375323},
    "crustdata": {"credits": 9406.5},
    "lusha": {"credits": {"total": 10000, "used": 1500, "remaining": 8500}},
    "boldsign": {"BalanceCredits": 100},
    "dropcontact": {"credits": 1250},
    "anticaptcha": {"errorId": 0, "balance": 12.3456, "captchaCredits": 85000},
    "generic": {
        "r": "150",
        "u": 50,
        "l": None,
        "rows": [["Email Credits", 7], ["SMS", "8.5"]],
        "exp": 1_798_761_600_000,
        "start": "2026-11-01T00:00:00+01:00",
        "end": "2027-01-01",
    },
}

GENERIC = """
name: g
provider: http_json
provider_name: acme
api_key: k
request: {url: "https://x.example/q"}
auth: {type: bearer}
pools:
  main: {remaining: r, used: u, limit: l, unlimited: [null, -1, "unlimited"], scale: 0.01}
  rows: {for_each: rows, name: "[0]", remaining: "[1]", optional: true, unit: "{pool}"}
expiry: {path: exp, format: epoch_ms}
cycle_start: {path: start, optional: true}
cycle_end: {path: end, format: date, optional: true}
"""


def make(name: str) -> HttpJson:
    if name == "generic":
        account = yaml.safe_load(GENERIC)
    else:
        params = {"account_sid": "AC1", "auth_id": "MA1", "vonage_api_key": "abcd1234"}
        account = {"name": "a", "provider": name, "api_key": "k", "params": params}
    p = create_provider(parse_config(yaml.safe_dump({"accounts": [account]}), env={}).accounts[0])
    assert isinstance(p, HttpJson)
    return p


PROVIDERS = {name: make(name) for name in EXAMPLES}
assert set(PROVIDERS) == {*PRESETS, "generic"}


def parse_or_bad(p: HttpJson, data: Any) -> Reading | None:
    try:
        reading = p.parse(data)
    except PollError as exc:
        # bad_response, or what an error_when rule of the account says the answer means.
        declared = {rule.reason for rule in p.account.error_when}
        assert exc.reason is Reason.BAD_RESPONSE or exc.reason.value in declared
        assert exc.message and "\n" not in exc.message
        return None
    assert isinstance(reading, Reading)
    for values in reading.pools.values():
        for v in (values.remaining, values.used, values.limit):
            assert v is None or math.isfinite(v)
    for ts in (
        reading.expiry_timestamp,
        reading.cycle_start_timestamp,
        reading.cycle_end_timestamp,
    ):
        assert ts is None or 0 <= ts <= 253402300799
    return reading


@SETTINGS
@given(name=st.sampled_from(sorted(EXAMPLES)), data=json_values)
def test_any_json_is_a_reading_or_bad_response(name: str, data: Any) -> None:
    parse_or_bad(PROVIDERS[name], data)


def mutated(doc: Any) -> st.SearchStrategy[Any]:
    """The documented answer with some parts kept, some dropped, some replaced by anything:
    reaches the checks deep inside a nearly right answer."""
    if isinstance(doc, dict):
        items = {k: st.one_of(mutated(v), json_values, st.just(_DROP)) for k, v in doc.items()}
        return st.fixed_dictionaries(items).map(
            lambda d: {k: v for k, v in d.items() if v is not _DROP}
        )
    if isinstance(doc, list):
        return st.lists(st.one_of(*(mutated(v) for v in doc), json_values), max_size=4)
    return st.one_of(st.just(doc), scalars)


_DROP = object()


@SETTINGS
@given(data=st.data())
def test_nearly_right_answers(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(EXAMPLES)))
    doc = data.draw(mutated(EXAMPLES[name]))
    parse_or_bad(PROVIDERS[name], doc)


def test_documented_examples_parse() -> None:
    for name, doc in EXAMPLES.items():
        assert parse_or_bad(PROVIDERS[name], doc) is not None, name


amounts = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)


@SETTINGS
@given(total=amounts, used=amounts, as_string=st.booleans())
def test_openrouter_values_round_trip(total: float, used: float, as_string: bool) -> None:
    def enc(x: float) -> Any:
        return repr(x) if as_string else x

    reading = PROVIDERS["openrouter"].parse(
        {"data": {"total_credits": enc(total), "total_usage": enc(used)}}
    )
    pool = reading.pools["credits"]
    assert (pool.limit, pool.used, pool.remaining) == (total, used, total - used)


@SETTINGS
@given(
    balances=st.dictionaries(
        st.from_regex(r"[A-Z]{3}", fullmatch=True), amounts, min_size=0, max_size=5
    )
)
def test_deepseek_one_pool_per_currency(balances: dict[str, float]) -> None:
    doc = {
        "balance_infos": [{"currency": c, "total_balance": f"{v:.2f}"} for c, v in balances.items()]
    }
    reading = PROVIDERS["deepseek"].parse(doc)
    assert set(reading.pools) == {c.lower() for c in balances}
    for c, v in balances.items():
        assert reading.pools[c.lower()].remaining == float(f"{v:.2f}")


@SETTINGS
@given(st.text(max_size=20))
def test_any_path_text_parses_or_is_invalid(text: str) -> None:
    try:
        parts = parse_path(text)
    except ValueError as exc:
        assert "invalid path" in str(exc)
    else:
        assert all(isinstance(p, str | int) for p in parts)


@SETTINGS
@given(scalars | json_values, st.sampled_from(["auto", "iso", "date", "epoch", "epoch_ms"]))
def test_timestamps_and_numbers_never_crash(raw: Any, fmt: str) -> None:
    calls: list[Callable[[], float | None]] = [
        lambda: read_timestamp(raw, "t", fmt),
        lambda: read_number(raw, "n"),
    ]
    for call in calls:
        try:
            value = call()
        except PollError as exc:
            assert exc.reason is Reason.BAD_RESPONSE
        else:
            assert value is None or math.isfinite(value)


ACCOUNT_KEYS = [
    "provider_name",
    "params",
    "request",
    "auth",
    "pools",
    "expiry",
    "cycle_start",
    "cycle_end",
    "endpoint",
    "base_url",
    "base_url_if_key_suffix",
    "error_message",
]


@SETTINGS
@given(
    provider=st.sampled_from(["http_json", *sorted(PRESETS)]),
    fields=st.dictionaries(st.sampled_from(ACCOUNT_KEYS), json_values, max_size=6),
)
def test_any_account_config_loads_or_is_a_config_error(
    provider: str, fields: dict[str, Any]
) -> None:
    account = {"name": "a", "provider": provider, "api_key": "key-123456", **fields}
    try:
        text = yaml.safe_dump({"accounts": [account]})
    except yaml.YAMLError:
        return
    try:
        config = parse_config(text, env={})
    except ConfigError as exc:
        assert exc.errors and all(e.startswith("accounts[0]") for e in exc.errors)
        assert not any("key-123456" in e for e in exc.errors)
    else:
        create_provider(config.accounts[0])
