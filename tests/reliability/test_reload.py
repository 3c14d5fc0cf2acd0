"""Reload, as an operator does it (SIGHUP and POST /-/reload) on a real exporter process.

Extends tests/integration/test_daemon.py::test_sighup_and_http_reload with: atomicity (a config
with one error applies nothing, not even its valid new account), a refused reload by SIGHUP,
accounts added and changed, unchanged accounts keeping their counters and schedule, the reload
timestamp, and a key rotation (to a refused key and back to a good one) that keeps the account's
values, counters and error counts."""

from __future__ import annotations

import copy
import json
import signal
import time
from collections.abc import Callable
from typing import Any

from exporter.simulator import SimulatorThread
from support import (
    ExporterProcess,
    Samples,
    http_post,
    present,
    sample_values,
    value,
    wait_for,
)
from support.leaks import find_secrets

KEYS = {
    "steady": "sk_reload_steady_0123456789",
    "busy": "sk_reload_busy_0123456789ab",
    "gone": "sk_reload_gone_0123456789ab",
    "changed": "sk_reload_changed_012345678",
    "new": "sk_reload_new_0123456789abc",
}


def account(sim: SimulatorThread, name: str, provider: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider": provider,
        "api_key": KEYS[name],
        "base_url": sim.base_url(provider),
        **extra,
    }


def scrape(exp: ExporterProcess) -> Samples:
    return sample_values(exp.metrics())


def scraped_when(
    exp: ExporterProcess, ok: Callable[[Samples], object]
) -> Callable[[], Samples | None]:
    """A check for wait_for: the exporter's samples once ``ok`` holds for them."""

    def check() -> Samples | None:
        samples = scrape(exp)
        return samples if ok(samples) else None

    return check


def series_of(samples: Samples, account: str) -> set[Any]:
    return {k for k in samples if ("account", account) in k[1]}


def test_reload_is_atomic_and_keeps_unchanged_accounts(
    simulator: SimulatorThread, start_exporter: Any
) -> None:
    sim = simulator
    sim.add_account("fullenrich", KEYS["steady"], balance=10)
    sim.add_account("theirstack", KEYS["busy"], api_credits=5, ui_credits=6)
    sim.add_account("windsurf", KEYS["gone"], num_seats=3)
    sim.add_account("fullenrich", KEYS["changed"], balance=30)
    sim.add_account("fullenrich", KEYS["new"], balance=40)
    old: dict[str, Any] = {
        "defaults": {"interval": "1s", "timeout": "2s"},
        "accounts": [
            account(sim, "steady", "fullenrich", interval="1h"),
            account(sim, "busy", "theirstack", consumption={"enabled": False}),
            account(sim, "gone", "windsurf"),
            account(sim, "changed", "fullenrich", interval="1h", low_credit_threshold=10),
        ],
    }
    exp: ExporterProcess = start_exporter(old)
    exp.wait_ready()
    s = wait_for(scraped_when(exp, lambda m: value(m, "credits_seats", account="gone")))
    loaded_at = value(s, "credits_exporter_config_last_reload_success_timestamp_seconds")
    assert value(s, "credits_exporter_config_last_reload_successful") == 1
    steady_calls = sim.calls(api_key=KEYS["steady"])
    assert steady_calls == 1

    # 1. A config with a valid new account and one error elsewhere applies nothing.
    half = copy.deepcopy(old)
    half["accounts"].append(account(sim, "new", "fullenrich"))
    half["accounts"][2]["interval"] = "soon"
    exp.write_config(half)
    status, body = http_post(f"{exp.url}/-/reload")
    assert status == 400
    assert json.loads(body) == {
        "status": "error",
        "errors": ['accounts[2].interval: invalid duration "soon" (use e.g. 30s, 5m, 1h30m)'],
    }
    busy_before = sim.calls(api_key=KEYS["busy"])
    s = wait_for(
        scraped_when(exp, lambda m: value(m, "credits_exporter_config_last_reload_successful") == 0)
    )
    time.sleep(2.5)
    assert sim.calls(api_key=KEYS["new"]) == 0  # never started
    assert sim.calls(api_key=KEYS["busy"]) - busy_before >= 2  # the old config keeps polling
    s = scrape(exp)
    assert series_of(s, "new") == set()
    assert value(s, "credits_seats", account="gone") == 3
    assert value(s, "credits_exporter_config_last_reload_success_timestamp_seconds") == loaded_at

    # 2. A refused reload by SIGHUP: still 0, still running.
    exp.write_config("accounts: [\n")
    exp.signal(signal.SIGHUP)
    wait_for(lambda: exp.logs().count("config reload refused") == 2)
    assert exp.proc.poll() is None
    refused = [line for line in exp.logs().splitlines() if "config reload refused" in line]
    assert "invalid YAML" in refused[-1]
    assert value(scrape(exp), "credits_exporter_config_last_reload_successful") == 0

    # 3. A valid one by SIGHUP: "gone" and its series go, "new" starts, "changed" takes its new
    # threshold in place, "steady" and "busy" keep their state and schedule.
    busy_polls = value(scrape(exp), "credits_polls_total", account="busy", api_endpoint="balance")
    assert busy_polls is not None and busy_polls >= 3
    new = copy.deepcopy(old)
    new["accounts"] = [
        old["accounts"][0],
        old["accounts"][1],
        {**old["accounts"][3], "low_credit_threshold": 20},
        account(sim, "new", "fullenrich"),
    ]
    exp.write_config(new)
    exp.signal(signal.SIGHUP)
    s = wait_for(
        scraped_when(
            exp,
            lambda m: (
                value(m, "credits_exporter_config_last_reload_successful") == 1
                and value(m, "credits_remaining", account="new") == 40
            ),
        )
    )
    assert series_of(s, "gone") == set()
    assert value(s, "credits_low_threshold", account="changed") == 20
    assert value(s, "credits_polls_total", account="changed", api_endpoint="balance") == 1
    assert present(s, "credits_polls_total", account="busy", api_endpoint="balance") >= busy_polls
    assert value(s, "credits_polls_total", account="steady", api_endpoint="balance") == 1
    assert value(s, "credits_remaining", account="steady") == 10
    assert sim.calls(api_key=KEYS["steady"]) == steady_calls  # not re-polled
    reloaded_at = value(s, "credits_exporter_config_last_reload_success_timestamp_seconds")
    assert reloaded_at is not None and loaded_at is not None and reloaded_at > loaded_at

    # 4. And by HTTP: 200 and {"status": "ok"}.
    status, body = http_post(f"{exp.url}/-/reload")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert exp.stop() == 0
    logs = exp.logs()
    assert find_secrets(logs, KEYS.values()) == []


def test_reload_rotating_a_key_keeps_the_account_state(
    simulator: SimulatorThread, start_exporter: Any
) -> None:
    """Issue 11.11: a reload that rotates a key (or changes the interval, timeout, thresholds or
    labels) keeps the last values, credits_consumed_total and the error counters; a refused new
    key shows credits_up 0 beside the last good values. Only what is polled starts afresh."""
    sim = simulator
    good, bad, rotated = (
        "sk_rotate_good_0123456789ab",
        "sk_rotate_bad_0123456789abc",
        "sk_rotate_next_0123456789ab",
    )
    day = time.strftime("%Y-%m-%d", time.gmtime())
    for key, credits in ((good, 900), (rotated, 880)):
        sim.add_account(
            "theirstack",
            key,
            api_credits=credits,
            ui_credits=50,
            consumption_days={day: {"api": 40, "ui": 0}},
        )
    base = {
        "name": "growth",
        "provider": "theirstack",
        "base_url": sim.base_url("theirstack"),
        "interval": "1h",
        "timeout": "2s",
    }
    exp: ExporterProcess = start_exporter({"accounts": [{**base, "api_key": good}]})
    exp.wait_ready()
    s = wait_for(scraped_when(exp, lambda m: value(m, "credits_remaining", pool="api")))
    assert value(s, "credits_consumed_total", pool="api") == 0  # the baseline
    sim.update(good, consumption_days={day: {"api": 55, "ui": 0}})

    # A shorter interval applies at once (no restart needed to see the revision).
    exp.write_config({"accounts": [{**base, "api_key": good, "interval": "1s"}]})
    exp.signal(signal.SIGHUP)
    s = wait_for(
        scraped_when(
            exp,
            lambda m: (
                value(m, "credits_consumed_total", pool="api") == 15
                and (value(m, "credits_polls_total", api_endpoint="balance") or 0) >= 2
            ),
        )
    )
    polls = value(s, "credits_polls_total", api_endpoint="balance") or 0

    # Rotation to a key the provider refuses: up 0, the last good values and counters stay.
    exp.write_config(
        {"accounts": [{**base, "api_key": bad, "interval": "1s", "low_credit_threshold": 5}]}
    )
    exp.signal(signal.SIGHUP)
    s = wait_for(
        scraped_when(
            exp,
            lambda m: (
                value(m, "credits_up", api_endpoint="balance") == 0
                and value(m, "credits_up", api_endpoint="consumption") == 0
            ),
        )
    )
    assert value(s, "credits_remaining", pool="api") == 900
    assert value(s, "credits_consumed_total", pool="api") == 15
    assert value(s, "credits_consumption", pool="api", window="1d") == 55
    assert value(s, "credits_low_threshold", pool="api") == 5
    assert (value(s, "credits_polls_total", api_endpoint="balance") or 0) > polls
    auth_errors = value(s, "credits_poll_errors_total", api_endpoint="balance", reason="auth")
    assert auth_errors is not None and auth_errors >= 1

    # Rotation to the next good key: values from it, counters carried on.
    exp.write_config({"accounts": [{**base, "api_key": rotated, "interval": "1s"}]})
    exp.signal(signal.SIGHUP)
    s = wait_for(scraped_when(exp, lambda m: value(m, "credits_remaining", pool="api") == 880))
    assert value(s, "credits_up", api_endpoint="balance") == 1
    assert (value(s, "credits_consumed_total", pool="api") or 0) >= 15
    assert (value(s, "credits_poll_errors_total", api_endpoint="balance", reason="auth") or 0) >= (
        auth_errors
    )

    # A new base_url polls something else: the account starts afresh.
    exp.write_config(
        {
            "accounts": [
                {**base, "api_key": rotated, "base_url": sim.url + "/theirstack/", "interval": "1s"}
            ]
        }
    )
    exp.signal(signal.SIGHUP)
    s = wait_for(
        scraped_when(
            exp,
            lambda m: (
                value(m, "credits_poll_errors_total", api_endpoint="balance", reason="auth") is None
                and value(m, "credits_remaining", pool="api") == 880
            ),
        )
    )
    assert value(s, "credits_consumed_total", pool="api") == 0
    assert exp.stop() == 0
    logs = exp.logs()
    assert find_secrets(logs, [good, bad, rotated]) == []
