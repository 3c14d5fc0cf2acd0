"""The HTTP client against hostile answers from a real loopback server: any status with any
body bytes comes out as a Response or a classified PollError, whose message is short and never
holds the key; bodies nested past the interpreter's limits and numbers past any float are
bad_response; the body cap is per endpoint, declared by the provider, unless the config sets
``max_response_size``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.accounts import parse_size
from exporter.config import parse_config
from exporter.http import HttpClient, Response
from exporter.model import PollError, Reason, reason_for_status
from exporter.providers import create_provider
from exporter.scheduler import Scheduler
from exporter.simulator import Simulator
from exporter.store import Store
from support import account_client
from support.leaks import find_secrets
from support.servers import AppThread

KEY = "sk_http_hardening_0123456789abcdef"


class Upstream:
    """Serves whatever ``status``, ``body`` and ``content_type`` were set last."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b"{}"
        self.content_type = "application/json"
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.thread = AppThread(app)

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(
            status=self.status, body=self.body, headers={"Content-Type": self.content_type}
        )


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    up.thread.start()
    yield up
    up.thread.stop()


def call(upstream: Upstream, *, max_body_bytes: int = 1024 * 1024) -> Response | PollError:
    async def go() -> Response:
        async with aiohttp.ClientSession() as session:
            client = account_client(session, secret=KEY, max_body_bytes=max_body_bytes)
            return await client.request_json(
                "GET",
                f"{upstream.thread.url}/x",
                headers={"Authorization": f"Bearer {KEY}"},
                error_message=lambda d: d["message"],
            )

    try:
        return asyncio.run(go())
    except PollError as exc:
        return exc


STATUSES = [200, 201, 204, 400, 401, 402, 403, 404, 409, 422, 429, 500, 502, 503, 504]
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=12,
    ).map(lambda v: json.dumps(v).encode()),
    # The provider's error message echoing the key, as some APIs do.
    st.text(max_size=50).map(lambda t: json.dumps({"message": f"{t} {KEY} {t}"}).encode()),
    st.text(max_size=500).map(lambda t: json.dumps({"message": t * 3}).encode()),
)


@settings(max_examples=60, deadline=None)
@given(
    status=st.sampled_from(STATUSES),
    body=bodies,
    ctype=st.sampled_from(["application/json", "text/html", "text/plain; charset=utf-8"]),
)
def test_any_answer_is_a_response_or_a_classified_error(
    upstream: Upstream, status: int, body: bytes, ctype: str
) -> None:
    upstream.status, upstream.body, upstream.content_type = status, body, ctype
    outcome = call(upstream)
    if isinstance(outcome, PollError):
        assert find_secrets(f"{outcome.message} {outcome}", [KEY]) == []
        assert len(outcome.message) <= 250, outcome.message
        if status >= 400:
            assert outcome.reason is reason_for_status(status)
            assert outcome.status == status
        else:
            assert outcome.reason is Reason.BAD_RESPONSE
    else:
        assert 200 <= status < 300
        assert json.dumps(outcome.data) == json.dumps(json.loads(body))


def test_nesting_deeper_than_the_stack_is_bad_response(upstream: Upstream) -> None:
    upstream.status, upstream.content_type = 200, "application/json"
    upstream.body = b"[" * 200_000 + b"]" * 200_000
    outcome = call(upstream)
    assert isinstance(outcome, PollError) and outcome.reason is Reason.BAD_RESPONSE


def test_integer_beyond_any_float_is_bad_response(upstream: Upstream) -> None:
    upstream.status, upstream.content_type = 200, "application/json"
    upstream.body = b'{"balance": 1' + b"0" * 5000 + b"}"
    outcome = call(upstream)
    assert isinstance(outcome, PollError) and outcome.reason is Reason.BAD_RESPONSE


def test_per_account_cap(upstream: Upstream) -> None:
    upstream.status, upstream.content_type = 200, "application/json"
    upstream.body = json.dumps({"pad": "x" * 5000}).encode()
    assert isinstance(call(upstream, max_body_bytes=10_000), Response)
    outcome = call(upstream, max_body_bytes=4096)
    assert isinstance(outcome, PollError) and outcome.reason is Reason.BAD_RESPONSE
    assert "4096-byte cap" in outcome.message


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1MiB", 1024**2),
        ("512KiB", 512 * 1024),
        ("512 kib", 512 * 1024),
        ("2MB", 2_000_000),
        ("1.5MiB", 1024**2 * 3 // 2),
        ("1GiB", 1024**3),
        (4096, 4096),
        ("4096", 4096),
    ],
)
def test_sizes(text: Any, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["", "1 MiB MiB", "lots", "1TiB", "2GiB", "100", 0, -5, True, 1.5, "1Mb/s"]
)
def test_bad_sizes(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


async def test_account_cap_reaches_the_provider(upstream: Upstream) -> None:
    """max_response_size from defaults and per account, through the scheduler to the call."""
    upstream.status, upstream.content_type = 200, "application/json"
    upstream.body = json.dumps({"balance": 5, "pad": "x" * 3000}).encode()
    base = f"{upstream.thread.url}/api"
    config = parse_config(
        f"""
defaults: {{max_response_size: 2KiB}}
accounts:
  - {{name: small, provider: fullenrich, api_key: {KEY}, base_url: "{base}"}}
  - {{name: large, provider: fullenrich, api_key: {KEY}x, base_url: "{base}", max_response_size: 8KiB}}
""",
        env={},
    )
    assert [a.max_response_size for a in config.accounts] == [2048, 8192]
    store = Store()
    store.set_accounts(config.accounts)
    async with aiohttp.ClientSession() as session:
        scheduler = Scheduler(store, HttpClient(session), config)
        small = await scheduler.poll_once(store.accounts["small"], "balance")
        large = await scheduler.poll_once(store.accounts["large"], "balance")
    assert small is not None and small.reason is Reason.BAD_RESPONSE and "cap" in small.message
    assert large is None
    reading = store.accounts["large"].endpoints["balance"].reading
    assert reading is not None and reading.pools["workspace"].remaining == 5


def test_max_response_size_config_errors() -> None:
    from exporter.configfile import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config(
            "defaults: {max_response_size: huge}\n"
            "accounts: [{name: a, provider: fullenrich, api_key: k1234, max_response_size: 10}]",
            env={},
        )
    assert info.value.errors == [
        'defaults.max_response_size: invalid size "huge" (use e.g. 1MiB, 512KiB, 2MB or bytes)',
        'accounts[0].max_response_size: size "10" is out of range (1KiB to 1GiB)',
    ]


async def test_stored_errors_hold_no_frames(upstream: Upstream) -> None:
    """The store keeps each endpoint's last error for the status page: a detached copy, so it
    does not keep the failed call's frames (and up to a whole capped body) alive."""
    upstream.status, upstream.content_type = 200, "application/json"
    upstream.body = b" " * (2 * 1024 * 1024)
    config = parse_config(
        f'accounts: [{{name: a, provider: fullenrich, api_key: {KEY}, base_url: "{upstream.thread.url}"}}]',
        env={},
    )
    store = Store()
    store.set_accounts(config.accounts)
    async with aiohttp.ClientSession() as session:
        error = await Scheduler(store, HttpClient(session), config).poll_once(
            store.accounts["a"], "balance"
        )
    stored = store.accounts["a"].endpoints["balance"].last_error
    assert error is stored and stored is not None and "cap" in stored.message
    assert stored.__traceback__ is None
    assert stored.__context__ is None and stored.__cause__ is None


#: Windsurf conversations per busy day: CascadeAnalytics answers a row per day, model, mode and
#: conversation, so a team this busy answers 30 days in about 1.2 MB, past the 1 MiB default.
BUSY = 70


async def test_windsurf_consumption_has_its_own_cap_and_the_config_still_wins() -> None:
    """A team's CascadeAnalytics answer passes 1 MiB: the provider declares a larger cap for
    that endpoint (the balance keeps 1 MiB), and a max_response_size the config sets, the
    account's own or the defaults', is the cap of every endpoint. The refusal names the key
    to raise."""
    sim = Simulator()
    await sim.start()
    today = datetime.now(UTC).date()
    days = {(today - timedelta(days=n)).isoformat(): 100.0 for n in range(30)}
    keys = {name: f"ws-cap-{name}-{KEY}" for name in ("big", "capped", "by_default")}
    for key in keys.values():
        sim.add_account("windsurf", key, cascade_days=days, cascade_conversations=BUSY)
    base = sim.base_url("windsurf")

    def account(name: str, extra: str = "") -> str:
        return (
            f'  - {{name: {name}, provider: windsurf, api_key: {keys[name]}, base_url: "{base}", '
            f"consumption: {{}}{extra}}}\n"
        )

    accounts = parse_config(
        "accounts:\n" + account("big") + account("capped", ", max_response_size: 1MiB"),
        env={},
    )
    defaults = parse_config(
        "defaults: {max_response_size: 1MiB}\naccounts:\n" + account("by_default"), env={}
    )
    store = Store()
    try:
        async with aiohttp.ClientSession() as session:
            results = {}
            for config in (accounts, defaults):
                store.set_accounts(config.accounts)
                scheduler = Scheduler(store, HttpClient(session), config)
                for state in store.accounts.values():
                    results[state.name] = await scheduler.poll_once(state, "consumption")
                if "big" in store.accounts:
                    merged = store.accounts["big"].merged(store.clock())
    finally:
        await sim.stop()
    assert results["big"] is None
    assert merged.consumption["team"]["30d"] == 3000  # every row read
    big = create_provider(accounts.accounts[0])
    assert big.max_response_size("consumption") == 32 * 1024 * 1024
    assert big.max_response_size("balance") == 1024 * 1024
    for name in ("capped", "by_default"):
        error = results[name]
        assert error is not None and error.reason is Reason.BAD_RESPONSE, error
        assert "1048576-byte cap" in error.message and "max_response_size" in error.message
