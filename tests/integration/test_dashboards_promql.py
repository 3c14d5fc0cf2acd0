"""The dashboards' queries through promtool: every query parses as PromQL with the variables
set, and the runway queries evaluate to the runway they should with the recording rules."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from support import ROOT, promtool
from support.monitoring import (
    alerting_rules,
    dashboard_variables,
    dashboards,
    panel_queries,
    substitute,
    variable_query,
)


def test_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every query (and every variable's selector) with the variables set."""
    rules = []
    for name, dash in dashboards().items():
        for i, (_, target) in enumerate(panel_queries(dash)):
            rules.append({"record": f"check:{name.split('.')[0]}_{i}:x", "expr": target["expr"]})
        for var_name, var in dashboard_variables(dash).items():
            match = re.fullmatch(r"label_values\((.+), \w+\)", variable_query(var))
            if match:
                rules.append({"record": f"check:var_{var_name}:x", "expr": match.group(1)})
    for rule in rules:
        rule["record"] = re.sub(r"[^\w:]", "_", rule["record"])
        rule["expr"] = substitute(rule["expr"])
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- runway queries


def test_runway_queries_prefer_the_exporters_runway(tmp_path: Path) -> None:
    """Every runway query of the dashboards, evaluated by promtool with the recording rules: a
    pool the exporter has a runway for (theirstack: from the provider's 7-day history, at once)
    shows it, in days, although the recorded one exists too; a pool with only a balance
    (fullenrich) shows the recorded runway."""
    targets = [
        (title, target)
        for dash in dashboards().values()
        for title, target in panel_queries(dash)
        if "credits_runway_seconds" in target["expr"]
    ]
    assert {title for title, _ in targets} == {"Shortest runway", "Balances", "Runway"}
    labels = 'job="credits-exporter", instance="10.0.0.1:9966"'
    growth = f'{{{labels}, provider="theirstack", account="growth", pool="api"}}'
    sales = f'{{{labels}, provider="fullenrich", account="sales", pool="workspace"}}'
    series = [
        # the exporter's runway, 5 days; the counter says much less (its recorded runway differs)
        {"series": f"credits_runway_seconds{growth}", "values": "432000x400"},
        {"series": f"credits_remaining{growth}", "values": "10000x400"},
        {"series": f"credits_consumed_total{growth}", "values": "0+100x400"},
        # a balance only: 10 credits per 5 minutes from 20000
        {"series": f"credits_remaining{sales}", "values": "20000-10x400"},
    ]
    # sales at 30h: 16400 left, 2890 consumed in the last day (289 steps of the subquery)
    sales_days = 16400 / 2890
    cases = []
    for title, target in targets:
        expected = [(growth, 5.0), (sales, sales_days)]
        if title == "Shortest runway":
            expected = [("{}", 5.0)]
        cases.append(
            {
                "expr": substitute(target["expr"]),
                "eval_time": "30h",
                "exp_samples": [{"labels": lbl, "value": value} for lbl, value in expected],
            }
        )
    test_file = tmp_path / "runway_test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(ROOT / "prometheus" / "rules.yaml")],
                "evaluation_interval": "5m",
                "tests": [{"interval": "5m", "input_series": series, "promql_expr_test": cases}],
            }
        )
    )
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- low pools


def test_pools_below_threshold_counts_what_credits_low_fires_for(tmp_path: Path) -> None:
    """The overview's "Pools below threshold" and CreditsLow's expression, evaluated by promtool
    on the same series, count the same pools: a Windsurf team without add-on credits (add_on:
    limit 0, remaining 0, under its threshold) is not low; its prompt and team pools, and a pool
    without a limit (fullenrich), are."""
    (target,) = [
        t
        for title, t in panel_queries(dashboards()["credits-overview.json"])
        if title == "Pools below threshold"
    ]
    labels = 'job="credits-exporter", instance="10.0.0.1:9966"'

    def pool(provider: str, account: str, name: str, **values: float) -> list[dict[str, str]]:
        selector = f'{{{labels}, provider="{provider}", account="{account}", pool="{name}"}}'
        return [
            {"series": f"credits_{metric}{selector}", "values": f"{value:g}x10"}
            for metric, value in values.items()
        ]

    series = [
        *pool("windsurf", "design", "add_on", remaining=0, limit=0, low_threshold=100),
        *pool("windsurf", "design", "prompt", remaining=50, limit=5000, low_threshold=100),
        *pool("windsurf", "design", "team", remaining=50, limit=5000, low_threshold=3000),
        *pool("fullenrich", "sales", "workspace", remaining=120, low_threshold=500),
        *pool("theirstack", "growth", "api", remaining=20000, limit=50000, low_threshold=1000),
    ]
    credits_low = alerting_rules()["CreditsLow"]["expr"]
    cases = [
        {"expr": expr, "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 3}]}
        for expr in (substitute(target["expr"]), f"count({credits_low})")
    ]
    test_file = tmp_path / "low_test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": cases}],
            }
        )
    )
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
