"""examples/: the files for running Prometheus, Alertmanager, Grafana and the exporter without
Kubernetes validate with the real tools (promtool check config, amtool check-config,
systemd-analyze verify and security), agree with the rules, dashboards and README they go with,
and docs/deployment.md walks through each. tests/integration/test_pipeline.py runs the
Prometheus and Alertmanager examples for real."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.cli import build_parser, split_command
from support import require_tool

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PROMETHEUS = EXAMPLES / "prometheus" / "prometheus.yml"
ALERTMANAGER = EXAMPLES / "alertmanager" / "alertmanager.yml"
GRAFANA = EXAMPLES / "grafana" / "provisioning"
UNIT = EXAMPLES / "systemd" / "credits-exporter.service"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def alert_rules() -> list[dict[str, Any]]:
    doc = load(ROOT / "prometheus" / "alerts.yaml")
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


# --------------------------------------------------------------------------- Prometheus


def test_prometheus_config_is_valid_and_loads_the_rules() -> None:
    result = run(require_tool("promtool"), "check", "config", str(PROMETHEUS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout
    config = load(PROMETHEUS)
    # Recording rules before the alerts that read them; the very files of prometheus/.
    rule_files = [PROMETHEUS.parent / f for f in config["rule_files"]]
    assert [p.name for p in rule_files] == ["rules.yaml", "alerts.yaml"]
    for path in rule_files:
        assert path.resolve() == (ROOT / "prometheus" / path.name).resolve()
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]


def test_prometheus_job_is_the_one_credits_exporter_down_watches() -> None:
    down = next(r for r in alert_rules() if r["alert"] == "CreditsExporterDown")
    regex = re.search(r'job=~"([^"]+)"', down["expr"])
    assert regex
    jobs = [
        job["job_name"]
        for job in load(PROMETHEUS)["scrape_configs"]
        if job["static_configs"][0]["targets"] == ["localhost:9966"]
    ]
    assert len(jobs) == 1 and re.fullmatch(regex.group(1), jobs[0]), jobs


# --------------------------------------------------------------------------- Alertmanager


def test_alertmanager_config_is_valid() -> None:
    result = run(require_tool("amtool"), "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout


def test_alertmanager_routes_every_severity_to_a_receiver() -> None:
    config = load(ALERTMANAGER)
    receivers = {r["name"] for r in config["receivers"]}
    routes = {}
    for route in config["route"]["routes"]:
        (matcher,) = route["matchers"]
        name, value = (part.strip() for part in matcher.split("="))
        assert name == "severity"
        routes[value] = route["receiver"]
    assert {r["labels"]["severity"] for r in alert_rules()} <= set(routes)
    assert set(routes.values()) | {config["route"]["receiver"]} <= receivers
    assert routes["critical"] != routes["warning"], "critical alerts page someone else"
    # One notification per alert and account: every alert has these labels, or none of them.
    assert set(config["route"]["group_by"]) <= {"alertname", "provider", "account"}


def test_alertmanager_inhibitions_are_the_documented_ones() -> None:
    readme = (ROOT / "prometheus" / "README.md").read_text()
    block = re.search(r"```yaml\n(inhibit_rules:.*?)```", readme, re.DOTALL)
    assert block, "prometheus/README.md documents the inhibit rules"
    assert load(ALERTMANAGER)["inhibit_rules"] == yaml.safe_load(block.group(1))["inhibit_rules"]
    # Every label they compare is one both alerts carry.
    rules = {r["alert"]: r for r in alert_rules()}
    for inhibit in load(ALERTMANAGER)["inhibit_rules"]:
        for side in ("source_matchers", "target_matchers"):
            (matcher,) = inhibit[side]
            name = matcher.split("=")[1].strip()
            description = rules[name]["annotations"]["description"]
            for label in inhibit["equal"]:
                assert f"$labels.{label}" in description, (name, label)


# --------------------------------------------------------------------------- Grafana


def test_grafana_provisions_a_prometheus_data_source() -> None:
    doc = load(GRAFANA / "datasources" / "credits-exporter.yaml")
    assert doc["apiVersion"] == 1
    (source,) = doc["datasources"]
    assert source["type"] == "prometheus" and source["access"] == "proxy"
    assert source["url"] == "http://localhost:9090"  # examples/prometheus's Prometheus
    assert set(source) <= {
        "name",
        "uid",
        "type",
        "access",
        "url",
        "isDefault",
        "editable",
        "jsonData",
    }
    scrape = load(PROMETHEUS)["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == scrape
    # The dashboards ask for a data source of that type through their variable.
    for path in (ROOT / "grafana" / "dashboards").glob("*.json"):
        variables = yaml.safe_load(path.read_text())["templating"]["list"]
        assert {"type": "datasource", "query": "prometheus"}.items() <= variables[0].items()


def test_grafana_provisions_the_dashboards_from_files() -> None:
    doc = load(GRAFANA / "dashboards" / "credits-exporter.yaml")
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False  # the files are the source of truth
    assert provider["options"]["path"].startswith("/var/lib/grafana/dashboards/")


# --------------------------------------------------------------------------- systemd


def unit_lines(text: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            pairs.append((key, value))
    return pairs


@pytest.fixture
def installed_unit(tmp_path: Path) -> Path:
    """The unit with the exporter this test suite runs in place of /opt/credits-exporter."""
    exporter = Path(sys.executable).with_name("credits-exporter")
    assert exporter.exists()
    text = UNIT.read_text().replace("/opt/credits-exporter/bin/credits-exporter", str(exporter))
    path = tmp_path / UNIT.name
    path.write_text(text)
    return path


def test_systemd_unit_verifies(installed_unit: Path) -> None:
    result = run(require_tool("systemd-analyze"), "verify", str(installed_unit))
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_systemd_unit_is_hardened(installed_unit: Path) -> None:
    result = run(require_tool("systemd-analyze"), "security", "--offline=yes", str(installed_unit))
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert level, result.stdout + result.stderr
    assert float(level.group(1)) <= 2.0, result.stdout  # systemd calls up to 3.9 "OK"
    settings = dict(unit_lines(UNIT.read_text()))
    assert settings["DynamicUser"] == "yes" and settings["NoNewPrivileges"] == "yes"
    assert settings["ProtectSystem"] == "strict" and settings["CapabilityBoundingSet"] == ""


def test_systemd_unit_runs_the_exporter_as_documented() -> None:
    settings = unit_lines(UNIT.read_text())
    starts = [shlex.split(v) for k, v in settings if k in ("ExecStart", "ExecStartPre")]
    assert len(starts) == 2
    for argv in starts:
        command, rest = split_command(argv[1:])
        assert command in (None, "check-config"), argv
        build_parser().parse_args(rest)  # flags the exporter knows (exits 2 otherwise)
    assert dict(settings)["RestartPreventExitStatus"] == "2", "a bad config does not loop"
    assert dict(settings)["ExecReload"] == "/bin/kill -HUP $MAINPID"
    credentials = [v for k, v in settings if k == "LoadCredential"]
    assert credentials and all(v.startswith(f"{v.split(':')[0]}:/etc/") for v in credentials)


# --------------------------------------------------------------------------- docs


def test_deployment_docs_walk_through_every_example() -> None:
    text = (ROOT / "docs" / "deployment.md").read_text()
    examples = sorted(
        p.relative_to(ROOT).as_posix()
        for p in EXAMPLES.rglob("*")
        if p.is_file()
        and not p.is_symlink()
        and "credits-exporter/" not in str(p.relative_to(EXAMPLES))
    )
    assert len(examples) == 5, examples
    for path in examples:
        assert f"`{path}`" in text, f"docs/deployment.md does not mention {path}"
    for command in ("promtool check config", "amtool check-config", "systemd-analyze verify"):
        assert command in text, command
