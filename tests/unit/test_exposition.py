"""The incremental renderer against the reference: prometheus_client rendering the store through
a collector of its own (tests/reference.py).

Every step of a store's life (first polls, failures, one account changing, time passing,
staleness, a reload adding, changing and removing accounts and label names) must give the same
exposition as the reference, in the text format and in OpenMetrics, and the gzip copies must
inflate to exactly those bytes.
"""

from __future__ import annotations

import gzip
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.catalogue import ACCOUNT_FAMILIES, account_samples
from exporter.config import parse_config
from exporter.exposition import (
    BLOCK_ACCOUNTS,
    Exposition,
    IncrementalRenderer,
    deflate_segment,
    gzip_from_segments,
)
from exporter.metrics import ExpositionCache
from exporter.model import PollError, PoolValues, Reading, Reason
from exporter.store import Store
from support.reference import reference

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


THRESHOLDS = {
    "theirstack": "{api: 100}",
    "windsurf": "{prompt: 5}",
    "fullenrich": "{workspace: 7.5}",
}


def accounts_yaml(n: int, *, labels: bool = True, suffix: str = "") -> str:
    lines = ["defaults: {max_staleness: 1h}", "accounts:"]
    for i in range(n):
        provider = ("theirstack", "windsurf", "fullenrich")[i % 3]
        extra = ""
        if provider == "windsurf":
            extra += ", prompt_usage: true"
        if i % 4 == 0:
            extra += f", low_credit_threshold: {THRESHOLDS[provider]}"
        if labels and i % 5 == 1:
            extra += ', labels: {team: "t\\"q\\\\b\\nn", cost_center: cc' + str(i) + "}"
        lines.append(
            f"  - {{name: acct-{i}{suffix}, provider: {provider}, api_key: key-{i}{extra}}}"
        )
    return "\n".join(lines) + "\n"


def families(text: str, om: bool) -> list[tuple[str, str, str, list[Any]]]:
    parse = parse_openmetrics if om else parse_text
    return [
        (f.name, f.documentation, f.type, [(s.name, s.labels, s.value) for s in f.samples])
        for f in parse(text)
    ]


def assert_same(exp: Exposition, store: Store, clock: Clock) -> None:
    """Byte for byte the reference's text and OpenMetrics, and the gzip copies inflate to them."""
    assert gzip.decompress(exp.text_gzip) == exp.text
    assert gzip.decompress(exp.openmetrics_gzip) == exp.openmetrics
    ref_text, ref_om = reference(store, clock)
    for ours, ref, om in ((exp.text, ref_text, False), (exp.openmetrics, ref_om, True)):
        # Same families, HELP, TYPE, samples (names, labels, values), in the same order ...
        assert families(ours.decode(), om) == families(ref.decode(), om)
        assert ours == ref  # ... and in fact the same bytes


def balance(rng: random.Random, provider: str, clock: Clock) -> dict[str, Reading]:
    if provider == "theirstack":
        return {
            "balance": Reading(
                pools={
                    "api": PoolValues(remaining=rng.randint(0, 10**6), used=rng.random() * 1e3),
                    "ui": PoolValues(remaining=rng.choice([0, 1e15, 123456789.0]), used=0),
                },
                expiry_timestamp=clock.t + rng.randint(1, 90) * 86400 + 0.5,
            ),
            "consumption": Reading(
                consumption={"api": {"1d": 3, "7d": rng.choice([0, 70]), "30d": 300}, "ui": {}},
                daily_consumption={"api": {"2026-11-20": rng.randint(0, 99)}},
            ),
        }
    if provider == "windsurf":
        return {
            "balance": Reading(
                pools={
                    "prompt": PoolValues(limit=5000),
                    "add_on": PoolValues(limit=1000, used=250, remaining=750),
                },
                cycle_start_timestamp=clock.t - 86400,
                cycle_end_timestamp=clock.t + 29 * 86400,
                seats=rng.randint(1, 50),
            ),
            "user_analytics": Reading(pools={"prompt": PoolValues(used=rng.randint(0, 5000))}),
        }
    return {"balance": Reading(pools={"workspace": PoolValues(remaining=rng.random() * 1e4)})}


def poll(store: Store, name: str, rng: random.Random, clock: Clock) -> None:
    state = store.accounts[name]
    readings = balance(rng, state.account.provider, clock)
    for endpoint in state.endpoints:
        roll = rng.random()
        if roll < 0.15:
            reason = rng.choice(list(Reason))
            store.record_failure(name, endpoint, PollError(reason, "x"), rng.random())
        else:
            store.record_success(name, endpoint, readings[endpoint], rng.random())


def test_every_step_matches_the_reference() -> None:
    rng = random.Random(7)
    clock = Clock()
    store = Store(clock)
    store.set_accounts(parse_config(accounts_yaml(40), env={}).accounts)
    store.set_reload_result(True)
    renderer = IncrementalRenderer(store, clock=clock, block_accounts=8)
    # Nothing polled yet: start-up renders an account once all its endpoints answered.
    exp = renderer.render()
    assert b"account=" not in exp.text and not exp.ready

    for name in list(store.accounts):
        poll(store, name, rng, clock)
    assert_same(renderer.render(), store, clock)

    for _ in range(5):  # a few accounts change at a time
        clock.t += 7
        for name in rng.sample(list(store.accounts), 3):
            poll(store, name, rng, clock)
        assert_same(renderer.render(), store, clock)
        assert renderer.stats.last_accounts <= 3

    clock.t += 61  # time alone changes nothing before max_staleness
    assert_same(renderer.render(), store, clock)
    assert renderer.stats.last_accounts == 0
    clock.t += 3600  # readings pass max_staleness: value series go
    assert_same(renderer.render(), store, clock)

    # A reload: some accounts go, some change, new ones (with a new label name) come.
    cfg = parse_config(
        accounts_yaml(30) + "  - {name: new, provider: fullenrich, api_key: n, "
        "labels: {zone: eu}}\n",
        env={},
    )
    changed = [
        a.model_copy(update={"interval": 60.0}) if a.name == "acct-3" else a for a in cfg.accounts
    ]
    store.set_accounts(changed)
    store.set_reload_result(False)
    exp = renderer.render()
    assert not exp.ready and b'account="new"' not in exp.text  # until its first poll
    poll(store, "new", rng, clock)
    poll(store, "acct-3", rng, clock)
    assert_same(renderer.render(), store, clock)


def test_only_changed_accounts_are_rendered_again() -> None:
    clock = Clock()
    store = Store(clock)
    store.set_accounts(parse_config(accounts_yaml(300, labels=False), env={}).accounts)
    renderer = IncrementalRenderer(store, clock=clock)
    rng = random.Random(1)
    for name in list(store.accounts):
        poll(store, name, rng, clock)
    renderer.render()
    assert renderer.stats.last_accounts == 300

    first = renderer.render()
    assert renderer.stats.last_accounts == 0  # nothing changed: nothing rendered ...
    renders = renderer.stats.renders
    again = renderer.render()  # ... and the same bytes are served
    assert again.text_gzip is first.text_gzip and again.text_parts is first.text_parts
    assert renderer.stats.renders == renders

    store.record_failure("acct-2", "balance", PollError(Reason.TIMEOUT, "t"), 1.0)
    exp = renderer.render()
    assert renderer.stats.last_accounts == 1
    # Only segments of acct-2's block were deflated again (up, polls, errors, duration).
    assert 0 < renderer.stats.last_segments <= 4
    assert_same(exp, store, clock)


def test_time_alone_rerenders_only_accounts_that_depend_on_it() -> None:
    """Only staleness changes an account's output with time: the accounts with a reading are
    rendered again when it passes max_staleness (1h here), the others never."""
    clock = Clock()
    store = Store(clock)
    store.set_accounts(parse_config(accounts_yaml(30, labels=False), env={}).accounts)
    renderer = IncrementalRenderer(store, clock=clock)
    rng = random.Random(2)
    for i, name in enumerate(list(store.accounts)):
        for endpoint, reading in balance(rng, store.accounts[name].account.provider, clock).items():
            if endpoint not in store.accounts[name].endpoints:
                continue
            if i % 3 == 0:
                store.record_failure(name, endpoint, PollError(Reason.TIMEOUT, "t"), 0.1)
            else:
                store.record_success(name, endpoint, reading, 0.1)
    renderer.render()
    assert renderer.next_due == pytest.approx(clock.t + 3600, abs=0.01)
    clock.t += 3599
    renderer.render()
    assert renderer.stats.last_accounts == 0
    clock.t += 2
    exp = renderer.render()
    assert renderer.stats.last_accounts == 20  # the 10 that never had a reading stay as they were
    assert b"credits_remaining{" not in exp.text
    assert_same(exp, store, clock)


async def test_async_render_matches_and_yields_to_the_loop() -> None:
    clock = Clock()
    store = Store(clock)
    store.set_accounts(parse_config(accounts_yaml(600), env={}).accounts)
    rng = random.Random(3)
    for name in list(store.accounts):
        poll(store, name, rng, clock)
    renderer = IncrementalRenderer(store, clock=clock)
    import asyncio

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    exp = await renderer.render_async()
    task.cancel()
    assert ticks > 1  # the loop ran other tasks while 600 accounts were rendered
    assert_same(exp, store, clock)


async def test_cache_refresh_publishes_incremental_renders() -> None:
    clock = Clock()
    store = Store(clock)
    store.set_accounts(parse_config(accounts_yaml(10), env={}).accounts)
    cache = ExpositionCache(store, clock=clock)
    rng = random.Random(8)
    for name in list(store.accounts):
        poll(store, name, rng, clock)
    await cache.refresh()
    assert cache.current.ready
    assert_same(cache.current, store, clock)
    store.record_success("acct-2", "balance", Reading(pools={"workspace": PoolValues(5)}), 0.1)
    await cache.refresh()
    assert cache.current.round == store.readiness.round is not None
    assert_same(cache.current, store, clock)


def test_segments_concatenate_into_one_gzip_stream() -> None:
    parts = [b"a" * 1000, b"", b"hello\n" * 50, bytes(range(256)) * 9]
    body = b"".join(parts)
    assert gzip.decompress(gzip_from_segments([deflate_segment(p) for p in parts], parts)) == body


def test_block_boundaries() -> None:
    """Accounts straddling segment blocks, with the real block size."""
    clock = Clock()
    store = Store(clock)
    n = BLOCK_ACCOUNTS * 2 + 3
    store.set_accounts(parse_config(accounts_yaml(n, labels=False), env={}).accounts)
    renderer = IncrementalRenderer(store, clock=clock)
    rng = random.Random(4)
    for name in list(store.accounts):
        poll(store, name, rng, clock)
    renderer.render()
    for name in (f"acct-{BLOCK_ACCOUNTS - 1}", f"acct-{BLOCK_ACCOUNTS}", f"acct-{n - 1}"):
        poll(store, name, rng, clock)
    assert_same(renderer.render(), store, clock)


@settings(max_examples=40, deadline=None)
@given(
    label_value=st.text(max_size=12),
    remaining=st.one_of(
        st.floats(min_value=0, max_value=1e15, allow_nan=False),
        st.integers(min_value=0, max_value=10**15),
    ),
    pool=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=8),
)
def test_any_label_value_and_number_matches(label_value: str, remaining: float, pool: str) -> None:
    clock = Clock()
    store = Store(clock)
    account = parse_config(
        "accounts: [{name: a, provider: fullenrich, api_key: k}]", env={}
    ).accounts[0]
    store.set_accounts([account.model_copy(update={"labels": {"team": label_value}})])
    renderer = IncrementalRenderer(store, clock=clock)
    store.record_success("a", "balance", Reading(pools={pool: PoolValues(remaining)}), 0.25)
    exp = renderer.render()
    ref_text, ref_om = reference(store, clock)
    assert exp.text == ref_text
    assert exp.openmetrics == ref_om


def test_start_up_renders_each_account_once_when_all_its_endpoints_answered() -> None:
    clock = Clock()
    store = Store(clock)
    store.set_accounts(parse_config(accounts_yaml(30, labels=False), env={}).accounts)
    renderer = IncrementalRenderer(store, clock=clock)
    renderer.render()  # nothing polled: nothing to render yet
    assert renderer.stats.accounts_rendered == 0
    rng = random.Random(9)
    halves = []
    for name, state in store.accounts.items():
        readings = balance(rng, state.account.provider, clock)
        first, *rest = state.endpoints
        store.record_success(name, first, readings[first], 0.1)
        if rest:
            halves.append((name, rest[0], readings[rest[0]]))
    exp = renderer.render()
    assert not exp.ready
    # The 10 FullEnrich accounts (one endpoint) are done; the 20 others wait for their second.
    assert renderer.stats.last_accounts == 10
    for name, endpoint, reading in halves:
        store.record_success(name, endpoint, reading, 0.1)
    exp = renderer.render()
    assert exp.ready
    assert renderer.stats.accounts_rendered == 10 + 20  # each account once
    assert_same(exp, store, clock)


def test_samples_carry_their_family_labels() -> None:
    """Every kind of sample comes with one label value per label name of its family (the
    serializer adds the static labels), provider and account first."""
    clock = Clock()
    store = Store(clock)
    store.set_accounts(parse_config(accounts_yaml(12), env={}).accounts)
    rng = random.Random(5)
    for _ in range(3):
        for name in list(store.accounts):
            poll(store, name, rng, clock)
    seen = set()
    for state in store.accounts.values():
        for family, labels, value in account_samples(state, clock.t):
            assert family in ACCOUNT_FAMILIES
            assert len(labels) == len(family.labels), family.name
            assert labels[:2] == (state.provider.label, state.name)
            assert isinstance(value, int | float)
            seen.add(family)
    assert seen == set(ACCOUNT_FAMILIES)
