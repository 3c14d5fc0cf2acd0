"""Hostile configs: values that would stall or flood the polling, documents that would exhaust
the interpreter (deep nesting, alias bombs), key files that never end or never answer, duplicate
keys. ``check-config`` refuses each with exit code 2 and a message naming the place; a reload
refuses each (answer 400, reload gauge 0, the old config polling on); nothing hangs the daemon
or its exit.

Every subprocess runs under a 2 GiB address-space limit, so a regression that expands a bomb
fails its test instead of taking the machine's memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from exporter.config import Config, parse_config
from exporter.configfile import ConfigError
from exporter.daemon import Daemon
from exporter.simulator import SimulatorThread
from exporter.webconfig import parse_web_config
from support import (
    ExporterProcess,
    exporter_command,
    free_port,
    http_post,
    sample_values,
    value,
    wait_for,
)
from support.leaks import find_secrets

KEY = "sk_config_bombs_0123456789abcdef"
MEMORY_LIMIT = 2 * 1024**3


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def account(extra: str = "", name: str = "a") -> str:
    return f"  - {{name: {name}, provider: fullenrich, api_key: {KEY}{extra}}}\n"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def alias_bomb(levels: int) -> str:
    """Ten aliases of the level below at each level: 10**levels values once expanded."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Case:
    id: str
    config: str
    expected: list[str]
    files: dict[str, str | bytes] = field(default_factory=dict)
    special: str | None = None
    """A file that is not a regular one: "fifo" (named key.fifo) or None."""


CASES = [
    Case(
        "nan_and_inf",
        "defaults: {interval: .nan, timeout: .nan}\naccounts:\n"
        + account(", interval: .inf, max_staleness: 1.0e+400", name="a")
        + account(f", low_credit_threshold: .nan, interval: '{'9' * 400}s'", name="b")
        + account(", low_credit_threshold: {workspace: -.inf}", name="c"),
        [
            "defaults.interval: invalid duration nan (not a finite number)",
            "defaults.timeout: invalid duration nan (not a finite number)",
            "accounts[0].interval: invalid duration inf (not a finite number)",
            "accounts[0].max_staleness: invalid duration inf (not a finite number)",
            "accounts[1].low_credit_threshold: must be a finite number between -1e15 and 1e15, got nan",
            "accounts[1].interval: invalid duration '999",
            "accounts[2].low_credit_threshold: pool workspace: must be a finite number",
        ],
    ),
    Case(
        "out_of_bounds",
        "accounts:\n"
        + account(", interval: 1ms, timeout: 2h", name="a")
        + account(", interval: 90d, max_staleness: 50ms", name="b"),
        [
            "accounts[0].interval: must be between 100ms and 30d, got 1ms",
            "accounts[0].timeout: must be between 100ms and 10m, got 2h",
            "accounts[1].interval: must be between 100ms and 30d, got 90d",
            "accounts[1].max_staleness: must be between 100ms and 365d, got 50ms",
        ],
    ),
    Case(
        "nested_600_deep",
        f"accounts:\n{account(f', labels: {nested(600)}')}",
        ["(top level): nested deeper than 100 levels"],
    ),
    Case(
        "alias_bomb",
        alias_bomb(6) + "accounts:\n" + account() + "bomb: *l6\n",
        ["(top level): too large: more than 1,000,000 values once its aliases are expanded"],
    ),
    Case(
        "recursive_alias",
        "accounts: &loop\n  - *loop\n",
        ["(top level): the document contains itself"],
    ),
    Case(
        "key_file_never_ends",
        "accounts:\n  - {name: a, provider: fullenrich, api_key_file: /dev/zero}\n",
        ['accounts[0].api_key_file: api_key_file "/dev/zero" is not a regular file'],
    ),
    Case(
        "key_file_too_large",
        "accounts:\n  - {name: a, provider: fullenrich, api_key_file: big.key}\n",
        ['accounts[0].api_key_file: api_key_file "big.key" is larger than 64 KiB'],
        files={"big.key": "k" * (1024 * 1024)},
    ),
    Case(
        "key_file_fifo",
        "accounts:\n  - {name: a, provider: fullenrich, api_key_file: key.fifo}\n",
        ['accounts[0].api_key_file: api_key_file "key.fifo" is not a regular file'],
        special="fifo",
    ),
    Case(
        "duplicate_keys",
        "accounts:\n"
        + account(name="first")
        + "defaults: {interval: 5m}\n"
        + "accounts:\n"
        + account(name="second")
        + "defaults: {interval: 1m, interval: 2m}\n",
        [
            'line 4, column 1: duplicate key "accounts" (first at line 1, column 1)',
            'line 6, column 1: duplicate key "defaults" (first at line 3, column 1)',
            'line 6, column 26: duplicate key "interval" (first at line 6, column 12)',
        ],
    ),
    Case(
        "every_error_of_an_account",
        "accounts:\n  - {name: a, provider: fullenrich, api_key_file: keys, bogus: 1}\n"
        "  - {name: b, provider: nosuch, api_key_file: keys}\n"
        "  - {name: c, provider: fullenrich, bogus: 1}\n",
        [
            "accounts[0].bogus: unknown key",
            'accounts[0].api_key_file: api_key_file "keys" is a directory',
            'accounts[1].provider: unknown provider "nosuch"',
            'accounts[1].api_key_file: api_key_file "keys" is a directory',
            "accounts[2].bogus: unknown key",
            "accounts[2]: exactly one of api_key or api_key_file must be set",
        ],
        files={"keys/.keep": ""},
    ),
]


def prepare(case: Case, root: Path) -> Path:
    d = root / case.id
    d.mkdir()
    for name, content in case.files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (d / name).write_bytes(content)
        else:
            (d / name).write_text(content)
    if case.special == "fifo":
        os.mkfifo(d / "key.fifo")
    path = d / "config.yaml"
    path.write_text(case.config)
    return path


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int | None, str]]:
    """check-config on every case, concurrently: (exit code or None if it hung, output)."""
    root = tmp_path_factory.mktemp("bombs")
    procs = {
        case.id: subprocess.Popen(
            [*exporter_command(), "check-config", f"--config.file={prepare(case, root)}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=limit_memory,
        )
        for case in CASES
    }
    out: dict[str, tuple[int | None, str]] = {}
    for case_id, proc in procs.items():
        try:
            output, _ = proc.communicate(timeout=60)
            out[case_id] = (proc.returncode, output)
        except subprocess.TimeoutExpired:
            proc.kill()
            out[case_id] = (None, proc.communicate()[0])
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check_config_refuses_with_the_place(
    checked: dict[str, tuple[int | None, str]], case: Case
) -> None:
    code, output = checked[case.id]
    assert code == 2, output
    for fragment in case.expected:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    assert "Traceback" not in output
    assert find_secrets(output, [KEY]) == []


# --------------------------------------------------------------------------- reloads


def polls(exp: ExporterProcess) -> float:
    return value(sample_values(exp.metrics()), "credits_polls_total", account="steady") or 0


#: case -> (the running config with the hostile part added, the error the reload answers).
RELOADS: dict[str, tuple[Callable[[str], str], str]] = {
    "nested_600_deep": (
        lambda good: good + account(f", labels: {nested(600)}", name="b"),
        "(top level): nested deeper than 100 levels",
    ),
    "alias_bomb": (lambda good: alias_bomb(6) + good + "bomb: *l6\n", "too large"),
    "key_file_fifo": (
        lambda good: good + "  - {name: b, provider: fullenrich, api_key_file: key.fifo}\n",
        'api_key_file "key.fifo" is not a regular file',
    ),
}


@pytest.mark.parametrize("case_id", list(RELOADS))
def test_reload_refuses_it_and_the_old_config_runs_on(
    case_id: str, simulator: SimulatorThread, tmp_path: Path
) -> None:
    simulator.add_account("fullenrich", KEY, balance=10)
    good = (
        "defaults: {interval: 1s, timeout: 2s}\naccounts:\n"
        f"  - {{name: steady, provider: fullenrich, api_key: {KEY}, "
        f"base_url: '{simulator.base_url('fullenrich')}'}}\n"
    )
    os.mkfifo(tmp_path / "key.fifo")
    exp = ExporterProcess(good, tmp_path)
    try:
        exp.wait_ready()
        hostile, expected = RELOADS[case_id]
        exp.write_config(hostile(good))
        status, body = http_post(f"{exp.url}/-/reload", timeout=30)
        assert status == 400, body
        errors = json.loads(body)["errors"]
        assert any(expected in e for e in errors), errors
        wait_for(  # the exposition shows it at its next render
            lambda: (
                value(
                    sample_values(exp.metrics()), "credits_exporter_config_last_reload_successful"
                )
                == 0
            )
        )
        before = polls(exp)
        wait_for(lambda: polls(exp) >= before + 2)  # the old config polls on
    finally:
        code = exp.stop()
    assert code == 0, exp.logs()  # SIGTERM ended it, whatever the reload met
    assert "Traceback" not in exp.logs()


@pytest.mark.timeout(60)
def test_a_reload_that_never_returns_is_refused_and_holds_nothing() -> None:
    """A file system that hangs: the reload gives up, the next one applies, a load that
    finishes while the exporter stops applies nothing, and the exit does not wait for a read
    that never returns."""
    text = f"accounts:\n{account()}"
    release = threading.Event()
    loaders: list[Callable[[], Config]] = []

    def hanging() -> Config:
        release.wait()
        return parse_config(text)

    async def scenario() -> None:
        daemon = Daemon(
            parse_config(text),
            config_loader=lambda: loaders.pop(0)(),
            listen_address=f"127.0.0.1:{free_port()}",
        )
        daemon.reload_timeout = 0.5
        await daemon.start()
        try:
            loaders.append(hanging)
            errors = await daemon.reload()
            assert errors and "not read within 0.5s" in errors[0], errors
            assert daemon.store.reload_successful is False
            loaders.append(lambda: parse_config(text))
            assert await daemon.reload() == []  # the stuck read holds no lock
            gate = threading.Event()
            loaders.append(lambda: (gate.wait(), parse_config(text))[1])
            late = asyncio.create_task(daemon.reload())
            await asyncio.sleep(0.1)
        finally:
            stopping = asyncio.create_task(daemon.stop())
            await asyncio.sleep(0)
            gate.set()
            await stopping
        assert "the exporter is stopping: nothing applied" in await late
        assert daemon.store.reload_successful is False

    asyncio.run(asyncio.wait_for(scenario(), 30))
    stuck = [t for t in threading.enumerate() if t.name == "config-load" and t.is_alive()]
    assert stuck and all(t.daemon for t in stuck)  # the interpreter's exit does not wait
    release.set()


def test_the_web_config_is_read_as_strictly(tmp_path: Path) -> None:
    hashed = "$2b$04$" + "a" * 53
    text = f"basic_auth_users: {{a: '{hashed}'}}\nbasic_auth_users: {{b: '{hashed}'}}\n"
    with pytest.raises(ConfigError) as info:
        parse_web_config(text, source="web.yml", base_dir=tmp_path)
    assert info.value.errors == [
        'line 2, column 1: duplicate key "basic_auth_users" (first at line 1, column 1)'
    ]
    os.mkfifo(tmp_path / "cert.fifo")
    with pytest.raises(ConfigError) as info:
        parse_web_config(
            "tls_server_config: {cert_file: cert.fifo, key_file: cert.fifo}\n",
            source="web.yml",
            base_dir=tmp_path,
        )
    assert 'tls_server_config.cert_file: "cert.fifo" is not a regular file' in info.value.errors[0]
