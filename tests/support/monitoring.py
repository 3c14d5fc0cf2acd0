"""Helpers for the monitoring-pipeline tests (rules, dashboards, metrics docs, end to end).

Used by tests/unit/test_rules.py, test_dashboards.py, test_metrics_doc.py and
tests/integration/test_pipeline.py. Nothing here is a pytest fixture: the tests own their
fixtures, this module only holds plain functions and classes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "prometheus"
EXAMPLES_DIR = ROOT / "examples"
RULE_FILES = (PROMETHEUS_DIR / "rules.yaml", PROMETHEUS_DIR / "alerts.yaml")
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
VENV_EXPORTER = ROOT / ".venv" / "bin" / "credits-exporter"

T = TypeVar("T")


# --------------------------------------------------------------------------- external programs


def integration_required() -> bool:
    """REQUIRE_INTEGRATION=1 (as in .ci/run): a missing program fails instead of skipping."""
    return os.environ.get("REQUIRE_INTEGRATION", "") not in ("", "0", "false", "no")


def require_binary(name: str) -> str:
    """Path of the program ``name``; skips the test without it, or fails it under
    REQUIRE_INTEGRATION=1."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian packages prometheus, prometheus-alertmanager)"
        if integration_required():
            pytest.fail(f"{message}; REQUIRE_INTEGRATION=1 demands it")
        pytest.skip(message)
    return path


def exporter_binary() -> str:
    """The project's console script (the venv's, else the one on PATH)."""
    if VENV_EXPORTER.exists():
        return str(VENV_EXPORTER)
    return require_binary("credits-exporter")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.25,
    what: str = "condition",
) -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout`` seconds with the
    last value or error it produced."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            value, last = None, exc
        else:
            last = value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not met within {timeout:.0f}s (last: {last!r})")
        time.sleep(interval)


class ManagedProcess:
    """A subprocess with its output in a log file, killed (with its process group) on stop."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, cwd: Path | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=cwd or log_dir,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


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
