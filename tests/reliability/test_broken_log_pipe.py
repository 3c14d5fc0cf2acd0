"""The log goes to a pipe that its reader closes (``credits-exporter ... 2>&1 | head -c 600``):
every later log line fails to write, and nothing else may. The account that goes down (a log
line that cannot be written) keeps being polled, recovers, and the exporter serves and stops as
usual."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import yaml

from exporter.simulator import SimulatorThread
from support import (
    Samples,
    exporter_command,
    free_port,
    http_get,
    sample_values,
    value,
    wait_for,
)

KEY = "sk_broken_log_pipe_0123456789ab"


def test_polling_survives_a_closed_log_pipe(simulator: SimulatorThread, tmp_path: Path) -> None:
    simulator.add_account("fullenrich", KEY, balance=10)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "defaults": {"interval": "1s", "timeout": "2s"},
                "accounts": [
                    {
                        "name": "a",
                        "provider": "fullenrich",
                        "api_key": KEY,
                        "base_url": simulator.base_url("fullenrich"),
                    }
                ],
            }
        )
    )
    url = f"http://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [
            *exporter_command(),
            f"--config.file={config}",
            f"--web.listen-address={url.removeprefix('http://')}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None

    def metrics() -> Samples:
        status, body = http_get(f"{url}/metrics")
        assert status == 200
        return sample_values(body.decode())

    def polls() -> float:
        return value(metrics(), "credits_polls_total", account="a") or 0

    try:
        os.read(proc.stdout.fileno(), 600)  # what `head -c 600` takes before it exits
        proc.stdout.close()
        wait_for(lambda: value(metrics(), "credits_up", account="a") == 1)
        simulator.update(KEY, fail={"status": 500})  # "account down": a line that fails
        wait_for(lambda: value(metrics(), "credits_up", account="a") == 0)
        failing = polls()
        wait_for(lambda: polls() >= failing + 3)  # still polling, on its backoff
        simulator.update(KEY, fail=None)  # "account recovered": another line that fails
        wait_for(lambda: value(metrics(), "credits_up", account="a") == 1)
        assert http_get(f"{url}/healthz")[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
