"""The daemon as a real subprocess polling the simulator over loopback, scraped over HTTP."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from exporter.simulator import SimulatorThread
from support import ExporterProcess, http_get, http_post, present, sample_values, value, wait_for
from support.leaks import find_secrets, wire_forms

TS_KEY = "it-ts-4c2e-key-0001"
WS_KEY = "it-ws-8d1f-key-0002"
FE_KEY = "it-fe-2b7a-key-0003"
FE2_KEY = "it-fe-2b7a-key-0004"
KEYS = (TS_KEY, WS_KEY, FE_KEY, FE2_KEY)


def day(offset: int = 0) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def iso_day(offset: int) -> str:
    """Midnight UTC ``offset`` days from today, as the providers write it."""
    return f"{day(offset)}T00:00:00Z"


def seed(sim: SimulatorThread) -> dict[str, float]:
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    sim.add_account(
        "theirstack",
        TS_KEY,
        api_credits=900,
        ui_credits=40,
        used_api_credits=100,
        used_ui_credits=10,
        earliest_expiration=expiry.isoformat().replace("+00:00", "Z"),
        consumption_days={day(-1): {"api": 70, "ui": 7}, day(): {"api": 14, "ui": 0}},
    )
    sim.add_account(
        "windsurf",
        WS_KEY,
        prompt_credits_per_seat=500,
        num_seats=10,
        add_on_credits_available=1000,
        add_on_credits_used=250,
        billing_cycle_start=iso_day(-5),
        billing_cycle_end=iso_day(25),
        users=[
            {"name": "ada", "email": "ada@example.com", "promptCreditsUsed": 100},
            {"name": "bob", "email": "bob@example.com", "promptCreditsUsed": 50},
        ],
    )
    sim.add_account("fullenrich", FE_KEY, balance=1234.5)
    sim.add_account("fullenrich", FE2_KEY, balance=77)
    return {"expiry": expiry.timestamp()}


def config(sim: SimulatorThread, interval: str = "1s") -> dict[str, Any]:
    return {
        "defaults": {"interval": interval, "timeout": "2s"},
        "accounts": [
            {
                "name": "growth",
                "provider": "theirstack",
                "api_key": TS_KEY,
                "base_url": sim.base_url("theirstack"),
                "low_credit_threshold": {"api": 1000, "ui": 50},
            },
            {
                "name": "engineering",
                "provider": "windsurf",
                "api_key": WS_KEY,
                "base_url": sim.base_url("windsurf"),
                "prompt_usage": True,
            },
            {
                "name": "sales",
                "provider": "fullenrich",
                "api_key": FE_KEY,
                "base_url": sim.base_url("fullenrich"),
                "low_credit_threshold": 500,
                "labels": {"team": "sales"},
            },
            {
                "name": "ops",
                "provider": "fullenrich",
                "api_key_file": "ops.key",
                "base_url": sim.base_url("fullenrich"),
            },
        ],
    }


def scrape(exp: ExporterProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return sample_values(exp.metrics())


def scrape_until(exp: ExporterProcess, predicate: Any) -> Any:
    def check() -> Any:
        m = scrape(exp)
        return m if predicate(m) else None

    return wait_for(check)


def test_every_metric_for_three_providers(
    simulator: SimulatorThread, start_exporter: Any, tmp_path: Path
) -> None:
    facts = seed(simulator)
    (tmp_path / "ops.key").write_text(FE2_KEY + "\n")
    exp: ExporterProcess = start_exporter(config(simulator))
    exp.wait_ready()
    s = scrape_until(
        exp,
        lambda m: value(m, "credits_remaining", account="engineering", pool="prompt") is not None,
    )

    ts = {"provider": "theirstack", "account": "growth"}
    assert value(s, "credits_remaining", **ts, pool="api") == 900
    assert value(s, "credits_remaining", **ts, pool="ui") == 40
    assert value(s, "credits_used", **ts, pool="api") == 100
    assert value(s, "credits_used", **ts, pool="ui") == 10
    assert value(s, "credits_limit", **ts, pool="api") is None  # not given: absent, never 0
    assert value(s, "credits_expiry_timestamp_seconds", **ts) == facts["expiry"]
    assert value(s, "credits_consumption", **ts, pool="api", window="1d") == 14
    assert value(s, "credits_consumption", **ts, pool="api", window="7d") == 84
    assert value(s, "credits_consumption", **ts, pool="api", window="30d") == 84
    assert value(s, "credits_consumption", **ts, pool="ui", window="7d") == 7
    assert value(s, "credits_runway_seconds", **ts, pool="api") == 900 / 84 * 604800
    assert value(s, "credits_runway_seconds", **ts, pool="ui") == 40 / 7 * 604800
    assert value(s, "credits_consumed_total", **ts, pool="api") == 0  # no jump at start-up
    assert value(s, "credits_low_threshold", **ts, pool="api") == 1000
    assert value(s, "credits_low_threshold", **ts, pool="ui") == 50
    for endpoint in ("balance", "consumption"):
        assert value(s, "credits_up", **ts, api_endpoint=endpoint) == 1
        assert present(s, "credits_polls_total", **ts, api_endpoint=endpoint) >= 1
        last = value(s, "credits_last_success_timestamp_seconds", **ts, api_endpoint=endpoint)
        assert last is not None and abs(time.time() - last) < 30
        assert value(s, "credits_poll_duration_seconds", **ts, api_endpoint=endpoint) is not None

    ws = {"provider": "windsurf", "account": "engineering"}
    assert value(s, "credits_seats", **ws) == 10
    assert value(s, "credits_limit", **ws, pool="prompt") == 5000
    assert value(s, "credits_used", **ws, pool="prompt") == 150
    assert value(s, "credits_remaining", **ws, pool="prompt") == 4850
    assert value(s, "credits_limit", **ws, pool="add_on") == 1000
    assert value(s, "credits_used", **ws, pool="add_on") == 250
    assert value(s, "credits_remaining", **ws, pool="add_on") == 750
    start = datetime.fromisoformat(iso_day(-5)).timestamp()
    assert value(s, "credits_billing_cycle_start_timestamp_seconds", **ws) == start
    end = datetime.fromisoformat(iso_day(25)).timestamp()
    assert value(s, "credits_billing_cycle_end_timestamp_seconds", **ws) == end
    assert value(s, "credits_up", **ws, api_endpoint="user_analytics") == 1

    fe = {"provider": "fullenrich", "account": "sales", "team": "sales"}
    assert value(s, "credits_remaining", **fe, pool="workspace") == 1234.5
    assert value(s, "credits_low_threshold", **fe, pool="workspace") == 500
    assert value(s, "credits_remaining", provider="fullenrich", account="ops") == 77

    assert value(s, "credits_exporter_build_info") == 1
    assert value(s, "credits_exporter_config_last_reload_successful") == 1
    assert value(s, "credits_exporter_config_last_reload_success_timestamp_seconds") is not None

    # The day rolls over: today's bucket grows (+6), a new day starts (+5); the oldest day
    # leaving the window takes nothing away.
    simulator.update(TS_KEY, consumption_days={day(): {"api": 20, "ui": 0}})
    wait_for(lambda: value(scrape(exp), "credits_consumed_total", **ts, pool="api") == 6)
    simulator.advance(86400)
    simulator.update(
        TS_KEY, consumption_days={day(1): {"api": 5, "ui": 2}, day(-1): {"api": 0, "ui": 0}}
    )
    wait_for(lambda: value(scrape(exp), "credits_consumed_total", **ts, pool="api") == 11)
    s = scrape(exp)
    assert value(s, "credits_consumed_total", **ts, pool="ui") == 2
    time.sleep(2.5)
    assert value(scrape(exp), "credits_consumed_total", **ts, pool="api") == 11  # stable

    # Keys never leak into /metrics, the status page, the JSON status or the logs.
    pages = [
        exp.metrics(),
        http_get(f"{exp.url}/")[1].decode(),
        http_get(f"{exp.url}/api/status")[1].decode(),
    ]
    assert exp.stop() == 0
    for text in [*pages, exp.logs()]:
        assert find_secrets(text, [f for key in KEYS for f in wire_forms(key)]) == []


def test_failing_account_keeps_values_and_others_poll_on_time(
    simulator: SimulatorThread, start_exporter: Any, tmp_path: Path
) -> None:
    seed(simulator)
    (tmp_path / "ops.key").write_text(FE2_KEY)
    exp: ExporterProcess = start_exporter(config(simulator))
    exp.wait_ready()
    ops = {"provider": "fullenrich", "account": "ops", "api_endpoint": "balance"}
    wait_for(lambda: value(scrape(exp), "credits_remaining", account="ops") == 77)

    simulator.update(FE2_KEY, fail={"status": 500, "body": {"code": "x", "message": "db down"}})
    s = scrape_until(exp, lambda m: value(m, "credits_up", **ops) == 0)
    assert value(s, "credits_remaining", account="ops") == 77  # last good value stays
    assert present(s, "credits_poll_errors_total", **ops, reason="server_error") >= 1
    # While it fails, every other account keeps polling and succeeding.
    before = {k: simulator.calls(api_key=k) for k in (TS_KEY, WS_KEY, FE_KEY)}
    sales = present(s, "credits_last_success_timestamp_seconds", account="sales")
    wait_for(
        lambda: all(simulator.calls(api_key=k) - n >= 2 for k, n in before.items()),
        what="every other account polled twice more",
    )
    later = scrape_until(
        exp,
        lambda m: (
            (value(m, "credits_last_success_timestamp_seconds", account="sales") or 0) > sales
        ),
    )
    assert value(later, "credits_up", **ops) == 0  # and the failing one still fails

    # Recovery restores everything; down and recovery are each logged once.
    simulator.update(FE2_KEY, fail=None, balance=60)
    wait_for(lambda: value(scrape(exp), "credits_up", **ops) == 1)
    wait_for(lambda: value(scrape(exp), "credits_remaining", account="ops") == 60)
    exp.stop()
    logs = exp.logs()
    down_lines = [
        line for line in logs.splitlines() if "account down" in line and "account=ops" in line
    ]
    assert len(down_lines) == 1, logs
    assert "reason=server_error" in down_lines[0]
    assert (
        len(
            [
                line
                for line in logs.splitlines()
                if "account recovered" in line and "account=ops" in line
            ]
        )
        == 1
    )


def test_scrapes_never_call_upstream(
    simulator: SimulatorThread, start_exporter: Any, tmp_path: Path
) -> None:
    seed(simulator)
    (tmp_path / "ops.key").write_text(FE2_KEY)
    exp: ExporterProcess = start_exporter(config(simulator, interval="1h"))
    exp.wait_ready()
    calls = simulator.calls()
    assert calls == 6  # 4 accounts: theirstack 2 endpoints, windsurf 2, fullenrich 1 + 1
    for i in range(20):
        headers = [{}, {"Accept-Encoding": "gzip"}, {"Accept": "application/openmetrics-text"}][
            i % 3
        ]
        assert http_get(f"{exp.url}/metrics", headers)[0] == 200
    assert simulator.calls() == calls


def test_sighup_and_http_reload(
    simulator: SimulatorThread, start_exporter: Any, tmp_path: Path
) -> None:
    seed(simulator)
    (tmp_path / "ops.key").write_text(FE2_KEY)
    cfg = config(simulator, interval="1h")
    exp: ExporterProcess = start_exporter(cfg)
    exp.wait_ready()
    assert value(scrape(exp), "credits_remaining", account="ops") == 77
    # Invalid config: refused, old one keeps running, reload gauge says 0.
    exp.write_config("accounts: [{name: x, provider: nosuch}]")
    status, body = http_get(f"{exp.url}/-/reload")
    assert status == 405
    status, body = http_post(f"{exp.url}/-/reload")
    assert status == 400 and "unknown provider" in json.loads(body)["errors"][0]
    s = scrape_until(exp, lambda m: value(m, "credits_exporter_config_last_reload_successful") == 0)
    assert value(s, "credits_remaining", account="ops") == 77
    # A valid one by SIGHUP: "ops" goes, "sales" stays untouched (not re-polled).
    sales_calls = simulator.calls(api_key=FE_KEY)
    cfg["accounts"] = [a for a in cfg["accounts"] if a["name"] != "ops"]
    exp.write_config(cfg)
    exp.signal(signal.SIGHUP)
    s = scrape_until(
        exp,
        lambda m: (
            value(m, "credits_exporter_config_last_reload_successful") == 1
            and value(m, "credits_up", account="ops") is None
        ),
    )
    assert value(s, "credits_remaining", account="ops") is None
    assert value(s, "credits_up", account="ops") is None
    assert value(s, "credits_remaining", account="sales") == 1234.5
    assert simulator.calls(api_key=FE_KEY) == sales_calls
    assert exp.stop() == 0
