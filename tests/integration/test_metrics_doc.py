"""docs/metrics.md against what the exporter really emits.

The exporter runs for real (`credits-exporter once`, and the daemon's /metrics) against the
simulator with the demo accounts, one account with static labels and one whose key the
simulator rejects (so the error counter has samples). Every documented metric must be emitted
with the documented type and labels, and nothing undocumented may be emitted. `promtool check
metrics` lints the exposition.
"""

from __future__ import annotations

import re
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter import catalogue
from exporter.model import Reason
from exporter.simulator import DEMO_ACCOUNTS, Simulator, SimulatorThread
from support import (
    ROOT,
    ManagedProcess,
    exporter_command,
    free_port,
    require_tool,
    run_exporter,
    wait_for,
)

DOC = ROOT / "docs" / "metrics.md"
STATIC_LABELS = {"team": "growth-team"}
REVOKED_KEY = "metrics-doc-revoked"


@dataclass(frozen=True)
class Emitted:
    type: str
    labels: frozenset[str]
    label_values: dict[str, frozenset[str]]


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (type, labels) from the table under '## Metrics'."""
    section = DOC.read_text().split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)`", cells[0])
        if match and len(cells) == 4:
            labels = frozenset(filter(None, map(str.strip, cells[2].split(","))))
            out[match.group(1)] = (cells[1], labels)
    return out


def documented_label_values() -> dict[str, set[str]]:
    """label -> every value the '## Label values' table names."""
    section = DOC.read_text().split("\n## Label values\n", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        match = re.fullmatch(r"\| `(\w+)` \| (.+) \|", line.strip())
        if match:
            out[match.group(1)] = set(re.findall(r"`(\w+)`", match.group(2)))
    return out


def parse(exposition: str) -> dict[str, Emitted]:
    out = {}
    for family in text_string_to_metric_families(exposition):
        # The parser names counter families without _total; the exposition (and docs) with it.
        name = family.name + "_total" if family.type == "counter" else family.name
        labels: set[str] = set()
        values: dict[str, set[str]] = {}
        for sample in family.samples:
            labels |= set(sample.labels)
            for key, value in sample.labels.items():
                values.setdefault(key, set()).add(value)
        assert family.samples, f"{name}: a family without samples (the scenario should fill it)"
        out[name] = Emitted(
            family.type,
            frozenset(labels - set(STATIC_LABELS)),
            {k: frozenset(v) for k, v in values.items()},
        )
    return out


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    sim = SimulatorThread(Simulator(seed_demo=True))
    sim.start()
    sim.add_account("fullenrich", REVOKED_KEY, balance=100.0)
    sim.update(REVOKED_KEY, revoked=True)
    accounts: list[dict[str, Any]] = [
        {**account, "base_url": sim.base_url(account["provider"])} for account in DEMO_ACCOUNTS
    ]
    accounts[0]["labels"] = STATIC_LABELS
    accounts.append(
        {
            "name": "revoked",
            "provider": "fullenrich",
            "api_key": REVOKED_KEY,
            "base_url": sim.base_url("fullenrich"),
        }
    )
    path = tmp_path_factory.mktemp("metrics-doc") / "config.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"timeout": "5s"}, "accounts": accounts}))
    yield path
    sim.stop()


@pytest.fixture(scope="module")
def once_exposition(config_file: Path) -> str:
    result = run_exporter("once", f"--config.file={config_file}")
    # Exit 1: the revoked account's poll failed, as intended; the exposition is printed anyway.
    assert result.returncode == 1, result.stderr
    assert "credits_remaining" in result.stdout, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def served_exposition(config_file: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    port = free_port()
    proc = ManagedProcess(
        "exporter",
        [
            *exporter_command(),
            f"--config.file={config_file}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp_path_factory.mktemp("metrics-doc-serve"),
    )

    def scrape() -> str | None:
        assert proc.alive(), proc.log_tail()
        # Ready: every account's first poll is in /metrics (TheirStack's two calls share a
        # key, so its second endpoint comes a rate-limit turn after the first).
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return text if "credits_poll_errors_total{" in text else None

    try:
        return wait_for(scrape, timeout=30, what="exporter serving every account's results")
    finally:
        proc.stop()


def test_doc_table_parses() -> None:
    docs = documented()
    assert len(docs) == 19
    assert docs["credits_poll_errors_total"] == (
        "counter",
        frozenset({"provider", "account", "api_endpoint", "reason"}),
    )
    assert docs["credits_exporter_config_last_reload_successful"] == ("gauge", frozenset())


def test_doc_table_is_the_catalogue() -> None:
    """Every family the exporter declares, with its type and labels, and nothing else."""
    declared = {
        f.sample_name: (f.type, frozenset(f.labels))
        for f in (*catalogue.ACCOUNT_FAMILIES, *catalogue.EXPORTER_FAMILIES)
    }
    assert documented() == declared


def compare(emitted: dict[str, Emitted], *, complete: bool) -> None:
    docs = documented()
    undocumented = set(emitted) - set(docs)
    assert not undocumented, f"emitted but not in docs/metrics.md: {sorted(undocumented)}"
    if complete:
        missing = set(docs) - set(emitted)
        assert not missing, f"documented but never emitted: {sorted(missing)}"
    for name, found in emitted.items():
        kind, labels = docs[name]
        assert found.type == kind, f"{name}: emitted as {found.type}, documented as {kind}"
        assert found.labels == labels, f"{name}: labels {sorted(found.labels)}, doc {labels}"


def test_once_output_matches_the_doc(once_exposition: str) -> None:
    compare(parse(once_exposition), complete=False)


def test_served_metrics_match_the_doc(served_exposition: str) -> None:
    compare(parse(served_exposition), complete=False)


def test_every_documented_metric_is_emitted(once_exposition: str, served_exposition: str) -> None:
    emitted = {**parse(once_exposition), **parse(served_exposition)}
    compare(emitted, complete=True)


def test_static_labels_are_on_every_account_series(once_exposition: str) -> None:
    for family in text_string_to_metric_families(once_exposition):
        for sample in family.samples:
            if "account" in sample.labels:
                assert "team" in sample.labels, sample
                expected = STATIC_LABELS["team"] if sample.labels["account"] == "growth" else ""
                assert sample.labels["team"] == expected, sample
            else:
                assert "team" not in sample.labels, sample


def test_label_values_are_documented(once_exposition: str) -> None:
    allowed = documented_label_values()
    assert set(allowed) >= {"pool", "api_endpoint", "window", "reason"}
    seen: dict[str, set[str]] = {}
    for found in parse(once_exposition).values():
        for label, values in found.label_values.items():
            seen.setdefault(label, set()).update(values)
    for label, named in allowed.items():
        assert seen.get(label), f"no {label} label emitted"
        assert seen[label] <= named, f"{label}: undocumented {sorted(seen[label] - named)}"
    assert "auth" in seen["reason"]


def test_every_reason_is_documented() -> None:
    """The ``reason`` label takes exactly the values of the exporter's Reason (the output only
    shows those that happened, so the scenario above cannot see them all)."""
    assert documented_label_values()["reason"] == {reason.value for reason in Reason}


def test_promtool_check_metrics(once_exposition: str) -> None:
    result = subprocess.run(
        [require_tool("promtool"), "check", "metrics"],
        input=once_exposition,
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert problems == [], "promtool check metrics:\n" + "\n".join(problems)
    assert result.returncode == 0
