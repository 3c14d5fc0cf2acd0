"""End to end: the exporter polls the simulator, a real Prometheus scrapes it every second and
evaluates the project's rules, a real Alertmanager delivers to a webhook this test serves.
Prometheus and Alertmanager run the configs of examples/ (routes by severity, inhibit rules),
with this test's ports and receiver.

- every query of every dashboard panel (and every template variable) returns data;
- the runway panels show the exporter's credits_runway_seconds where it exists and the recorded
  runway elsewhere;
- a balance lowered under its threshold fires CreditsLow for that account only, and Alertmanager
  delivers it with its provider, account and pool labels and a filled description; the
  overview's "Pools below threshold" counts the same pools (not a Windsurf add-on pool never
  bought);
- a key the provider rejects fires CreditsAuthFailing for that account only, and Alertmanager
  inhibits the CreditsPollFailing of the same endpoints;
- no rule fails to evaluate.

The rules are the canonical prometheus/*.yaml with every `for` shortened to 1s and the windows
alerts read series over to 5s (nothing else changes). Without prometheus, promtool or
prometheus-alertmanager the tests skip, or fail under REQUIRE_INTEGRATION=1.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from support.monitoring import alerting_rules, dashboards, panel_queries, substitute, variable_query
from support.pipeline import JOB, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

LOW_BALANCE = 120.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("pipeline"))
    try:
        stack.start()
        wait_for_baseline(stack)
        yield stack
    finally:
        stack.stop()


def wait_for_baseline(stack: Stack) -> None:
    """Prometheus has scraped a successful poll of every endpoint of every account."""
    endpoints = 2 + 2 + 2 + 1 + 1  # theirstack x2, windsurf with user_analytics, fullenrich x2

    def all_up() -> bool:
        result = stack.query(f'count(credits_up{{job="{JOB}"}} == 1)')
        return bool(result) and int(float(result[0]["value"][1])) == endpoints

    stack.wait_until(all_up, "every endpoint polled and scraped", 45)


# ------------------------------------------------------------------ scenario steps (idempotent)


def lower_sales_balance(stack: Stack) -> None:
    if "low" not in stack.done:
        assert stack.sim is not None
        stack.sim.update(stack.accounts["sales"].api_key, balance=LOW_BALANCE)
        stack.done.add("low")


def revoke_research_key(stack: Stack) -> None:
    if "revoked" not in stack.done:
        assert stack.sim is not None
        stack.sim.update(stack.accounts["research"].api_key, revoked=True)
        stack.done.add("revoked")


def expected_firing(stack: Stack) -> set[tuple[str, str]]:
    """(alertname, account) of every alert the applied steps should fire, and nothing else."""
    expected = set()
    if "low" in stack.done:
        expected.add(("CreditsLow", "sales"))
    if "revoked" in stack.done:
        expected |= {("CreditsAuthFailing", "research"), ("CreditsPollFailing", "research")}
    return expected


def firing_set(stack: Stack) -> set[tuple[str, str]]:
    return {(a["labels"]["alertname"], a["labels"].get("account", "")) for a in stack.firing()}


def assert_only_expected_alerts(stack: Stack) -> None:
    """The firing set becomes exactly the expected one (every `for` is 1s, the windows alerts
    read over 5s), and stays so over a few evaluations."""
    stack.wait_until(
        lambda: firing_set(stack) == expected_firing(stack), "the expected alerts firing", 30
    )
    for _ in range(3):
        assert firing_set(stack) == expected_firing(stack)
        time.sleep(1)
    assert stack.webhook is not None
    with stack.webhook.lock:
        delivered = {
            (a["labels"]["alertname"], a["labels"].get("account", "")) for a in stack.webhook.alerts
        }
    assert delivered <= expected_firing(stack)


def assert_description_filled(alert: dict[str, Any], *parts: str) -> None:
    description = alert["annotations"]["description"]
    assert "{{" not in description and "<no value>" not in description, description
    for part in parts:
        assert part in description, description
    name = alert["labels"]["alertname"]
    assert alert["annotations"]["summary"] == alerting_rules()[name]["annotations"]["summary"]
    assert alert["annotations"]["runbook_url"].endswith("docs/runbooks.md#" + name.lower())


# ------------------------------------------------------------------ tests


def test_low_balance_fires_credits_low_for_that_account_only(stack: Stack) -> None:
    assert not {a for a in firing_set(stack) if a[1] == "sales"}
    lower_sales_balance(stack)
    assert stack.webhook is not None
    webhook = stack.webhook
    delivered = stack.wait_until(
        lambda: webhook.received("CreditsLow"), "CreditsLow delivered to the webhook", 45
    )
    assert {a["labels"]["account"] for a in delivered} == {"sales"}
    alert = delivered[0]
    labels = alert["labels"]
    assert (labels["provider"], labels["account"], labels["pool"]) == (
        "fullenrich",
        "sales",
        "workspace",
    )
    assert labels["severity"] == "warning"
    assert labels["team"] == "sales", "the account's static labels reach the alert"
    assert labels["job"] == JOB
    assert_description_filled(alert, "fullenrich", "account sales", "pool workspace", "120")
    assert_only_expected_alerts(stack)


def test_pools_below_threshold_panel_counts_the_pools_credits_low_fires_for(stack: Stack) -> None:
    """The overview's "Pools below threshold" counts what CreditsLow fires for: engineering's
    add_on pool (a Windsurf team without add-on credits: limit 0, remaining 0, under its
    threshold of 1,000) is in neither; sales, once lowered, is in both."""
    lower_sales_balance(stack)
    (target,) = [
        t
        for title, t in panel_queries(dashboards()["credits-overview.json"])
        if title == "Pools below threshold"
    ]
    panel_expr = substitute(target["expr"])
    unbought = f'credits_limit{{job="{JOB}", account="engineering", pool="add_on"}} == 0'
    stack.wait_until(lambda: stack.query(unbought), "engineering's add_on pool scraped", 30)

    def counts() -> tuple[float, set[tuple[str, str]]] | None:
        (sample,) = stack.query(panel_expr)
        low = {
            (a["labels"]["account"], a["labels"]["pool"])
            for a in stack.firing()
            if a["labels"]["alertname"] == "CreditsLow"
        }
        panel = float(sample["value"][1])
        return (panel, low) if low and panel == len(low) else None

    panel, low = stack.wait_until(counts, "the panel's count equal to CreditsLow's pools", 30)
    assert low == {("sales", "workspace")} and panel == 1


def test_rejected_key_fires_credits_auth_failing_for_that_account_only(stack: Stack) -> None:
    revoke_research_key(stack)

    def auth_alerts() -> list[dict[str, Any]] | None:
        alerts = [a for a in stack.firing() if a["labels"]["alertname"] == "CreditsAuthFailing"]
        # Both endpoints of the account fail: wait for both, so that "only" is meaningful.
        endpoints = {a["labels"].get("api_endpoint") for a in alerts}
        return alerts if endpoints >= {"balance", "consumption"} else None

    alerts = stack.wait_until(auth_alerts, "CreditsAuthFailing firing", 45)
    assert {a["labels"]["account"] for a in alerts} == {"research"}
    for alert in alerts:
        assert alert["labels"]["provider"] == "theirstack"
        assert alert["labels"]["reason"] == "auth"
        assert_description_filled(
            alert, "theirstack", "account research", f"endpoint {alert['labels']['api_endpoint']}"
        )
    assert stack.webhook is not None
    webhook = stack.webhook
    delivered = stack.wait_until(
        lambda: webhook.received("CreditsAuthFailing"), "CreditsAuthFailing delivered", 30
    )
    assert {a["labels"]["account"] for a in delivered} == {"research"}
    assert_only_expected_alerts(stack)


def test_rejected_key_inhibits_the_generic_poll_failure(stack: Stack) -> None:
    """examples/alertmanager's inhibit rule matches on api_endpoint: the CreditsPollFailing of
    each endpoint with a rejected key is held back by that endpoint's CreditsAuthFailing."""
    revoke_research_key(stack)

    def inhibited() -> list[dict[str, Any]] | None:
        alerts = stack.alertmanager_alerts("CreditsPollFailing")
        research = [a for a in alerts if a["labels"].get("account") == "research"]
        endpoints = {a["labels"]["api_endpoint"] for a in research}
        done = endpoints >= {"balance", "consumption"} and all(
            a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"] for a in research
        )
        return research if done else None

    for alert in stack.wait_until(inhibited, "CreditsPollFailing inhibited", 45):
        assert alert["labels"]["provider"] == "theirstack"
    firing = {(a["labels"]["alertname"], a["labels"]["account"]) for a in stack.firing()}
    assert ("CreditsPollFailing", "research") in firing  # Prometheus fires it; AM holds it


def runway_panel_expr() -> str:
    overview = dashboards()["credits-overview.json"]
    (target,) = [t for title, t in panel_queries(overview) if title == "Runway"]
    return substitute(target["expr"])


def by_pool(result: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    return {(r["metric"]["account"], r["metric"]["pool"]): float(r["value"][1]) for r in result}


def test_runway_panel_prefers_the_exporters_runway(stack: Stack) -> None:
    """The exporter's own runway (theirstack: 7 days of the provider's history) is there from
    the first scrape, and where the recorded one (the last 24 hours) exists too, the panel
    shows the exporter's. (The fall-back to the recorded runway needs 5 minutes of balance
    history: tests/unit/test_dashboards.py evaluates it with promtool.)"""
    expr = runway_panel_expr()
    own_expr = f'credits_runway_seconds{{job="{JOB}", account="growth"}} / 86400'
    recorded_expr = (
        f'provider_account_pool:credits_remaining_per_consumed:ratio_rate1d{{job="{JOB}",'
        ' account="growth"} / 86400'
    )

    def at_once() -> tuple[float, float, float] | None:
        at = time.time()
        panel = by_pool(stack.query(expr, at)).get(("growth", "api"))
        own = by_pool(stack.query(own_expr, at)).get(("growth", "api"))
        recorded = by_pool(stack.query(recorded_expr, at)).get(("growth", "api"))
        if panel is None or own is None or recorded is None:
            return None
        return panel, own, recorded

    panel, own, recorded = stack.wait_until(at_once, "growth's runways", 45)
    assert panel == own
    assert recorded != own


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    # The errors-by-reason panel needs failing polls; the scenario's rejected key provides them.
    revoke_research_key(stack)
    queries = [
        (f"{name}: {title} [{target['refId']}]", substitute(target["expr"]))
        for name, dash in dashboards().items()
        for title, target in panel_queries(dash)
    ]
    assert len(queries) > 20
    pending = dict(queries)

    def all_answered() -> bool:
        for key, expr in list(pending.items()):
            if stack.query(expr):
                del pending[key]
        return not pending

    try:
        # Recording rules over a day need a few evaluations to show consumption.
        stack.wait_until(all_answered, "every panel query returns data", 60)
    except AssertionError:
        pytest.fail("queries without data:\n" + "\n".join(f"{k}: {v}" for k, v in pending.items()))


def test_every_dashboard_variable_has_values(stack: Stack) -> None:
    for name, dash in dashboards().items():
        for var in dash["templating"]["list"]:
            if var["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable_query(var))
            assert match, var
            values = stack.label_values(match.group(2), substitute(match.group(1)))
            assert values, f"{name}: ${var['name']} has no values"


def test_no_rule_fails_to_evaluate(stack: Stack) -> None:
    def evaluated() -> dict[str, str] | None:
        health = stack.rule_health()
        return None if "unknown" in health.values() else health

    health = stack.wait_until(evaluated, "every rule evaluated", 30)
    assert set(health) >= set(alerting_rules())
    assert {name: h for name, h in health.items() if h != "ok"} == {}
