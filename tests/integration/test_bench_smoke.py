"""The benchmark harness still runs (a tiny run: a few accounts, one-second wrk runs) and writes
its report; the figures themselves are for bench/RESULTS.md, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from support import ROOT, require_tool


def run_bench(tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    """``python -m bench.run`` with ``args``: (its report, its raw figures)."""
    output = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", *args, f"--output={output}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return output.read_text(), json.loads((tmp_path / "results.json").read_text())


def test_bench_runs_and_reports(tmp_path: Path) -> None:
    require_tool("wrk")
    report, raw = run_bench(tmp_path, "--sizes=30", "--duration=1", "--only=metrics")
    assert "## /metrics against the static-bytes reference" in report
    (phase,) = raw["metrics"]
    assert phase["accounts"] == 30 and phase["series"] > 30 * 5
    for name in ("text", "gzip", "openmetrics", "openmetrics+gzip"):
        variant = phase["variants"][name]
        assert variant["exporter"]["requests"] > 0 and variant["exporter"]["errors"] == 0
        assert variant["reference"]["requests"] > 0
    assert phase["sim_calls"] >= 30  # every account polled through the simulator process


def test_bench_status_phase_runs(tmp_path: Path) -> None:
    require_tool("wrk")
    report, raw = run_bench(
        tmp_path, "--status-sizes=30", "--duration=1", "--rounds=1", "--only=status"
    )
    assert "## Status page and /api/status" in report
    (phase,) = raw["status"]
    for name in ("page", "page+gzip", "api", "api+gzip"):
        variant = phase["variants"][name]
        assert variant["exporter"]["requests"] > 0 and variant["exporter"]["errors"] == 0
        assert variant["bytes"] > 0
    scrape = phase["scrape"]
    assert scrape["refresh_requests"] > 0 and scrape["refresh_errors"] == 0
    assert scrape["with_refreshers"]["requests"] > 0


def test_bench_gc_phase_runs(tmp_path: Path) -> None:
    require_tool("wrk")  # the harness refuses to run without it
    report, raw = run_bench(tmp_path, "--gc-size=30", "--gc-runs=1", "--gc-window=1", "--only=gc")
    assert "## Garbage collector policy" in report
    gc = raw["gc"]
    for policy in ("on", "off"):
        figures = gc["policies"][policy]
        assert figures["ready_seconds"] > 0 and figures["cpu_seconds"] > 0
        assert figures["hwm_mb"] > 0
