"""Per-key rate limits: config syntax, header parsing, pacing, holds, and the scheduler sharing
one limiter between every loop on a key (against a real loopback server)."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator

import pytest

from exporter.accounts import parse_rate_limit
from exporter.config import parse_config
from exporter.configfile import ConfigError
from exporter.ratelimit import KeyLimiter, RateLimits, effective_rate, key_of, rate_windows
from support.polling import Polling, polling


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("4/s", 4.0),
        ("60/m", 1.0),
        ("60/min", None),
        ("1000/h", 1000 / 3600),
        ("500/d", 500 / 86400),
        ("10/5m", 10 / 300),
        ("1.5/s", 1.5),
        (" 3 / 2s ", 1.5),
        ("unlimited", math.inf),
        ("Unlimited", math.inf),
    ],
)
def test_parse_rate_limit(text: str, per_second: float | None) -> None:
    if per_second is None:
        with pytest.raises(ValueError, match="invalid rate limit"):
            parse_rate_limit(text)
    else:
        assert parse_rate_limit(text) == pytest.approx(per_second)


def test_rate_limit_config_errors_are_located() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(
            """
providers:
  theirstack: {rate_limit: 4 per second}
  fullenrich: {rate_limit: 0/m}
accounts:
  - {name: a, provider: fullenrich, api_key: k, rate_limit: 5}
  - {name: b, provider: windsurf, api_key: k2, rate_limit: 10/fortnight}
""",
            env={},
        )
    assert exc.value.errors == [
        'providers.theirstack.rate_limit: invalid rate limit "4 per second" (use e.g. 4/s, '
        "60/m, 1000/h, 10/5m or unlimited)",
        'providers.fullenrich.rate_limit: rate limit must allow at least some requests, got "0/m"',
        "accounts[0].rate_limit: invalid rate limit 5 (use e.g. 4/s, 60/m, 1000/h, 10/5m or "
        "unlimited)",
        'accounts[1].rate_limit: invalid rate limit "10/fortnight": bad period "fortnight" '
        "(use e.g. 4/s, 60/m, 1000/h, 10/5m or unlimited)",
    ]


def test_effective_rate_precedence_and_documented_defaults() -> None:
    cfg = parse_config(
        """
providers:
  windsurf: {rate_limit: 2/s}
accounts:
  - {name: ts, provider: theirstack, api_key: k1}
  - {name: fe, provider: fullenrich, api_key: k2}
  - {name: ws, provider: windsurf, api_key: k3}
  - {name: ws-own, provider: windsurf, api_key: k4, rate_limit: 1/m}
  - {name: fe-off, provider: fullenrich, api_key: k5, rate_limit: unlimited}
""",
        env={},
    )
    rates = {a.name: effective_rate(a, cfg) for a in cfg.accounts}
    assert rates == {
        "ts": 4.0,  # TheirStack: 4 requests/s per key
        "fe": 1.0,  # FullEnrich: 60/min per key
        "ws": 2.0,  # the provider setting
        "ws-own": pytest.approx(1 / 60),  # the account's own
        "fe-off": math.inf,
    }


def test_presets_documented_rate_limits() -> None:
    """A preset's documented limit is its default, below the provider setting and the account's
    own; a generic account may declare one too. Accounts sharing a key share the lowest."""
    cfg = parse_config(
        """
providers:
  lusha: {rate_limit: 10/m}
accounts:
  - {name: captcha, provider: anticaptcha, api_key: k1}
  - {name: verify, provider: zerobounce, api_key: k2}
  - {name: esign, provider: boldsign, api_key: k3}
  - {name: enrich, provider: crustdata, api_key: k4}
  - {name: prospects, provider: lusha, api_key: k5}
  - {name: enrich-own, provider: crustdata, api_key: k6, rate_limit: 1/s}
  - {name: search, provider: serpapi, api_key: k7}
  - name: acme
    provider: http_json
    provider_name: acme
    api_key: k8
    request: {url: "https://x.example/q"}
    auth: {type: bearer}
    pools: {c: {remaining: a}}
    documented_rate_limit: 2/m
""",
        env={},
    )
    rates = {a.name: effective_rate(a, cfg) for a in cfg.accounts}
    assert rates == {
        "captcha": pytest.approx(1 / 30),  # "no more than once every 30 seconds"
        "verify": pytest.approx(180 / 3600),  # under the 200 bad-key calls an hour
        "esign": pytest.approx(2000 / 3600),
        "enrich": 5.0,  # 300 a minute
        "prospects": pytest.approx(10 / 60),  # the provider setting wins over the 5/m
        "enrich-own": 1.0,
        "search": math.inf,  # nothing documented
        "acme": pytest.approx(2 / 60),
    }


def test_accounts_sharing_a_key_share_one_limiter_at_the_lowest_rate() -> None:
    cfg = parse_config(
        """
accounts:
  - {name: a, provider: fullenrich, api_key: same, rate_limit: 5/s}
  - {name: b, provider: fullenrich, api_key: same, rate_limit: 2/s}
  - {name: c, provider: fullenrich, api_key: other}
  - {name: d, provider: theirstack, api_key: same}
""",
        env={},
    )
    limits = RateLimits()
    limits.configure(cfg)
    a, b, c, d = (limits.for_account(x) for x in cfg.accounts)
    assert a is b and a.rate == 2.0
    assert c is not a and d is not a  # another key; the same key at another provider
    assert len(limits) == 3
    assert "same" not in repr(key_of(cfg.accounts[0]))  # only a digest of the key is kept

    # A reload keeps the state of keys still in use and drops the others.
    a.hold(30, "test")
    limits.configure(cfg.model_copy(update={"accounts": cfg.accounts[:1]}))
    assert limits.for_account(cfg.accounts[0]) is a and a.rate == 5.0
    assert len(limits) == 1


@pytest.mark.parametrize(
    ("headers", "windows"),
    [
        ({"ratelimit": '"per-second";r=3;t=1;pk="ab,c", "per-minute";r=9;t=60'}, [(3, 1), (9, 60)]),
        ({"ratelimit": "limit=100, remaining=0, reset=7"}, [(0, 7)]),
        ({"ratelimit-remaining": "5", "ratelimit-reset": "2"}, [(5, 2)]),
        ({"x-ratelimit-remaining": "1", "x-ratelimit-reset": "1800000030"}, [(1, 30)]),
        ({"ratelimit-remaining": "5"}, []),  # no reset: nothing to pace by
        ({"ratelimit": "garbage;;=", "ratelimit-remaining": "x", "ratelimit-reset": "1"}, []),
        ({}, []),
    ],
)
def test_rate_windows(headers: dict[str, str], windows: list[tuple[float, float]]) -> None:
    assert rate_windows(headers, now=1_800_000_000) == windows


class FakeTime:
    """A clock that only moves when every task is asleep (a virtual-time loop in miniature)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, fut))
        await fut

    async def run_until_idle(self, tasks: list[asyncio.Task[float]]) -> list[float]:
        while not all(t.done() for t in tasks):
            for _ in range(5):
                await asyncio.sleep(0)
            if self.sleepers and not any(f.done() for _, f in self.sleepers):
                when, fut = min(self.sleepers, key=lambda s: s[0])
                self.sleepers.remove((when, fut))
                self.now = max(self.now, when)
                fut.set_result(None)
        return [t.result() for t in tasks]


async def turns(limiter: KeyLimiter, ft: FakeTime, n: int) -> list[float]:
    async def one() -> float:
        await limiter.acquire()
        return ft.now

    return await ft.run_until_idle([asyncio.create_task(one()) for _ in range(n)])


async def test_requests_are_paced_evenly_in_order() -> None:
    ft = FakeTime()
    limiter = KeyLimiter(4.0, clock=ft.clock, sleep=ft.sleep)
    assert await turns(limiter, ft, 5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    ft.now = 10.0  # idle for a while: no burst is saved up
    assert await turns(limiter, ft, 2) == [10.0, 10.25]


async def test_unlimited_does_not_wait() -> None:
    ft = FakeTime()
    limiter = KeyLimiter(math.inf, clock=ft.clock, sleep=ft.sleep)
    assert await turns(limiter, ft, 3) == [0.0, 0.0, 0.0]


async def test_headers_slow_the_key_down_before_a_429() -> None:
    ft = FakeTime()
    limiter = KeyLimiter(math.inf, clock=ft.clock, sleep=ft.sleep)
    # 4 requests left in the next 10 s: the next goes after 2.5 s, and the ones after keep that
    # pace until the window resets.
    limiter.observe(200, {"ratelimit": '"per-minute";r=4;t=10'})
    assert await turns(limiter, ft, 4) == [2.5, 5.0, 7.5, 10.0]
    assert await turns(limiter, ft, 2) == [10.0, 10.0]  # a new window: no pace known
    # None left: wait for the reset.
    limiter.observe(200, {"ratelimit-remaining": "0", "ratelimit-reset": "30"})
    assert await turns(limiter, ft, 1) == [40.0]


async def test_a_429_holds_every_waiter_then_they_go_paced() -> None:
    ft = FakeTime()
    limiter = KeyLimiter(1.0, clock=ft.clock, sleep=ft.sleep)
    tasks_done = asyncio.create_task(turns(limiter, ft, 3))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # Three loops reserved the turns 0, 1 and 2; the first went. Its 429 with Retry-After: 10
    # holds the two others, which then go one turn apart, not together.
    limiter.observe(429, {"retry-after": "10"})
    assert await tasks_done == [0.0, 10.0, 11.0]


async def test_429_without_hints_holds_a_second_and_retry_after_wins() -> None:
    ft = FakeTime()
    limiter = KeyLimiter(math.inf, clock=ft.clock, sleep=ft.sleep)
    limiter.observe(429, {})
    assert await turns(limiter, ft, 1) == [1.0]
    limiter.observe(429, {"retry-after": "7", "ratelimit-remaining": "0", "ratelimit-reset": "3"})
    assert await turns(limiter, ft, 1) == [8.0]
    limiter.observe(503, {})  # a 503 without Retry-After is not a rate limit
    assert await turns(limiter, ft, 1) == [8.0]


async def test_a_hold_is_capped_at_a_day() -> None:
    ft = FakeTime()
    limiter = KeyLimiter(math.inf, clock=ft.clock, sleep=ft.sleep)
    limiter.observe(200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "999999"})
    assert await turns(limiter, ft, 1) == [86400.0]


# --------------------------------------------------------------------------- with the scheduler


@pytest.fixture
async def rig(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Polling]:
    async with polling(monkeypatch) as rig:
        yield rig


def on_keys(base: str, keys: dict[str, str], interval: str, rate_limit: str) -> str:
    """Fullenrich accounts by name -> API key, all polled every ``interval``."""
    return "accounts:\n" + "\n".join(
        f"  - {{name: {name}, provider: fullenrich, api_key: {key}, base_url: '{base}', "
        f"interval: {interval}, rate_limit: {rate_limit}}}"
        for name, key in keys.items()
    )


async def test_loops_on_one_key_share_its_pace(rig: Polling) -> None:
    keys = {"a": "shared", "b": "shared", "c": "shared", "d": "own"}
    sched = await rig.start(on_keys(rig.base, keys, "0.2s", "10/s"))
    await rig.time.run(sched, 1.2)
    shared = rig.upstream.calls["shared"]
    # Three loops that would make 15 calls per second between them get 10 per second, spaced.
    assert len(shared) <= 13
    assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(shared)), shared
    # Another key is not held back by them: its loop polls every 0.2 s (+-10%).
    assert len(rig.upstream.calls["own"]) >= 6


async def test_headers_pace_the_key_without_a_configured_limit(rig: Polling) -> None:
    rig.upstream.headers["k"] = {"RateLimit-Remaining": "1", "RateLimit-Reset": "1"}
    sched = await rig.start(on_keys(rig.base, {"a": "k"}, "0.1s", "unlimited"))
    await rig.time.run(sched, 1.5)
    calls = rig.upstream.calls["k"]
    assert 2 <= len(calls) <= 3  # one a second, not ten
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(calls)), calls


async def test_429_holds_other_loops_on_the_key(rig: Polling) -> None:
    rig.upstream.status["k"] = 429
    rig.upstream.headers["k"] = {"Retry-After": "1"}
    sched = await rig.start(on_keys(rig.base, dict.fromkeys("abc", "k"), "5s", "10/s"))
    await rig.time.run(sched, 0.6)
    # The three loops take turns 0.1 s apart; the first one's 429 holds the key for a second,
    # so the two others wait instead of running into the same 429.
    calls = rig.upstream.calls["k"]
    assert len(calls) == 1
    polls = sum(s.endpoints["balance"].polls_total for s in rig.store.accounts.values())
    assert polls == len(calls)
