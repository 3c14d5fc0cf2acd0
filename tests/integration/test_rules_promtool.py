"""The Prometheus rules of prometheus/ through promtool: they load, their unit tests pass, and
each threshold the README's table lists (and the Helm chart overrides) is one the unit tests
notice when it changes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import promtool
from support.monitoring import (
    PROMETHEUS_DIR,
    RULE_FILES,
    RULE_TEST_FILES,
    THRESHOLD_MUTATIONS,
    load_yaml,
    override_threshold,
    threshold_table,
)


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    assert RULE_TEST_FILES
    result = promtool("test", "rules", *map(str, RULE_TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


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
    override_threshold(doc, row, THRESHOLD_MUTATIONS[row["parameter"]])
    target = copy_rules(tmp_path, doc)
    checked = promtool("check", "rules", "rules.yaml", "alerts.yaml", cwd=target)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted(str(p.relative_to(target)) for p in (target / "tests").glob("*.yaml"))
    tested = promtool("test", "rules", *tests, cwd=target)
    assert tested.returncode != 0, f"the unit tests did not notice {row['parameter']} changing"
    assert row["alert"] in tested.stdout + tested.stderr
