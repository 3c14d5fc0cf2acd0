"""The Prometheus rules of prometheus/ as files: every alert follows the house conventions and
is covered by a unit test, and prometheus/README.md's threshold table (which the Helm chart
relies on) matches alerts.yaml. tests/integration/test_rules_promtool.py runs them through
promtool."""

from __future__ import annotations

import re

import pytest

from support import ROOT
from support.monitoring import (
    PROMETHEUS_DIR,
    RULE_TEST_FILES,
    THRESHOLD_MUTATIONS,
    alerting_rules,
    load_yaml,
    recording_rules,
    threshold_table,
)

EXPECTED_ALERTS = {
    "CreditsLow",
    "CreditsExhausted",
    "CreditsRunningOut",
    "CreditsRunningOutBeforeCycleEnd",
    "CreditsExpiringSoon",
    "CreditsExpired",
    "CreditsPollFailing",
    "CreditsAuthFailing",
    "CreditsDataStale",
    "CreditsExporterDown",
    "CreditsExporterConfigReloadFailed",
}
# Alerts about one pool, one endpoint, or the exporter; the others are about an account.
POOL_ALERTS = {
    "CreditsLow",
    "CreditsExhausted",
    "CreditsRunningOut",
    "CreditsRunningOutBeforeCycleEnd",
}
ENDPOINT_ALERTS = {"CreditsPollFailing", "CreditsAuthFailing", "CreditsDataStale"}
EXPORTER_ALERTS = {"CreditsExporterDown", "CreditsExporterConfigReloadFailed"}
# An alert waiting this long must not restart its `for` at one failed scrape.
LONG_FOR_SECONDS = 10 * 60
RUNBOOK_PREFIX = "https://github.com/credits-exporter/credits-exporter/blob/main/docs/runbooks.md#"


def test_the_expected_alerts_exist() -> None:
    assert set(alerting_rules()) == EXPECTED_ALERTS


@pytest.mark.parametrize("name", sorted(EXPECTED_ALERTS))
def test_alert_conventions(name: str) -> None:
    rule = alerting_rules()[name]
    assert re.fullmatch(r"Credits(?:[A-Z][a-z]+)+", name)
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert re.fullmatch(r"\d+[smh]", rule["for"]), "every alert waits a little"
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert "{{" not in annotations["summary"], "summary is static; details go in description"
    description = annotations["description"]
    assert "$value" in description, "description states the value"
    if name in EXPORTER_ALERTS:
        assert "$labels.instance" in description
    else:
        assert "$labels.provider" in description
        assert "$labels.account" in description
        if name in POOL_ALERTS:
            assert "$labels.pool" in description
        else:
            assert "(all pools" in description, "say that the alert is not about one pool"
        if name in ENDPOINT_ALERTS:
            assert "$labels.api_endpoint" in description
    assert annotations["runbook_url"] == RUNBOOK_PREFIX + name.lower()


def test_runbooks_have_a_section_per_alert() -> None:
    text = (ROOT / "docs" / "runbooks.md").read_text()
    headings = re.findall(r"^## (\S+)$", text, flags=re.MULTILINE)
    # GitHub's anchor of "## CreditsLow" is #creditslow, which runbook_url points at.
    assert set(headings) == EXPECTED_ALERTS
    for name in EXPECTED_ALERTS:
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        for part in ("**Meaning.**", "**Confirm.**", "**Act"):
            assert part in section, f"{name}: runbook lacks {part}"


def exporter_metric_names() -> set[str]:
    """The metric names docs/metrics.md documents, counters without _total (as the naming
    guide writes them in recorded names)."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    names = re.findall(r"^\| `(credits_\w+)` \| (gauge|counter) \|", text, flags=re.MULTILINE)
    return {name.removesuffix("_total") if kind == "counter" else name for name, kind in names}


def test_recording_rules_follow_the_naming_guide() -> None:
    """level:metric:operations with the metric name unchanged (counters without _total), and
    a ratio named a_per_b:ratio... (the Prometheus "Recording rules" practices)."""
    records = recording_rules()
    assert records
    metrics = exporter_metric_names()
    assert "credits_consumed" in metrics and "credits_remaining" in metrics
    for name in records:
        level, metric, operations = name.split(":")
        assert re.fullmatch(r"[a-z]+(?:_[a-z]+)*", level), name
        assert re.fullmatch(r"[a-z0-9_]+", operations), name
        if "_per_" in metric:
            numerator, denominator = metric.split("_per_")
            assert numerator in metrics, f"{name}: {numerator} is not an exporter metric"
            assert f"credits_{denominator}" in metrics, f"{name}: credits_{denominator}?"
            assert operations.startswith("ratio"), f"{name}: a ratio's operation is ratio"
        else:
            assert metric in metrics, f"{name}: {metric} is not an exporter metric"


def duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", text))


# A series read over a window: the last sample, or every sample, of the last few minutes.
WINDOWED = re.compile(r"\b(?:last|max|min)_over_time\((?P<series>[\w:]+)\[\d+m\]\)")
SERIES = re.compile(r"\b(?:credits_\w+|provider_account_pool:[\w:]+|up)\b(?![\w:]*\s*\()")


def test_long_alerts_survive_a_failed_scrape() -> None:
    """One failed scrape leaves a stale sample in every series of the target: an alert with a
    long `for` that reads a series directly restarts its `for` there (prometheus-mixin reads
    them through max_over_time). Each such alert reads every series over a window, and a
    promtool test puts `stale` in the series it reads and still sees it fire."""
    tests = [test for path in RULE_TEST_FILES for test in load_yaml(path)["tests"]]
    long_alerts = {
        name: rule
        for name, rule in alerting_rules().items()
        if duration_seconds(rule["for"]) >= LONG_FOR_SECONDS
    }
    assert {"CreditsPollFailing", "CreditsExpiringSoon", "CreditsRunningOut"} <= set(long_alerts)
    for name, rule in long_alerts.items():
        expr = rule["expr"]
        read = {m.group("series") for m in WINDOWED.finditer(expr)}
        assert read, f"{name}: reads no series over a window"
        direct = SERIES.findall(WINDOWED.sub("", expr))
        assert not direct, f"{name}: reads {direct} directly, not over a window"
        survived = [
            test["name"]
            for test in tests
            if any(
                "stale" in str(series["values"]).split() and series["series"].split("{")[0] in read
                for series in test["input_series"]
            )
            and any(
                case["alertname"] == name and case.get("exp_alerts")
                for case in test.get("alert_rule_test", [])
            )
        ]
        assert survived, f"{name}: no promtool test with a stale sample where it fires"


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TEST_FILES:
        doc = load_yaml(path)
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert firing >= EXPECTED_ALERTS, f"no firing case: {EXPECTED_ALERTS - firing}"
    assert quiet >= EXPECTED_ALERTS, f"no case that must stay quiet: {EXPECTED_ALERTS - quiet}"


def test_every_recording_rule_is_unit_tested() -> None:
    tested = ""
    for path in RULE_TEST_FILES:
        for test in load_yaml(path)["tests"]:
            tested += " ".join(case["expr"] for case in test.get("promql_expr_test", []))
    for name in recording_rules():
        assert name in tested, f"{name} has no promql_expr_test"


# --------------------------------------------------------------------------- thresholds


# A changed value for each threshold that the promtool unit tests must notice.
def test_threshold_table_matches_the_alerts() -> None:
    rules = alerting_rules()
    table = threshold_table()
    assert {row["parameter"] for row in table} == set(THRESHOLD_MUTATIONS)
    for row in table:
        expr = rules[row["alert"]]["expr"]
        assert expr.count(row["token"]) == 1, f"{row['token']!r} must occur once in the expr"
        assert row["token"].count(row["default"]) == 1, row
        # The default is one whole literal, not part of a longer number or name.
        assert re.fullmatch(r"[<>]=? [0-9.]+|job=~\"[^\"]+\"", row["token"]), row


def test_readme_alert_table_matches_the_rules() -> None:
    text = (PROMETHEUS_DIR / "README.md").read_text()
    section = text.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in EXPECTED_ALERTS:
            rows[cells[0]] = (cells[1], cells[3])
    rules = alerting_rules()
    assert rows == {name: (rule["labels"]["severity"], rule["for"]) for name, rule in rules.items()}
