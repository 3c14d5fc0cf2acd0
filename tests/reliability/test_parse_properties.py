"""Property tests: whatever JSON a provider's API answers, its parsing yields a Reading or a
classified PollError, never another exception, a non-finite number or an unbounded message.

Generic over providers: every provider registered in ``exporter.providers.PROVIDERS`` is driven
through its real ``fetch`` (so whatever parsing it does is covered) with an HTTP client stub
that answers 200 with the generated JSON, read by the real client. Sample accounts and known-good bodies come from
provider_samples.py; a provider that registers nothing is still tested with a minimal account.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exporter.accounts import AccountBase
from exporter.config import Config, parse_config
from exporter.configfile import ConfigError
from exporter.http import Exchange, HttpClient
from exporter.model import PollError, Reading, Reason
from exporter.providers import PROVIDERS, Provider, create_provider
from exporter.providers.base import ABSURD
from exporter.scheduler import Scheduler
from exporter.store import Store
from support.leaks import find_secrets
from support.provider_samples import SAMPLES, ProviderSample

MAX_MESSAGE = 300
KEY = "sk_property_test_key_0123456789"


class StubHttp(HttpClient):
    """Answers every call with HTTP 200 and ``data`` as its JSON body; the account's client
    reads it as it reads any answer (the provider's own ``classify`` included)."""

    def __init__(self, data: Any) -> None:
        self.body = json.dumps(data).encode()
        self.calls = 0
        self.user_agent = "test"

    async def exchange(self, method: str, url: str, **kwargs: Any) -> Exchange:
        self.calls += 1
        return Exchange(200, {"content-type": "application/json"}, self.body)


# --------------------------------------------------------------------------- targets


def _known_keys(value: Any, out: set[str]) -> set[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(k)
            _known_keys(v, out)
    elif isinstance(value, list):
        for v in value:
            _known_keys(v, out)
    return out


def provider_names() -> list[str]:
    return sorted(PROVIDERS)


def make_account(name: str, extra: Mapping[str, Any]) -> AccountBase:
    import yaml

    account = {"name": "prop", "provider": name, "api_key": KEY, **extra}
    try:
        config = parse_config(yaml.safe_dump({"accounts": [account]}), env={})
    except ConfigError as exc:
        pytest.fail(
            f"provider {name!r}: the sample account does not validate ({exc.errors}); register "
            "a ProviderSample with the options it needs in tests/reliability/provider_samples.py"
        )
    return config.accounts[0]


def make_provider(name: str, extra: Mapping[str, Any]) -> Provider:
    return create_provider(make_account(name, extra))


def targets() -> list[tuple[str, int, str]]:
    """(provider, account variant, endpoint) for every registered provider."""
    out = []
    for name in provider_names():
        sample = SAMPLES.get(name, ProviderSample())
        for variant, extra in enumerate(sample.accounts):
            try:
                provider = make_provider(name, extra)
            except pytest.fail.Exception:
                out.append((name, variant, "<invalid sample account>"))
                continue
            out.extend((name, variant, endpoint) for endpoint in provider.endpoints)
    return out


TARGETS = targets()
ALL_KEYS = sorted(
    {k for s in SAMPLES.values() for body in s.good.values() for k in _known_keys(body, set())}
)


# --------------------------------------------------------------------------- strategies

# The key itself, alone or inside text: whatever a parser quotes, the key never shows.
with_key = st.just(KEY) | st.text(max_size=8).map(lambda t: f"{t}{KEY}{t}")
number_strings = st.from_regex(r"-?\d{1,20}(\.\d{1,6})?([eE][+-]?\d{1,3})?", fullmatch=True)
date_strings = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "",
            "Z",
            "2026-11-01T00:00:00Z",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-23:59",
            "2026-02-30",
            "2026-11-01T25:00:00",
        ]
    ),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e18, max_value=1e18),
    st.text(max_size=30),
    with_key,
    number_strings,
    date_strings,
)
keys = st.one_of(st.text(max_size=12), st.sampled_from(ALL_KEYS)) if ALL_KEYS else st.text()
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(keys, children, max_size=8),
    max_leaves=20,
)


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with random parts dropped, retyped or replaced, recursively."""
    choice = draw(st.integers(0, 11))
    if choice == 0:
        return draw(json_values)
    if choice == 1:
        return draw(leaves)
    if choice == 2 and not isinstance(value, dict | list):
        return draw(with_key)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            action = draw(st.sampled_from(("keep", "keep", "drop", "mutate", "null")))
            if action == "keep":
                out[k] = v
            elif action == "mutate":
                out[k] = draw(mutated(v))
            elif action == "null":
                out[k] = None
        if draw(st.booleans()):
            out[draw(keys)] = draw(json_values)
        return out
    if isinstance(value, list):
        items = [draw(mutated(v)) for v in value]
        if draw(st.booleans()):
            items.append(draw(mutated(value[0])) if value else draw(json_values))
        drop = draw(st.booleans())
        if items and drop:
            del items[draw(st.integers(0, len(items) - 1))]
        return items
    return value


# --------------------------------------------------------------------------- the property


def finite(x: Any) -> bool:
    return isinstance(x, float | int) and not isinstance(x, bool) and math.isfinite(x)


def check_reading(provider: Provider, reading: Reading) -> None:
    assert isinstance(reading, Reading)
    for pool, values in reading.pools.items():
        assert isinstance(pool, str)
        for v in (values.remaining, values.used, values.limit):
            assert v is None or finite(v), (pool, values)
    for ts in (
        reading.expiry_timestamp,
        reading.cycle_start_timestamp,
        reading.cycle_end_timestamp,
        reading.seats,
    ):
        assert ts is None or finite(ts), reading
    for group in (reading.consumption, reading.daily_consumption):
        for windows in group.values():
            assert all(finite(v) for v in windows.values()), group
    # Whatever survived parsing also survives the provider's derive step.
    derived = provider.derive(reading, {endpoint: reading for endpoint in provider.endpoints})
    for values in derived.pools.values():
        for v in (values.remaining, values.used, values.limit):
            assert v is None or finite(v)
    assert all(isinstance(note, str) and "\n" not in note for note in derived.notes.values())


def check_outcome(account: AccountBase, endpoint: str, data: Any) -> Reading | PollError:
    """Poll once through the real scheduler path with ``data`` as the answer, and check what
    the store kept: a sane reading, or an error that is classified (never reason ``internal``,
    the scheduler's verdict on an exception that escaped parsing), short, and free of the key."""
    http = StubHttp(data)
    store = Store()
    store.set_accounts([account])
    state = store.accounts[account.name]
    scheduler = Scheduler(store, http, Config.model_construct(accounts=[account]))
    loop = asyncio.new_event_loop()
    try:
        error = loop.run_until_complete(scheduler.poll_once(state, endpoint))
    finally:
        loop.close()
    assert http.calls >= 1
    ep = state.endpoints[endpoint]
    if error is not None:
        assert ep.last_error is error and ep.reading is None
        assert error.reason is not Reason.INTERNAL, error.message
        assert isinstance(error.message, str) and len(error.message) <= MAX_MESSAGE
        assert "\n" not in error.message
        assert find_secrets(f"{error.message} {error}", [KEY]) == []
        # Parsing says BAD_RESPONSE, or what an http_json error_when rule declares; a
        # provider's own classify() may name another reason.
        declared = {rule.reason for rule in getattr(account, "error_when", ())}
        if error.status is None:
            assert error.reason is Reason.BAD_RESPONSE or error.reason in declared, error
        return error
    assert ep.reading is not None and ep.up is True
    check_reading(state.provider, ep.reading)
    return ep.reading


@pytest.fixture(scope="module")
def providers() -> dict[tuple[str, int], AccountBase]:
    """Accounts by (provider, variant), built on first use (a provider whose sample does not
    validate fails its own tests only)."""
    return {}


def _target(
    providers: dict[tuple[str, int], AccountBase], name: str, variant: int, endpoint: str
) -> AccountBase:
    if (name, variant) not in providers:
        extra = SAMPLES.get(name, ProviderSample()).accounts[variant]
        providers[(name, variant)] = make_account(name, extra)  # fails for a bad sample
    return providers[(name, variant)]


IDS = [f"{n}-{v}-{e}" for n, v, e in TARGETS]
SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def test_every_provider_is_covered() -> None:
    covered = {name for name, _, _ in TARGETS}
    assert covered == set(provider_names())
    assert {"theirstack", "windsurf", "fullenrich"} <= covered


@pytest.mark.parametrize(("name", "variant", "endpoint"), TARGETS, ids=IDS)
def test_good_sample_parses(
    providers: dict[tuple[str, int], AccountBase], name: str, variant: int, endpoint: str
) -> None:
    good = SAMPLES.get(name, ProviderSample()).good.get(endpoint)
    if good is None:
        pytest.skip(f"no known-good body registered for {name} {endpoint}")
    outcome = check_outcome(_target(providers, name, variant, endpoint), endpoint, good)
    assert isinstance(outcome, Reading), outcome


@pytest.mark.parametrize(("name", "variant", "endpoint"), TARGETS, ids=IDS)
@SETTINGS
@given(data=json_values)
@example(data=None)
@example(data=[])
@example(data={})
@example(data={"balance": 10**400})
@example(data=[{"period_start": "0001-01-01T00:00:00+14:00"}])
@example(data=[{"period_start": KEY}])  # quoted in the message: must come out redacted
def test_any_json_value(
    providers: dict[tuple[str, int], AccountBase], name: str, variant: int, endpoint: str, data: Any
) -> None:
    check_outcome(_target(providers, name, variant, endpoint), endpoint, data)


@pytest.mark.parametrize(("name", "variant", "endpoint"), TARGETS, ids=IDS)
@SETTINGS
@given(seed=st.data())
def test_mutated_good_bodies(
    providers: dict[tuple[str, int], AccountBase],
    name: str,
    variant: int,
    endpoint: str,
    seed: st.DataObject,
) -> None:
    good = SAMPLES.get(name, ProviderSample()).good.get(endpoint)
    if good is None:
        pytest.skip(f"no known-good body registered for {name} {endpoint}")
    data = seed.draw(mutated(good))
    check_outcome(_target(providers, name, variant, endpoint), endpoint, data)


def test_absurd_numbers_are_refused_not_published() -> None:
    account = make_account("fullenrich", {})
    # A negative balance is real (published); implausible ones are not.
    for number in (ABSURD * 10, -ABSURD * 10, float("inf"), float("nan"), 10**400, True):
        outcome = check_outcome(account, "balance", {"balance": number})
        assert isinstance(outcome, PollError) and outcome.reason is Reason.BAD_RESPONSE
