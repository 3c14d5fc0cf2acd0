"""Every kind of bad config, as a user meets it: ``check-config`` and a plain start-up both
exit 2 and name the place of every error, and never print a traceback or a key. All the
subprocesses of this module run concurrently (each is a fresh Python)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support import exporter_command, free_port
from support.leaks import find_secrets

KEY = "sk_c5f_8e2d4a6b0c1f3e5d7a9b"
ENV = {"CE_TEST_KEY": KEY}


@dataclass(frozen=True)
class Case:
    id: str
    config: str | None
    expected: list[str]
    files: dict[str, str | bytes | None] = field(default_factory=dict)
    """Extra files next to the config (None: a directory)."""
    web_config: str | None = None


def acct(extra: str = "", name: str = "a", provider: str = "fullenrich") -> str:
    return f"  - {{name: {name}, provider: {provider}, api_key: '${{CE_TEST_KEY}}'{extra}}}\n"


# Every kind of mistake the loader can list together, in one file: each kind is a test of its
# own below, and the file also shows that every error is reported at once.
ALL_AT_ONCE = (
    "bogus: 1\n"
    "defaults: {timeout: forever}\n"
    "providers: {fullenrich: {max_concurrency: many}}\n"
    "accounts:\n"
    + acct(", colour: red", name="a")
    + acct(", labels: [x]", name="b")
    + acct(", interval: 5 minutes", name="c")
    + acct(name="a", provider="windsurf")
    + "  - {name: e, provider: fullenrich, api_key_file: nope.key}\n"
    + "  - {name: f, provider: fullenrich, api_key_file: keys}\n"
    + "  - {name: g, provider: fullenrich, api_key_file: bin.key}\n"
    + "  - {name: h, provider: fullenrich, api_key: '${CE_TEST_UNSET}'}\n"
    + acct(name="i", provider="nosuch")
    + acct(", max_response_size: 1 TB", name="j")
    + "  - {name: k, provider: fullenrich, api_key_file: two-lines.key}\n"
)
ALL_AT_ONCE_FILES: dict[str, str | bytes | None] = {
    "keys": None,
    "bin.key": b"\xff\xfe\x00key",
    "two-lines.key": f"{KEY}\nsecond line\n",
}
KINDS = {
    "unknown_key": ["bogus: unknown key", "accounts[0].colour: unknown key"],
    "wrong_type": [
        "providers.fullenrich.max_concurrency: Input should be a valid integer",
        "accounts[1].labels: Input should be a valid dictionary",
    ],
    "bad_duration": [
        'defaults.timeout: invalid duration "forever"',
        'accounts[2].interval: invalid duration "5 minutes"',
    ],
    "duplicate_account": ['accounts[3].name: duplicate account name "a" (also accounts[0])'],
    "missing_api_key_file": ['accounts[4].api_key_file: api_key_file "nope.key" does not exist'],
    "unreadable_api_key_file": [
        'accounts[5].api_key_file: api_key_file "keys" is a directory',
        'accounts[6].api_key_file: api_key_file "bin.key" cannot be read: UnicodeDecodeError',
    ],
    "unset_variable": ["accounts[7].api_key: environment variable CE_TEST_UNSET is not set"],
    "unknown_provider": ['accounts[8].provider: unknown provider "nosuch"'],
    "bad_max_response_size": ['accounts[9].max_response_size: invalid size "1 TB"'],
    "key_with_line_break": [
        "accounts[10].api_key_file: the key contains a line break or another control character"
    ],
}

CASES = [
    Case(
        "all_at_once",
        ALL_AT_ONCE,
        [f"invalid config ({sum(map(len, KINDS.values()))} error(s))"],
        files=ALL_AT_ONCE_FILES,
    ),
    Case(
        "yaml_syntax",
        "accounts:\n  - name: a\n   provider: [x\n",
        ["line 3, column 4: invalid YAML"],
    ),
    Case("not_a_mapping", "- a\n- b\n", ["(top level): the config must be a mapping"]),
    Case("missing_config_file", None, ["(file): does not exist"]),
    Case(
        "bad_web_config",
        "accounts:\n" + acct(),
        [
            "web.yml: invalid config (4 error(s))",
            "tls_server_config.key_file: required key is missing",
            'tls_server_config.cert_file: "server.crt" does not exist',
            'tls_server_config.min_version: unknown TLS version "TLS9"',
            "basic_auth_users.prometheus: must be a bcrypt hash",
        ],
        web_config="tls_server_config: {cert_file: server.crt, min_version: TLS9}\n"
        "basic_auth_users: {prometheus: hunter2}\n",
    ),
    Case(
        "bad_config_and_bad_web_config",
        "accounts:\n" + acct(", interval: soon"),
        ['accounts[0].interval: invalid duration "soon"', "http_server_config: not supported"],
        web_config="http_server_config: {http2: false}\n",
    ),
]


@dataclass
class Run:
    proc: subprocess.Popen[str]
    started: float
    output: str = ""
    code: int | None = None


def prepare(case: Case, root: Path) -> list[str]:
    d = root / case.id
    d.mkdir()
    for name, content in case.files.items():
        if content is None:
            (d / name).mkdir()
        elif isinstance(content, bytes):
            (d / name).write_bytes(content)
        else:
            (d / name).write_text(content)
    if case.config is not None:
        (d / "config.yaml").write_text(case.config)
    args = [f"--config.file={d / 'config.yaml'}"]
    if case.web_config is not None:
        (d / "web.yml").write_text(case.web_config)
        args.append(f"--web.config.file={d / 'web.yml'}")
    return args


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Run]:
    root = tmp_path_factory.mktemp("configs")
    env = {**os.environ, **ENV}
    env.pop("CE_TEST_UNSET", None)
    out: dict[tuple[str, str], Run] = {}
    for case in CASES:
        args = prepare(case, root)
        for mode in ("check-config", "start-up"):
            cmd = [*exporter_command(), *args]
            if mode == "check-config":
                cmd.append("check-config")
            else:
                cmd.append(f"--web.listen-address=127.0.0.1:{free_port()}")
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                cwd=root / case.id,
            )
            out[(case.id, mode)] = Run(proc, time.monotonic())
    for run in out.values():
        try:
            run.output, _ = run.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.output, _ = run.proc.communicate()
        run.code = run.proc.returncode
    return out


@pytest.mark.parametrize("mode", ["check-config", "start-up"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_config_refused_with_location(
    runs: dict[tuple[str, str], Run], case: Case, mode: str
) -> None:
    run = runs[(case.id, mode)]
    assert run.code == 2, run.output
    for fragment in case.expected:
        assert fragment in run.output, f"{fragment!r} not in:\n{run.output}"
    assert "invalid config" in run.output
    assert "Traceback" not in run.output
    assert find_secrets(run.output, [KEY]) == []
    if mode == "start-up":
        assert "exporter started" not in run.output


@pytest.mark.parametrize("mode", ["check-config", "start-up"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_listed_with_its_location(
    runs: dict[tuple[str, str], Run], kind: str, mode: str
) -> None:
    run = runs[("all_at_once", mode)]
    assert run.code == 2, run.output
    for fragment in KINDS[kind]:
        assert fragment in run.output, f"{fragment!r} not in:\n{run.output}"


def test_valid_config_and_web_config_pass_check(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("accounts:\n" + acct())
    (tmp_path / "web.yml").write_text("basic_auth_users: {}\n")
    result = subprocess.run(
        [
            *exporter_command(),
            "check-config",
            f"--config.file={tmp_path / 'config.yaml'}",
            f"--web.config.file={tmp_path / 'web.yml'}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "config.yaml: ok (1 account(s))" in result.stdout
    assert "web.yml: ok (no TLS, 0 basic auth user(s))" in result.stdout
