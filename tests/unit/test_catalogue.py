"""The metric catalogue: declarations that follow Prometheus naming, one runway, and samples
whose label values match their family's label names."""

from __future__ import annotations

import random

import pytest

from exporter import catalogue
from exporter.catalogue import COUNTER, account_samples, runway_seconds
from exporter.config import parse_config
from exporter.model import PollError, PoolValues, Reading, Reason
from exporter.store import Store

FAMILIES = (*catalogue.ACCOUNT_FAMILIES, *catalogue.EXPORTER_FAMILIES)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_names_follow_prometheus_naming(family: catalogue.Family) -> None:
    assert family.name.startswith("credits_") and not family.name.endswith("_total")
    assert family.sample_name == family.name + ("_total" if family.type == COUNTER else "")
    # A base unit, when the name has one, is declared and ends the name.
    assert family.name.endswith("_seconds") == (family.unit == "seconds")
    assert not family.unit or family.name.endswith("_" + family.unit)
    assert len(set(family.labels)) == len(family.labels)
    assert family.help.endswith(".") and "\n" not in family.help


def test_every_name_declared_once() -> None:
    assert len({f.name for f in FAMILIES}) == len(FAMILIES)


def test_value_families_say_they_are_polled_and_cached() -> None:
    polled = {f.name for f in FAMILIES if "Polled from the provider's API" in f.help}
    assert polled == {
        f.name
        for f in (
            catalogue.REMAINING,
            catalogue.USED,
            catalogue.LIMIT,
            catalogue.EXPIRY,
            catalogue.CYCLE_START,
            catalogue.CYCLE_END,
            catalogue.SEATS,
            catalogue.CONSUMED,
            catalogue.CONSUMPTION,
            catalogue.RUNWAY,
        )
    }


def test_runway() -> None:
    assert runway_seconds(700, 70) == 70 * 86400  # 700 credits at 10 a day
    assert runway_seconds(0, 7) == 0
    assert runway_seconds(10, 0) is None  # no burn: no runway, not an infinite one
    assert runway_seconds(None, 7) is None


def test_samples_carry_their_family_labels() -> None:
    """Every kind of sample, from a store with every provider, failures and consumption."""
    store = Store(lambda: 1_800_000_000.0)
    config = parse_config(
        """
accounts:
  - {name: t, provider: theirstack, api_key: k1, low_credit_threshold: 5, labels: {team: x}}
  - {name: w, provider: windsurf, api_key: k2, prompt_usage: true}
  - {name: f, provider: fullenrich, api_key: k3}
""",
        env={},
    )
    store.set_accounts(config.accounts)
    rng = random.Random(3)
    store.record_success(
        "t",
        "balance",
        Reading(pools={"api": PoolValues(700, 300), "ui": PoolValues(5, 1)}, expiry_timestamp=2e9),
        0.1,
    )
    store.record_success(
        "t",
        "consumption",
        Reading(
            consumption={"api": {"1d": 1, "7d": 70, "30d": 300}},
            daily_consumption={"api": {"2026-11-22": 1}},
        ),
        0.1,
    )
    store.record_success(
        "w",
        "balance",
        Reading(
            pools={"prompt": PoolValues(limit=500)},
            cycle_start_timestamp=1.7e9,
            cycle_end_timestamp=1.9e9,
            seats=3,
        ),
        0.2,
    )
    for _ in range(3):
        store.record_failure("w", "user_analytics", PollError(rng.choice(list(Reason)), "x"), 1)
    store.record_success("f", "balance", Reading(pools={"workspace": PoolValues(9)}), 0.1)
    seen = set()
    for state in store.accounts.values():
        for family, labels, value in account_samples(state, store.clock()):
            assert family in catalogue.ACCOUNT_FAMILIES
            assert len(labels) == len(family.labels), family.name
            assert labels[:2] == (state.provider.label, state.name)
            assert isinstance(value, int | float)
            seen.add(family)
    assert seen == set(catalogue.ACCOUNT_FAMILIES)
