"""The command line as users run it: exit codes, check-config, once, demo, log formats."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from exporter.simulator import SimulatorThread
from support import (
    ROOT,
    exporter_command,
    free_port,
    http_get,
    run_exporter,
    sample_values,
    value,
    wait_for,
)
from support.leaks import find_secrets, wire_forms

FE_KEY = "cli-fe-5d3c-key-0001"


def test_check_config_ok_and_errors(tmp_path: Path) -> None:
    env = {
        "THEIRSTACK_API_KEY": "a" * 12,
        "WINDSURF_SERVICE_KEY": "b" * 12,
        "FULLENRICH_API_KEY": "c" * 12,
    }
    r = run_exporter("check-config", f"--config.file={ROOT / 'config.example.yaml'}", env=env)
    assert r.returncode == 0, r.stderr
    assert "ok (3 account(s))" in r.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "accounts:\n"
        "  - {name: a, provider: fullenrich, api_key: secret-in-config-1, interval: 5 minutes}\n"
        "  - {name: a, provider: nosuch, api_key: k}\n"
    )
    r = run_exporter("check-config", "--config.file", str(bad))
    assert r.returncode == 2
    assert 'accounts[0].interval: invalid duration "5 minutes"' in r.stderr
    assert 'accounts[1].name: duplicate account name "a"' in r.stderr
    assert 'accounts[1].provider: unknown provider "nosuch"' in r.stderr
    assert "secret-in-config-1" not in r.stderr + r.stdout

    # The daemon refuses the same config at start-up with the same errors and exit code.
    r = run_exporter(f"--config.file={bad}", f"--web.listen-address=127.0.0.1:{free_port()}")
    assert r.returncode == 2
    assert 'accounts[0].interval: invalid duration "5 minutes"' in r.stderr


def test_check_config_refuses_labels_owned_by_prometheus_or_the_exporter(tmp_path: Path) -> None:
    """Issue 11.10: with the chart's honorLabels, `labels: {job: x}` would override the target's
    job, and `__name__` breaks the exposition: refused, naming the account and the label."""
    owned = [
        "job",
        "instance",
        "__name__",
        "__meta_x",
        "provider",
        "account",
        "pool",
        "endpoint",
        "api_endpoint",
        "reason",
        "window",
        "version",
        "python_version",
        "namespace",
        "service",
        "pod",
        "container",
    ]
    config = tmp_path / "labels.yaml"
    lines = [
        f"  - {{name: acct-{i}, provider: fullenrich, api_key: k, labels: {{{name}: x, team: ok}}}}"
        for i, name in enumerate(owned)
    ]
    config.write_text("accounts:\n" + "\n".join(lines) + "\n")
    r = run_exporter("check-config", f"--config.file={config}")
    assert r.returncode == 2
    for i, name in enumerate(owned):
        line = next(x for x in r.stderr.splitlines() if f"accounts[{i}].labels:" in x)
        assert f'account "acct-{i}"' in line and f'"{name}"' in line, line
    assert '"team"' not in r.stderr
    config.write_text(
        "accounts: [{name: a, provider: fullenrich, api_key: k, labels: {job_name: x}}]"
    )
    assert run_exporter("check-config", f"--config.file={config}").returncode == 0


def test_check_config_refuses_values_dropped_between_polls_and_unknown_pools(
    tmp_path: Path,
) -> None:
    """`interval: 1d` under the default max_staleness (6h) would drop the values 18 hours a
    day, and a threshold on a pool the provider does not have never fires CreditsLow: both
    refused, each at its place, saying what to change."""
    config = tmp_path / "config.yaml"
    config.write_text(
        "accounts:\n"
        "  - {name: nightly, provider: fullenrich, api_key: k, interval: 1d}\n"
        "  - {name: growth, provider: theirstack, api_key: k, low_credit_threshold: {apii: 100}}\n"
    )
    r = run_exporter("check-config", f"--config.file={config}")
    assert r.returncode == 2
    assert (
        "accounts[0].max_staleness: 6h is less than twice interval (1d): the values would be "
        "dropped between two polls; raise max_staleness to at least 2d or lower interval"
    ) in r.stderr
    assert (
        "accounts[1].low_credit_threshold.apii: unknown pool (this account's pools: api, ui)"
    ) in r.stderr
    config.write_text(
        "accounts:\n"
        "  - {name: nightly, provider: fullenrich, api_key: k, interval: 1d, max_staleness: 2d}\n"
        "  - {name: growth, provider: theirstack, api_key: k, low_credit_threshold: {api: 100}}\n"
    )
    r = run_exporter("check-config", f"--config.file={config}")
    assert r.returncode == 0, r.stderr


def test_bad_flags_exit_2(tmp_path: Path) -> None:
    assert run_exporter("--no-such-flag").returncode == 2
    assert run_exporter("--log.format=xml").returncode == 2
    r = run_exporter("--web.listen-address=nonsense", f"--config.file={tmp_path / 'x.yaml'}")
    assert r.returncode == 2 and "invalid listen address" in r.stderr
    r = run_exporter("check-config", f"--config.file={tmp_path / 'missing.yaml'}")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_once_prints_exposition_and_exit_codes(simulator: SimulatorThread, tmp_path: Path) -> None:
    simulator.add_account("fullenrich", FE_KEY, balance=321.25)
    cfg = tmp_path / "c.yaml"
    base = simulator.base_url("fullenrich")
    cfg.write_text(
        f"accounts: [{{name: s, provider: fullenrich, api_key: {FE_KEY}, base_url: '{base}'}}]\n"
    )
    r = run_exporter("once", f"--config.file={cfg}")
    assert r.returncode == 0, r.stderr
    s = sample_values(r.stdout)
    assert value(s, "credits_remaining", account="s", pool="workspace") == 321.25
    assert value(s, "credits_up", account="s") == 1

    simulator.update(FE_KEY, revoked=True)
    r = run_exporter("once", f"--config.file={cfg}", "--log.format=json")
    assert r.returncode == 1
    s = sample_values(r.stdout)
    assert value(s, "credits_up", account="s") == 0
    assert value(s, "credits_poll_errors_total", account="s", reason="auth") == 1
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    failed = [e for e in events if e["event"] == "poll failed"]
    assert failed and failed[0]["reason"] == "auth" and failed[0]["account"] == "s"
    assert find_secrets(r.stdout + r.stderr, wire_forms(FE_KEY)) == []


def test_daemon_stops_cleanly_on_sigterm(simulator: SimulatorThread, tmp_path: Path) -> None:
    simulator.add_account("fullenrich", FE_KEY, balance=1, latency=30)  # a poll stays in flight
    cfg = tmp_path / "c.yaml"
    base = simulator.base_url("fullenrich")
    cfg.write_text(
        f"accounts: [{{name: s, provider: fullenrich, api_key: {FE_KEY}, base_url: '{base}', timeout: 60s}}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [*exporter_command(), f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}"],
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: http_get(f"http://127.0.0.1:{port}/healthz", timeout=1)[0] == 200)
    assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 503  # the poll has not finished
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    # Within its own stop timeout: the poll in flight was cancelled, not waited for.
    assert "exporter stopped" in err and "stop timed out" not in err
    assert "Task was destroyed" not in err and "Unclosed" not in err and "Traceback" not in err


def test_demo_serves_all_three_providers_within_5s() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*exporter_command(), "demo", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def all_three() -> bool:
            status, body = http_get(f"http://127.0.0.1:{port}/metrics", timeout=1)
            s = sample_values(body.decode())
            return status == 200 and all(
                value(s, "credits_remaining", provider=p, account=a, pool=pool) is not None
                for p, a, pool in (
                    ("theirstack", "growth", "api"),
                    ("windsurf", "engineering", "add_on"),
                    ("fullenrich", "sales", "workspace"),
                )
            )

        # DESIGN: metrics for all three providers within 5 s of start; doubled for a loaded CI.
        wait_for(all_three, timeout=10)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/metrics" in out
    assert "/_sim/accounts" in out
