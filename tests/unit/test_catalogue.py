"""The metric catalogue: declarations that follow Prometheus naming, declared in one module, and
one runway. (Its samples are checked with the serializer: tests/unit/test_exposition.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import exporter
from exporter import catalogue
from exporter.catalogue import COUNTER, runway_seconds

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


def test_metric_names_appear_in_the_catalogue_alone() -> None:
    """No other module of the package names a metric (an API path such as TheirStack's
    ``/v0/teams/credits_consumption`` or a field such as ``api_credits_consumed`` is no name)."""
    names = {f.name for f in FAMILIES} | {f.sample_name for f in FAMILIES}
    package = Path(exporter.__file__).parent
    found = {
        f"{path.relative_to(package)}: {name}"
        for path in package.rglob("*.py")
        if path.name != "catalogue.py"
        for name in re.findall(r"(?<![/\w])(credits_[a-z_]+)", path.read_text())
        if name in names
    }
    assert not found, sorted(found)


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


@pytest.mark.parametrize(
    ("remaining", "consumed_7d", "limit", "expected"),
    [
        (-20, 70, None, 0.0),  # overdrawn while burning: it ran out, never a negative time
        (-20, 0, None, 0.0),  # ran out a week ago: the burn stopped with it
        (0, 0, 100, 0.0),
        (-0.5, 70, 100, 0.0),
        (0, 70, 0, None),  # a limit of 0: nothing was ever there to run out of
        (-20, None, None, None),  # no consumption history for the pool: no runway at all
    ],
)
def test_runway_once_nothing_is_left(
    remaining: float, consumed_7d: float | None, limit: float | None, expected: float | None
) -> None:
    assert runway_seconds(remaining, consumed_7d, limit) == expected
