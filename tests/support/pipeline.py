"""The whole monitoring pipeline on loopback, for tests/integration/test_pipeline.py.

simulator (thread) <- credits-exporter (subprocess) <- prometheus (subprocess, the project's
rule files with shortened `for`) -> prometheus-alertmanager (subprocess) -> webhook (thread).
"""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from exporter.simulator import Simulator, SimulatorThread

from . import ManagedProcess, exporter_command, free_port, require_tool, wait_for
from .monitoring import EXAMPLES_DIR, load_yaml, write_fast_rules

JOB = "credits-exporter"


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Account:
    """One exporter account and the simulated provider account behind it."""

    name: str
    provider: str
    api_key: str
    sim_fields: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)


def accounts() -> list[Account]:
    now = datetime.now(UTC)
    cycle_start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=5)
    return [
        # Consumption reported by the provider; burns a credit every ~0.1 s so that the
        # recording rules see consumption within seconds. Expires in 30 days (not soon).
        Account(
            "growth",
            "theirstack",
            "e2e-theirstack-growth",
            {
                "api_credits": 500_000,
                "ui_credits": 2_000,
                "used_api_credits": 1_000,
                "used_ui_credits": 10,
                "earliest_expiration": _iso(now + timedelta(days=30)),
                "burn_api_per_day": 864_000.0,
            },
            {"low_credit_threshold": {"api": 10_000, "ui": 100}},
        ),
        # The account whose key gets revoked.
        Account(
            "research",
            "theirstack",
            "e2e-theirstack-research",
            {"api_credits": 40_000, "ui_credits": 500},
            {"low_credit_threshold": {"api": 1_000, "ui": 50}},
        ),
        # A team that never bought add-on credits: add_on has limit 0 and remaining 0, under its
        # threshold, and is not low (neither for CreditsLow nor for the overview's count).
        Account(
            "engineering",
            "windsurf",
            "e2e-windsurf-engineering",
            {
                "prompt_credits_per_seat": 500,
                "num_seats": 10,
                "add_on_credits_available": 0,
                "add_on_credits_used": 0,
                "billing_cycle_start": _iso(cycle_start),
                "billing_cycle_end": _iso(cycle_start + timedelta(days=30)),
                "users": [
                    {"name": "ada", "email": "ada@example.com", "promptCreditsUsed": 400},
                    {"name": "bob", "email": "bob@example.com", "promptCreditsUsed": 250},
                ],
            },
            {"prompt_usage": True, "low_credit_threshold": {"prompt": 500, "add_on": 1_000}},
        ),
        # The account whose balance gets lowered under its threshold.
        Account(
            "sales",
            "fullenrich",
            "e2e-fullenrich-sales",
            {"balance": 4_000.0},
            {"low_credit_threshold": 500, "labels": {"team": "sales"}},
        ),
        Account(
            "support",
            "fullenrich",
            "e2e-fullenrich-support",
            {"balance": 2_500.0},
            {"low_credit_threshold": 500},
        ),
    ]


class Webhook:
    """Alertmanager's webhook receiver: keeps every alert it is sent."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                payload = json.loads(body)
                with webhook.lock:
                    webhook.alerts.extend(payload.get("alerts", []))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self, alertname: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                a
                for a in self.alerts
                if a["labels"].get("alertname") == alertname and a.get("status") == "firing"
            ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def http_json(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class Stack:
    """Starts everything in ``workdir``; ``stop()`` ends every process and thread it started."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[ManagedProcess] = []
        self.sim: SimulatorThread | None = None
        self.webhook: Webhook | None = None
        self.accounts = {a.name: a for a in accounts()}
        self.done: set[str] = set()  # scenario steps applied (see test_pipeline.py)

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        prometheus = require_tool("prometheus")
        promtool = require_tool("promtool")
        alertmanager = require_tool("prometheus-alertmanager")
        exporter = exporter_command()

        self.sim = SimulatorThread(Simulator())
        self.sim.start()
        for account in self.accounts.values():
            self.sim.add_account(account.provider, account.api_key, **account.sim_fields)
        self.webhook = Webhook()

        exporter_port, prometheus_port, alertmanager_port = free_port(), free_port(), free_port()
        self.exporter_url = f"http://127.0.0.1:{exporter_port}"
        self.prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        self.alertmanager_url = f"http://127.0.0.1:{alertmanager_port}"

        config = self.workdir / "exporter.yaml"
        config.write_text(yaml.safe_dump(self.exporter_config()))
        self.processes.append(
            ManagedProcess(
                "exporter",
                [
                    *exporter,
                    f"--config.file={config}",
                    f"--web.listen-address=127.0.0.1:{exporter_port}",
                ],
                self.workdir,
            )
        )

        am_config = self.workdir / "alertmanager.yaml"
        am_config.write_text(yaml.safe_dump(self.alertmanager_config()))
        (self.workdir / "am-data").mkdir()
        self.processes.append(
            ManagedProcess(
                "alertmanager",
                [
                    alertmanager,
                    f"--config.file={am_config}",
                    f"--storage.path={self.workdir / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                    "--cluster.listen-address=",
                ],
                self.workdir,
            )
        )

        rule_files = write_fast_rules(self.workdir / "rules", for_seconds=1)
        self._check_rules(promtool, rule_files)
        prom_config = self.workdir / "prometheus.yaml"
        prom_config.write_text(
            yaml.safe_dump(self.prometheus_config(rule_files, exporter_port, alertmanager_port))
        )
        (self.workdir / "prom-data").mkdir()
        self.processes.append(
            ManagedProcess(
                "prometheus",
                [
                    prometheus,
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={self.workdir / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                ],
                self.workdir,
            )
        )

        self.wait_until(lambda: http_ok(self.exporter_url + "/readyz"), "exporter ready", 30)
        self.wait_until(lambda: http_ok(self.alertmanager_url + "/-/ready"), "alertmanager", 30)
        self.wait_until(lambda: http_ok(self.prometheus_url + "/-/ready"), "prometheus", 30)

    @staticmethod
    def _check_rules(promtool: str, rule_files: list[Path]) -> None:
        result = subprocess.run(
            [promtool, "check", "rules", *map(str, rule_files)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def exporter_config(self) -> dict[str, Any]:
        assert self.sim is not None
        return {
            "defaults": {"interval": "1s", "timeout": "2s"},
            "accounts": [
                {
                    "name": a.name,
                    "provider": a.provider,
                    "api_key": a.api_key,
                    "base_url": self.sim.base_url(a.provider),
                    **a.config,
                }
                for a in self.accounts.values()
            ],
        }

    def alertmanager_config(self) -> dict[str, Any]:
        """examples/alertmanager/alertmanager.yml (routes by severity, inhibit rules) with every
        receiver replaced by this test's webhook and the waits shortened."""
        assert self.webhook is not None
        config: dict[str, Any] = load_yaml(EXAMPLES_DIR / "alertmanager" / "alertmanager.yml")
        routes = [config["route"], *config["route"].get("routes", [])]
        for route in routes:
            route["receiver"] = "webhook"
            for key in ("group_wait", "group_interval"):
                if key in route:
                    route[key] = "1s"
        config["receivers"] = [
            {
                "name": "webhook",
                "webhook_configs": [{"url": self.webhook.url, "send_resolved": False}],
            }
        ]
        return config

    @staticmethod
    def prometheus_config(
        rule_files: list[Path], exporter_port: int, alertmanager_port: int
    ) -> dict[str, Any]:
        """examples/prometheus/prometheus.yml, scraping and evaluating every second, with the
        shortened rules, this test's ports, and only the exporter's job."""
        config: dict[str, Any] = load_yaml(EXAMPLES_DIR / "prometheus" / "prometheus.yml")
        config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
        config["rule_files"] = [str(p) for p in rule_files]
        config["alerting"]["alertmanagers"][0]["static_configs"] = [
            {"targets": [f"127.0.0.1:{alertmanager_port}"]}
        ]
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
        job["static_configs"] = [{"targets": [f"127.0.0.1:{exporter_port}"]}]
        config["scrape_configs"] = [job]
        return config

    # ------------------------------------------------------------------ use

    def wait_until(self, check: Any, what: str, timeout: float = 45) -> Any:
        def guarded() -> Any:
            for proc in self.processes:
                assert proc.alive(), f"{proc.name} exited:\n{proc.log_tail()}"
            return check()

        return wait_for(guarded, timeout=timeout, interval=0.25, what=what)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        url = self.prometheus_url + "/api/v1/query?" + urllib.parse.urlencode(params)
        answer = http_json(url)
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def label_values(self, label: str, match: str | None) -> list[str]:
        params = {"match[]": match} if match else {}
        url = f"{self.prometheus_url}/api/v1/label/{label}/values?" + urllib.parse.urlencode(params)
        answer = http_json(url)
        assert answer["status"] == "success", answer
        return list(answer["data"])

    def alertmanager_alerts(self, alertname: str) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds under that name, with their status (active,
        suppressed, and by which inhibiting alerts)."""
        query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
        return list(http_json(f"{self.alertmanager_url}/api/v2/alerts?{query}"))

    def firing(self) -> list[dict[str, Any]]:
        answer = http_json(self.prometheus_url + "/api/v1/alerts")
        return [a for a in answer["data"]["alerts"] if a["state"] == "firing"]

    def rule_health(self) -> dict[str, str]:
        """Rule name -> "ok", "err: <error>" or "unknown" (not evaluated yet)."""
        answer = http_json(self.prometheus_url + "/api/v1/rules")
        out = {}
        for group in answer["data"]["groups"]:
            for rule in group["rules"]:
                health = rule.get("health", "unknown")
                if health == "err":
                    health = f"err: {rule.get('lastError')}"
                out[rule["name"]] = health
        return out

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        if self.webhook is not None:
            self.webhook.stop()
        if self.sim is not None:
            self.sim.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log_tail(2000)}" for p in self.processes)
