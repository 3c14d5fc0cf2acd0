"""The monitoring files of the repository as data: the rules and alerts of prometheus/ (and
the threshold table of its README), the dashboards of grafana/, and the rule files an
end-to-end test runs with shortened waits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from . import ROOT

PROMETHEUS_DIR = ROOT / "prometheus"
EXAMPLES_DIR = ROOT / "examples"
RULE_FILES = (PROMETHEUS_DIR / "rules.yaml", PROMETHEUS_DIR / "alerts.yaml")
#: The unit tests of the rules (promtool test rules).
RULE_TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yaml"))
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"


# --------------------------------------------------------------------------- rules


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alerting_rules() -> dict[str, dict[str, Any]]:
    """Every alerting rule of prometheus/alerts.yaml by alert name."""
    doc = load_yaml(PROMETHEUS_DIR / "alerts.yaml")
    return {
        rule["alert"]: rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule
    }


def recording_rules() -> dict[str, dict[str, Any]]:
    doc = load_yaml(PROMETHEUS_DIR / "rules.yaml")
    return {
        rule["record"]: rule
        for group in doc["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def threshold_table() -> list[dict[str, str]]:
    """The rows of the table under '## Thresholds' in prometheus/README.md, cells unquoted."""
    text = (PROMETHEUS_DIR / "README.md").read_text()
    section = text.split("\n## Thresholds\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    out = []
    for line in rows[2:]:
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        row = dict(zip(header, cells, strict=True))
        out.append({key: _unquote(value) for key, value in row.items()})
    return out


def _unquote(cell: str) -> str:
    return cell[1:-1] if len(cell) >= 2 and cell[0] == cell[-1] == "`" else cell


#: A value for each threshold of the README's table that its unit tests must notice.
THRESHOLD_MUTATIONS = {
    "runningOutDays": "8",
    "expiringSoonDays": "15",
    "dataStaleSeconds": "14000",
    "exporterJobRegex": "credits-exporter",
}


def override_threshold(alerts_doc: dict[str, Any], row: dict[str, str], value: str) -> None:
    """Change one threshold the way prometheus/README.md says (and the Helm chart does): write
    ``value`` in place of the default inside the token, then the token in that alert's expr."""
    new_token = row["token"].replace(row["default"], value)
    for group in alerts_doc["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == row["alert"]:
                assert rule["expr"].count(row["token"]) == 1, row
                rule["expr"] = rule["expr"].replace(row["token"], new_token)
                return
    raise AssertionError(f"no alert {row['alert']}")


# The window an alert reads a series over, so that a failed scrape does not restart its `for`.
ALERT_WINDOW = re.compile(r"\b((?:last|max|min)_over_time\([\w:]+)\[\d+m\]\)")


def write_fast_rules(target_dir: Path, for_seconds: int = 1) -> list[Path]:
    """Copies of the canonical rule files for an end-to-end test: the same rules, with every
    alert's ``for`` shortened to ``for_seconds`` and the windows its series are read over
    (``max_over_time(credits_up[5m])``) to five times that (nothing else changes)."""
    target_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for path in RULE_FILES:
        doc = load_yaml(path)
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "alert" in rule and "for" in rule:
                    rule["for"] = f"{for_seconds}s"
                    rule["expr"] = ALERT_WINDOW.sub(rf"\1[{5 * for_seconds}s])", rule["expr"])
        copy = target_dir / path.name
        copy.write_text(yaml.safe_dump(doc, sort_keys=False))
        out.append(copy)
    return out


# --------------------------------------------------------------------------- dashboards


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard of grafana/dashboards by file name."""
    return {
        path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))
    }


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def panel_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every target of every panel."""
    for panel in iter_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            yield panel.get("title", ""), target


def dashboard_variables(dash: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A dashboard's template variables by name."""
    return {v["name"]: v for v in dash["templating"]["list"]}


def variable_query(variable: dict[str, Any]) -> str:
    query = variable.get("query", "")
    return str(query.get("query", "")) if isinstance(query, dict) else str(query)


LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


def substitute(expr: str, *, rate_interval: str = "1m", range_: str = "1h") -> str:
    """A dashboard expression as Prometheus would receive it with every variable on "All"."""
    replacements = {
        "$__rate_interval": rate_interval,
        "$__interval": rate_interval,
        "$__range": range_,
        "${__rate_interval}": rate_interval,
        "${__interval}": rate_interval,
        "${__range}": range_,
    }
    for old, new in replacements.items():
        expr = expr.replace(old, new)
    # Template variables (all multi-value with allValue ".*"), in $var and ${var} forms.
    expr = re.sub(r"\$\{(\w+)(?::\w+)?\}", ".*", expr)
    return re.sub(r"\$(\w+)", ".*", expr)
