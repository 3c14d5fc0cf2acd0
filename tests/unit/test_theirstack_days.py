"""TheirStack's daily buckets: which local day a ``period_start`` names in both forms a server may
write, days the answer leaves out, buckets dated in the future, and credits_consumed_total."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from exporter.config import parse_config
from exporter.providers import create_provider
from exporter.providers.theirstack import TheirStack
from exporter.simulator import Simulator
from exporter.store import Store

ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati", "America/Havana"]
#: 2026's DST changes: New York springs forward on 03-08 and falls back on 11-01; Havana's
#: 2026-03-08 starts at 01:00 (its DST change falls at midnight).
DAYS = [date(2026, 3, 7) + timedelta(days=n) for n in range(3)] + [
    date(2026, 10, 31) + timedelta(days=n) for n in range(3)
]


def spellings(day: date, tz: ZoneInfo) -> dict[str, str]:
    """Every way a server may write the start of ``day`` in ``tz``."""
    midnight = datetime.combine(day, time(0), tz)
    first_instant = midnight.astimezone(UTC)  # where midnight does not exist: 01:00
    return {
        "offset": midnight.isoformat(),
        "instant_in_utc": first_instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "local_date_labelled_utc": f"{day.isoformat()}T00:00:00Z",
        "no_offset": f"{day.isoformat()}T00:00:00",
    }


def day_of(period_start: str, zone: str, around: date) -> date:
    """The local day the exporter files a bucket starting at ``period_start`` under."""
    now = datetime.combine(around + timedelta(days=1), time(12), ZoneInfo(zone))
    daily = theirstack(zone).parse_consumption([bucket(period_start, 1)], now).daily_consumption
    (day,) = [d for d, v in daily["api"].items() if v == 1]
    return date.fromisoformat(day)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("day", DAYS, ids=str)
def test_both_forms_name_the_same_day(zone: str, day: date) -> None:
    """Issue 11.7: the local midnight written as an instant (offset or Z) and the local date
    mislabelled with Z both name ``day``."""
    for form, text in spellings(day, ZoneInfo(zone)).items():
        assert day_of(text, zone, day) == day, (form, text)


def test_an_instant_within_the_day_is_that_day() -> None:
    ny = "America/New_York"
    assert day_of("2026-11-22T14:15:22Z", ny, date(2026, 11, 22)) == date(2026, 11, 22)
    assert day_of("2026-11-22T03:00:00Z", ny, date(2026, 11, 22)) == date(2026, 11, 21)
    assert day_of("2019-08-24T14:15:22Z", "UTC", date(2019, 8, 24)) == date(2019, 8, 24)


def theirstack(zone: str = "UTC") -> TheirStack:
    text = f"accounts: [{{name: t, provider: theirstack, api_key: k, consumption: {{timezone: {zone}}}}}]"
    p = create_provider(parse_config(text, env={}).accounts[0])
    assert isinstance(p, TheirStack)
    return p


def bucket(start: str, api: float, ui: float = 0) -> dict[str, Any]:
    return {"period_start": start, "api_credits_consumed": api, "ui_credits_consumed": ui}


@pytest.mark.parametrize("zone", ZONES)
def test_windows_in_every_zone_and_form(zone: str) -> None:
    """Today in the account's zone holds today's bucket, whichever form the server writes."""
    tz = ZoneInfo(zone)
    now = datetime(2026, 3, 9, 12, 0, tzinfo=tz)  # the day after New York's DST change
    for form in ("offset", "instant_in_utc", "local_date_labelled_utc"):
        days = [now.date() - timedelta(days=n) for n in range(7)]
        body = [bucket(spellings(d, tz)[form], 10 + n) for n, d in enumerate(days)]
        r = theirstack(zone).parse_consumption(body, now)
        assert r.consumption["api"]["1d"] == 10, form
        assert r.consumption["api"]["7d"] == sum(range(10, 17)), form
        assert r.daily_consumption["api"][days[1].isoformat()] == 11, form


def test_future_buckets_are_ignored_and_noted() -> None:
    """Issue 16.11: a bucket dated later than tomorrow counts nowhere."""
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    r = theirstack().parse_consumption(
        [
            bucket("2026-11-22T00:00:00Z", 5),
            bucket("2026-11-23T00:00:00Z", 1),  # tomorrow: kept (a clock ahead of ours)
            bucket("2099-01-01T00:00:00Z", 1_000_000),
        ],
        now,
    )
    assert "2099-01-01" not in r.daily_consumption["api"]
    assert r.daily_consumption["api"]["2026-11-23"] == 1
    assert r.consumption["api"]["30d"] == 5
    assert r.notes == {"consumption": "ignored day buckets dated after tomorrow in UTC: 2099-01-01"}
    assert theirstack().parse_consumption([bucket("2026-11-22T00:00:00Z", 5)], now).notes == {}


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.t


def store_for(provider: TheirStack, clock: Clock) -> Store:
    store = Store(clock)
    store.set_accounts([provider.account])
    return store


def poll(store: Store, provider: TheirStack, clock: Clock, body: list[dict[str, Any]]) -> float:
    now = datetime.fromtimestamp(clock(), UTC)
    store.record_success("t", "consumption", provider.parse_consumption(body, now), 0.1)
    return store.accounts["t"].counters["api"].total


def test_future_bucket_does_not_freeze_the_counter() -> None:
    """Issue 16.11: a 2099 bucket in the first answer used to become the counter's baseline, so
    no later day ever counted (5 after three days instead of 145)."""
    p, clock = theirstack(), Clock()
    store = store_for(p, clock)
    future = bucket("2099-01-01T00:00:00Z", 1)
    assert poll(store, p, clock, [bucket("2026-11-20T00:00:00Z", 40), future]) == 0
    assert poll(store, p, clock, [bucket("2026-11-20T00:00:00Z", 45), future]) == 5
    clock.t += 86400
    days = [bucket("2026-11-20T00:00:00Z", 45), bucket("2026-11-21T00:00:00Z", 70), future]
    assert poll(store, p, clock, days) == 75
    clock.t += 86400
    assert poll(store, p, clock, [*days, bucket("2026-11-22T00:00:00Z", 70)]) == 145


def test_a_day_missing_from_the_first_answer_counts_when_it_appears() -> None:
    """Issue 11.8: TheirStack may leave a day out (no consumption yet) and list it later: that is
    a revision like any other, and it counts."""
    p, clock = theirstack("America/New_York"), Clock()
    store = store_for(p, clock)
    today = "2026-11-20T00:00:00-05:00"
    assert poll(store, p, clock, [bucket(today, 10)]) == 0  # yesterday left out
    yesterday = "2026-11-19T00:00:00Z"  # the other form, for good measure
    assert poll(store, p, clock, [bucket(yesterday, 7), bucket(today, 10)]) == 7
    assert poll(store, p, clock, [bucket(yesterday, 7), bucket(today, 12)]) == 9
    # A day from before the requested range (30 days) is history from before we watched.
    old = bucket("2026-09-01T00:00:00Z", 500)
    assert poll(store, p, clock, [old, bucket(yesterday, 7), bucket(today, 12)]) == 9


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(clock=lambda: datetime(2026, 3, 9, 18, tzinfo=UTC).timestamp())
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.mark.parametrize("form", ["offset", "utc", "local_z"])
@pytest.mark.parametrize("zone", ZONES)
async def test_simulated_forms_read_right(sim: Simulator, form: str, zone: str) -> None:
    """The simulator serves each form (and leaves zero days out); the exporter reads the same
    windows from all of them."""
    key = f"ts-{form}-{zone}"
    days = {
        (date(2026, 3, 9) - timedelta(days=n)).isoformat(): {"api": 10 * (n + 1), "ui": 0}
        for n in range(7)
        if n != 2  # one day without consumption, left out
    }
    sim.add_account(
        "theirstack",
        key,
        api_credits=100,
        consumption_days=days,
        period_start_form=form,
        omit_zero_days=True,
    )
    provider = theirstack(zone)
    now = datetime.fromtimestamp(sim.now(), ZoneInfo(zone))
    start = (now - timedelta(days=29)).date()
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            sim.base_url("theirstack") + "/v0/teams/credits_consumption",
            headers={"Authorization": f"Bearer {key}"},
            params={"start_datetime": f"{start}T00:00:00", "timezone": zone},
        ) as resp,
    ):
        assert resp.status == 200
        body = await resp.json()
    assert len(body) == 6  # the day without consumption is left out
    if form == "local_z":
        assert all(b["period_start"].endswith("T00:00:00Z") for b in body)
    reading = provider.parse_consumption(body, now)
    # (The simulator books a day's credits at noon UTC: in Kiritimati that is the next local
    # day, and it is the next day there already, so the windows hold the same days.)
    assert reading.consumption["api"]["7d"] == sum(10 * (n + 1) for n in range(7) if n != 2)
    assert reading.consumption["api"]["1d"] == 10
