"""Two real exporter processes, --shard=0/2 and --shard=1/2, with the same config, polling the
simulator: between them every account is polled, each by exactly one replica."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from exporter.sharding import owner
from exporter.simulator import SimulatorThread
from support import exporter_command, sample_values, wait_for

N = 24


def accounts_of(samples: dict[Any, float]) -> set[str]:
    return {
        dict(labels)["account"] for (name, labels), _ in samples.items() if name == "credits_up"
    }


def test_two_replicas_split_the_accounts(
    simulator: SimulatorThread, start_exporter: Any, tmp_path: Path
) -> None:
    names = [f"shard-acct-{i}" for i in range(N)]
    for i in range(N):
        simulator.add_account("fullenrich", f"shard-key-{i}", balance=100 + i)
    config = {
        "defaults": {"interval": "1h", "timeout": "2s"},
        "accounts": [
            {
                "name": name,
                "provider": "fullenrich",
                "api_key": f"shard-key-{i}",
                "base_url": simulator.base_url("fullenrich"),
            }
            for i, name in enumerate(names)
        ],
    }
    replicas = [start_exporter(config, args=[f"--shard={k}/2"]) for k in range(2)]
    for replica in replicas:
        replica.wait_ready()

    def shares_now() -> list[set[str]] | None:
        shares = [accounts_of(sample_values(r.metrics())) for r in replicas]
        return shares if len(shares[0]) + len(shares[1]) >= N else None

    shares = wait_for(shares_now, timeout=10)  # /metrics is rendered within half a second

    assert shares[0] | shares[1] == set(names)
    assert not shares[0] & shares[1]
    assert shares[0] and shares[1]
    assert shares[0] == {n for n in names if owner(n, 2) == 0}
    # Each account's key was called exactly once: by its own replica, not by both.
    assert [simulator.calls(f"shard-key-{i}") for i in range(N)] == [1] * N
    # No new label tells the replicas apart (Prometheus' target does).
    text = replicas[0].metrics()
    assert "shard" not in text.replace("shard-acct", "")

    # A StatefulSet pod learns its shard from SHARD_COUNT and its host name's ordinal.
    out = subprocess.run(
        [*exporter_command(), "once", f"--config.file={replicas[0].config_path}"],
        capture_output=True,
        text=True,
        env={"SHARD_COUNT": "2", "HOSTNAME": "credits-exporter-1", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert accounts_of(sample_values(out.stdout)) == shares[1]


def test_bad_shard_flags_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("accounts: []\n")
    for args, env in (
        (["--shard=2/2"], {}),
        (["--shard=1"], {}),
        ([], {"SHARD_COUNT": "3", "HOSTNAME": "no-ordinal"}),
    ):
        out = subprocess.run(
            [*exporter_command(), f"--config.file={config}", *args],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", **env},
            timeout=30,
        )
        assert out.returncode == 2, (args, env, out.stderr)
        assert "shard" in out.stderr.lower() or "SHARD" in out.stderr
