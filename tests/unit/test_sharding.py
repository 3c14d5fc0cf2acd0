"""Sharding by rendezvous hashing: complete, disjoint, balanced, stable, minimal movement; and
how a replica learns which shard it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exporter import cli
from exporter.config import parse_config
from exporter.sharding import Shard, owner, parse_shard, resolve_shard

NAMES = [f"acct-{i}" for i in range(3000)] + ["growth", "sales", "engineering", "ü-名前"]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shards_cover_every_account_exactly_once(count: int) -> None:
    shards = [{n for n in NAMES if Shard(k, count).owns(n)} for k in range(count)]
    assert set().union(*shards) == set(NAMES)
    assert sum(len(s) for s in shards) == len(NAMES)  # no account on two replicas
    for s in shards:  # and roughly even
        assert abs(len(s) - len(NAMES) / count) < 0.15 * len(NAMES) / count


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_adding_a_replica_moves_only_what_it_takes(count: int) -> None:
    before = {n: owner(n, count) for n in NAMES}
    after = {n: owner(n, count + 1) for n in NAMES}
    moved = [n for n in NAMES if before[n] != after[n]]
    assert all(after[n] == count for n in moved)  # only to the new replica
    expected = len(NAMES) / (count + 1)
    assert abs(len(moved) - expected) < 0.15 * expected  # about 1/(N+1) of the accounts
    # And going back from N+1 to N moves only the accounts of the replica that left.
    assert {n for n in NAMES if after[n] != before[n]} == {n for n in NAMES if after[n] == count}


def test_the_hash_is_stable_across_processes() -> None:
    # Known answers pin the algorithm (blake2b of "shard/name"), and a fresh interpreter with
    # another hash seed agrees: Python's randomised hash() is not used.
    assert [owner(n, 3) for n in ("growth", "sales", "engineering")] == [0, 2, 1]
    code = "from exporter.sharding import owner; print([owner(f'acct-{i}', 5) for i in range(50)])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
        cwd=Path(__file__).resolve().parents[2],
    ).stdout
    assert out.strip() == str([owner(f"acct-{i}", 5) for i in range(50)])


def test_apply_keeps_everything_but_other_replicas_accounts() -> None:
    cfg = parse_config(
        "providers: {fullenrich: {max_concurrency: 3}}\naccounts:\n"
        + "\n".join(f"  - {{name: a{i}, provider: fullenrich, api_key: k{i}}}" for i in range(20)),
        env={},
    )
    part = Shard(1, 3).apply(cfg)
    assert part.providers == cfg.providers
    assert [a.name for a in part.accounts] == [
        a.name for a in cfg.accounts if owner(a.name, 3) == 1
    ]
    assert Shard(0, 1).apply(cfg).accounts == cfg.accounts


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("0/2", None),
        (" 1 / 2 ", None),
        ("2/2", "shard 2 does not exist with 2 shard(s) (use 0 to 1)"),
        ("0/0", "the shard count must be between 1 and 1000, not 0"),
        ("1", 'invalid shard "1" (expected K/N, e.g. 0/3)'),
        ("-1/2", 'invalid shard "-1/2" (expected K/N, e.g. 0/3)'),
        ("a/b", 'invalid shard "a/b" (expected K/N, e.g. 0/3)'),
    ],
)
def test_parse_shard(text: str, error: str | None) -> None:
    if error is None:
        assert str(parse_shard(text)) == text.replace(" ", "")
    else:
        with pytest.raises(ValueError) as exc:
            parse_shard(text)
        assert str(exc.value) == error


@pytest.mark.parametrize(
    ("flag", "env", "hostname", "expected"),
    [
        (None, {}, "host", None),
        ("1/3", {"SHARD": "0", "SHARD_COUNT": "2"}, "x-1", "1/3"),  # the flag wins
        (None, {"SHARD": "1", "SHARD_COUNT": "2"}, "x-0", "1/2"),
        (None, {"SHARD_COUNT": "3"}, "credits-exporter-2", "2/3"),  # StatefulSet pod ordinal
        (None, {"SHARD_COUNT": "3", "HOSTNAME": "release-credits-exporter-1"}, None, "1/3"),
        (None, {"SHARD_COUNT": "1"}, "no-ordinal-needed-0", "0/1"),
    ],
)
def test_resolve_shard(
    flag: str | None, env: dict[str, str], hostname: str | None, expected: str | None
) -> None:
    shard = resolve_shard(flag, env, hostname)
    assert (str(shard) if shard is not None else None) == expected


@pytest.mark.parametrize(
    ("env", "hostname", "error"),
    [
        ({"SHARD": "1"}, "x-1", "SHARD is set but SHARD_COUNT is not"),
        ({"SHARD_COUNT": "3"}, "laptop", 'host name "laptop" does not end with a StatefulSet'),
        ({"SHARD_COUNT": "2"}, "credits-exporter-2", "shard 2 does not exist with 2 shard"),
        ({"SHARD_COUNT": "two"}, "x-0", 'invalid SHARD_COUNT "two"'),
        ({"SHARD": "x", "SHARD_COUNT": "2"}, "x-0", 'invalid SHARD "x"'),
    ],
)
def test_resolve_shard_errors(env: dict[str, str], hostname: str, error: str) -> None:
    with pytest.raises(ValueError) as exc:
        resolve_shard(None, env, hostname)
    assert error in str(exc.value)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--shard=2/2"], {}, "shard 2 does not exist with 2 shard(s)"),
        (["--shard=half"], {}, 'invalid shard "half"'),
        ([], {"SHARD": "0"}, "SHARD is set but SHARD_COUNT is not"),
        ([], {"SHARD_COUNT": "2", "HOSTNAME": "laptop"}, "does not end with a StatefulSet ordinal"),
    ],
)
def test_bad_shard_settings_are_usage_errors(
    args: list[str],
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # No global logging set-up from a unit test (it would keep pytest's captured stderr).
    monkeypatch.setattr(cli, "configure", lambda *args, **kwargs: None)
    for var in ("SHARD", "SHARD_COUNT"):
        monkeypatch.delenv(var, raising=False)
    for var, val in env.items():
        monkeypatch.setenv(var, val)
    config = tmp_path / "c.yaml"
    config.write_text("accounts: []\n")
    assert cli.main([f"--config.file={config}", *args]) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err
