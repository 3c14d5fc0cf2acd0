"""Config checks across keys: ``max_staleness`` against the time between polls, and
``low_credit_threshold`` pools against the pools the account reports."""

from __future__ import annotations

import pytest

from exporter.config import parse_config
from exporter.configfile import ConfigError


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    return info.value.errors


def account(options: str, provider: str = "fullenrich") -> str:
    return f"accounts: [{{name: a, provider: {provider}, api_key: k, {options}}}]"


# --- max_staleness outlasts two polls ---------------------------------------------------------


def test_an_interval_longer_than_half_max_staleness_is_refused() -> None:
    """`interval: 1d` with the default max_staleness (6h): the values would be dropped 18 hours
    a day. Refused at the account's max_staleness, saying what to set."""
    assert errors_of(account("interval: 1d")) == [
        "accounts[0].max_staleness: 6h is less than twice interval (1d): the values would be "
        "dropped between two polls; raise max_staleness to at least 2d or lower interval"
    ]
    assert errors_of(account("interval: 10m, max_staleness: 15m")) == [
        "accounts[0].max_staleness: 15m is less than twice interval (10m): the values would be "
        "dropped between two polls; raise max_staleness to at least 20m or lower interval"
    ]


def test_defaults_are_checked_once_at_defaults() -> None:
    """An interval in `defaults` that the default max_staleness cannot outlast is one error at
    `defaults`, not one per account that inherits it."""
    text = (
        "defaults: {interval: 4h}\n"
        "accounts:\n"
        "  - {name: a, provider: fullenrich, api_key: k}\n"
        "  - {name: b, provider: theirstack, api_key: k}\n"
    )
    assert errors_of(text) == [
        "defaults.max_staleness: 6h is less than twice interval (4h): the values would be "
        "dropped between two polls; raise max_staleness to at least 8h or lower interval"
    ]
    # an account's own max_staleness against the inherited interval
    text = "defaults: {interval: 4h, max_staleness: 8h}\n" + account("max_staleness: 7h")
    assert errors_of(text)[0].startswith("accounts[0].max_staleness: 7h is less than twice")


@pytest.mark.parametrize(
    "options",
    [
        "interval: 3h",  # exactly half the default 6h
        "interval: 1d, max_staleness: 2d",
        "interval: 30d, max_staleness: 60d",
        "interval: 200ms, max_staleness: 400ms",
    ],
)
def test_max_staleness_of_two_polls_is_enough(options: str) -> None:
    assert parse_config(account(options), env={}).accounts


def test_every_endpoints_interval_counts() -> None:
    """Windsurf polls `consumption` at most every consumption.min_interval: that is the time
    max_staleness must outlast when it is the longer one."""
    ws = "windsurf"
    assert errors_of(account("max_staleness: 40m, consumption: {}", ws)) == [
        "accounts[0].max_staleness: 40m is less than twice consumption.min_interval (30m): the "
        "values would be dropped between two polls; raise max_staleness to at least 1h or lower "
        "consumption.min_interval"
    ]
    # an interval longer than min_interval is the one named
    (error,) = errors_of(account("interval: 4h, consumption: {min_interval: 1h}", ws))
    assert "twice interval (4h)" in error
    assert parse_config(account("max_staleness: 40m, consumption: {enabled: false}", ws), env={})


# --- thresholds name the account's pools -----------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "options", "pool", "pools"),
    [
        ("theirstack", "", "apii", "api, ui"),
        ("fullenrich", "", "credits", "workspace"),
        ("windsurf", "", "team", "prompt, add_on"),  # team only with consumption
        ("windsurf", "consumption: {}, ", "addon", "prompt, add_on, team"),
        ("openrouter", "", "credit", "credits"),  # a preset with fixed pools
        (
            "http_json",
            "provider_name: acme, base_url: 'http://x', request: {url: /c}, auth: {type: bearer},"
            " pools: {main: {remaining: a}, extra: {remaining: b, optional: true}}, ",
            "mian",
            "main, extra",
        ),
    ],
)
def test_threshold_for_a_pool_the_account_lacks_is_refused(
    provider: str, options: str, pool: str, pools: str
) -> None:
    """A threshold on a pool that never exists is a CreditsLow that can never fire."""
    errors = errors_of(account(f"{options}low_credit_threshold: {{{pool}: 100}}", provider))
    assert errors == [
        f"accounts[0].low_credit_threshold.{pool}: unknown pool (this account's pools: {pools})"
    ]


def test_every_unknown_pool_is_listed_and_known_ones_pass() -> None:
    errors = errors_of(account("low_credit_threshold: {apii: 1, api: 2, uii: 3}", "theirstack"))
    assert [e.split(":")[0] for e in errors] == [
        "accounts[0].low_credit_threshold.apii",
        "accounts[0].low_credit_threshold.uii",
    ]
    config = parse_config(account("low_credit_threshold: {api: 1, ui: 2}", "theirstack"), env={})
    assert config.accounts[0].threshold_for("ui") == 2
    ws = "consumption: {}, low_credit_threshold: {team: 1, add_on: 2, prompt: 3}"
    assert parse_config(account(ws, "windsurf"), env={})
    # one number for every pool names none
    assert parse_config(account("low_credit_threshold: 5", "theirstack"), env={})


@pytest.mark.parametrize(
    "pools",
    [
        "{models: {for_each: data, name: id, remaining: left}}",
        "{main: {name: data.plan, remaining: data.left}}",
    ],
)
def test_pools_named_by_the_answer_take_any_threshold_key(pools: str) -> None:
    """With `name` (and `for_each`), the pools are known only from the answers."""
    options = (
        "provider_name: acme, base_url: 'http://x', request: {url: /c}, auth: {type: bearer}, "
        f"pools: {pools}, low_credit_threshold: {{gpt-4: 10}}"
    )
    assert parse_config(account(options, "http_json"), env={}).accounts
