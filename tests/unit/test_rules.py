"""The Prometheus rules of prometheus/: promtool accepts them and their unit tests pass, every
alert follows the house conventions and is covered, and prometheus/README.md's threshold table
(which the Helm chart relies on) matches alerts.yaml."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from pipeline_tools import (
    PROMETHEUS_DIR,
    ROOT,
    RULE_FILES,
    alerting_rules,
    load_yaml,
    override_threshold,
    recording_rules,
    require_binary,
    threshold_table,
)

EXPECTED_ALERTS = {
    "CreditsLow",
    "CreditsExhausted",
    "CreditsRunningOut",
    "CreditsExpiringSoon",
    "CreditsPollFailing",
    "CreditsAuthFailing",
    "CreditsDataStale",
    "CreditsExporterDown",
}
# Alerts about one pool; the others are about an account, an endpoint or the exporter.
POOL_ALERTS = {"CreditsLow", "CreditsExhausted", "CreditsRunningOut"}
ENDPOINT_ALERTS = {"CreditsPollFailing", "CreditsAuthFailing", "CreditsDataStale"}
RUNBOOK_PREFIX = "https://github.com/credits-exporter/credits-exporter/blob/main/docs/runbooks.md#"
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yaml"))


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    assert TEST_FILES
    result = promtool("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


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
    if name == "CreditsExporterDown":
        assert "$labels.instance" in description
    else:
        assert "$labels.provider" in description
        assert "$labels.account" in description
        if name in POOL_ALERTS:
            assert "$labels.pool" in description
        else:
            assert "(all pools" in description, "say that the alert is not about one pool"
        if name in ENDPOINT_ALERTS:
            assert "$labels.endpoint" in description
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


def test_recording_rules_follow_mixin_naming() -> None:
    records = recording_rules()
    assert records
    for name in records:
        level, metric, operations = name.split(":")
        assert re.fullmatch(r"[a-z]+(?:_[a-z]+)*", level), name
        assert metric.startswith("credits_"), name
        assert re.fullmatch(r"[a-z0-9_]+", operations), name


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in TEST_FILES:
        doc = load_yaml(path)
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert firing >= EXPECTED_ALERTS, f"no firing case: {EXPECTED_ALERTS - firing}"
    assert quiet >= EXPECTED_ALERTS, f"no case that must stay quiet: {EXPECTED_ALERTS - quiet}"


def test_every_recording_rule_is_unit_tested() -> None:
    tested = ""
    for path in TEST_FILES:
        for test in load_yaml(path)["tests"]:
            tested += " ".join(case["expr"] for case in test.get("promql_expr_test", []))
    for name in recording_rules():
        assert name in tested, f"{name} has no promql_expr_test"


# --------------------------------------------------------------------------- thresholds

# A changed value for each threshold that the promtool unit tests must notice.
MUTATIONS = {
    "runningOutDays": "8",
    "expiringSoonDays": "15",
    "dataStaleSeconds": "7000",
    "exporterJobRegex": "credits-exporter",
}


def test_threshold_table_matches_the_alerts() -> None:
    rules = alerting_rules()
    table = threshold_table()
    assert {row["parameter"] for row in table} == set(MUTATIONS)
    for row in table:
        expr = rules[row["alert"]]["expr"]
        assert expr.count(row["token"]) == 1, f"{row['token']!r} must occur once in the expr"
        assert row["token"].count(row["default"]) == 1, row
        # The default is one whole literal, not part of a longer number or name.
        assert re.fullmatch(r"[<>]=? [0-9.]+|job=~\"[^\"]+\"", row["token"]), row


def copy_rules(tmp_path: Path, alerts_doc: dict[str, Any]) -> Path:
    """prometheus/ with the given alerts.yaml, for promtool (tests use relative paths)."""
    target = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, target)
    (target / "alerts.yaml").write_text(yaml.safe_dump(alerts_doc, sort_keys=False))
    return target


@pytest.mark.parametrize("row", threshold_table(), ids=lambda row: row["parameter"])
def test_overridden_threshold_is_valid_and_noticed(row: dict[str, str], tmp_path: Path) -> None:
    """Overriding a threshold as documented keeps the rules valid, and the unit tests are
    sensitive to it (so each threshold's boundary really is tested)."""
    doc = load_yaml(PROMETHEUS_DIR / "alerts.yaml")
    override_threshold(doc, row, MUTATIONS[row["parameter"]])
    target = copy_rules(tmp_path, doc)
    checked = promtool("check", "rules", "rules.yaml", "alerts.yaml", cwd=target)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted(str(p.relative_to(target)) for p in (target / "tests").glob("*.yaml"))
    tested = promtool("test", "rules", *tests, cwd=target)
    assert tested.returncode != 0, f"the unit tests did not notice {row['parameter']} changing"
    assert row["alert"] in tested.stdout + tested.stderr


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
