from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from exporter.accounts import format_duration, parse_duration
from exporter.config import load_config, parse_config
from exporter.configfile import ConfigError
from exporter.providers.theirstack import TheirStackAccount
from exporter.providers.windsurf import WindsurfAccount

ROOT = Path(__file__).resolve().parents[2]


def errors_of(
    text: str, env: dict[str, str] | None = None, base_dir: Path | None = None
) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {}, base_dir=base_dir)
    return info.value.errors


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("2d", 172800),
        (45, 45),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "", "m5", "5", "1h 30m", "-5s", "0s", "5x", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for s in ("30s", "5m", "1h30m", "2d"):
        assert parse_duration(format_duration(parse_duration(s))) == parse_duration(s)


def test_example_config_loads() -> None:
    env = {
        "THEIRSTACK_API_KEY": "ts-key-123456",
        "WINDSURF_SERVICE_KEY": "ws-key-123456",
        "FULLENRICH_API_KEY": "fe-key-123456",
    }
    text = (ROOT / "config.example.yaml").read_text()
    config = parse_config(text, env=env)
    providers = {a.provider for a in config.accounts}
    assert providers >= {"theirstack", "windsurf", "fullenrich"}
    by_name = {a.name: a for a in config.accounts}
    growth = by_name["growth"]
    assert isinstance(growth, TheirStackAccount)
    assert growth.consumption.timezone == "Europe/Madrid"
    assert growth.threshold_for("api") == 1000
    assert growth.effective_interval == 300
    eng = by_name["engineering"]
    assert isinstance(eng, WindsurfAccount) and eng.prompt_usage
    assert eng.effective_interval == 1800
    sales = by_name["sales"]
    assert sales.base_url == "https://app.fullenrich.com/api/v2"
    assert sales.labels == {"team": "sales"}
    assert sales.threshold_for("workspace") == 500
    # Each key in every form its provider's requests carry it: the Bearer header's value too.
    secrets = set(config.secrets())
    assert set(env.values()) <= secrets
    assert {"Bearer ts-key-123456", "Bearer fe-key-123456"} <= secrets


def test_interpolation_and_defaults() -> None:
    text = """
defaults: {interval: "${IVL:-2m}"}
accounts:
  - {name: a, provider: fullenrich, api_key: "${KEY}", base_url: "http://${HOST:-localhost}:1/x"}
  - {name: b, provider: fullenrich, api_key: "lit$$eral", interval: 10s}
"""
    config = parse_config(text, env={"KEY": "secret-value"})
    a, b = config.accounts
    assert a.secret == "secret-value"
    assert a.effective_interval == 120
    assert a.base_url == "http://localhost:1/x"
    assert b.secret == "lit$eral"
    assert b.effective_interval == 10
    assert a.effective_timeout == 15 and a.effective_max_staleness == 6 * 3600


def test_every_error_reported_with_location(tmp_path: Path) -> None:
    text = """
defaults: {interval: 5 minutes}
bogus: 1
accounts:
  - {name: a, provider: theirstack, api_key: k1, consumption: {timezone: Mars/Base}}
  - {name: a, provider: fullenrich, api_key: k2}
  - {name: c, provider: nosuch, api_key: k3}
  - {name: d, provider: fullenrich, api_key: "${UNSET_VAR}"}
  - {name: e, provider: windsurf, api_key: k5, interval: "5 minutes", colour: red}
  - {name: f, provider: fullenrich, api_key_file: missing.txt}
  - {name: g, provider: fullenrich}
  - {name: h, provider: fullenrich, api_key: k8, api_key_file: x}
  - {name: i, provider: fullenrich, api_key: k9, low_credit_threshold: lots}
  - {name: j, provider: theirstack, api_key: k10, prompt_usage: true}
"""
    errs = errors_of(text, base_dir=tmp_path)
    joined = "\n".join(errs)
    expected = [
        'defaults.interval: invalid duration "5 minutes"',
        "bogus: unknown key",
        'accounts[0].consumption.timezone: unknown timezone "Mars/Base"',
        'accounts[1].name: duplicate account name "a" (also accounts[0])',
        'accounts[2].provider: unknown provider "nosuch"',
        "accounts[3].api_key: environment variable UNSET_VAR is not set",
        'accounts[4].interval: invalid duration "5 minutes"',
        "accounts[4].colour: unknown key",
        'accounts[5].api_key_file: api_key_file "missing.txt" does not exist',
        "accounts[6]: exactly one of api_key or api_key_file must be set",
        "accounts[7]: exactly one of api_key or api_key_file must be set",
        "accounts[8].low_credit_threshold",
        "accounts[9].prompt_usage: unknown key",
    ]
    for e in expected:
        assert e in joined, f"missing {e!r} in:\n{joined}"


def test_api_key_file(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("file-secret-1\n")
    config = parse_config(
        "accounts: [{name: a, provider: windsurf, api_key_file: key}]", env={}, base_dir=tmp_path
    )
    assert config.accounts[0].secret == "file-secret-1"
    (tmp_path / "empty").write_text("\n")
    errs = errors_of(
        "accounts: [{name: a, provider: windsurf, api_key_file: empty}]", base_dir=tmp_path
    )
    assert errs == ['accounts[0].api_key_file: api_key_file "empty" is empty']


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_key_file(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("x")
    f.chmod(0)
    errs = errors_of(
        "accounts: [{name: a, provider: windsurf, api_key_file: key}]", base_dir=tmp_path
    )
    assert "not readable" in errs[0]


def test_key_file_directory(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    errs = errors_of(
        "accounts: [{name: a, provider: windsurf, api_key_file: dir}]", base_dir=tmp_path
    )
    assert errs == ['accounts[0].api_key_file: api_key_file "dir" is a directory']


def test_yaml_syntax_error_has_line() -> None:
    errs = errors_of("accounts:\n  - name: a\n   provider: [x\n")
    assert len(errs) == 1 and errs[0].startswith("line ") and "invalid YAML" in errs[0]


def test_errors_never_contain_secret() -> None:
    errs = errors_of(
        "accounts: [{name: a, provider: fullenrich, api_key: sup3r-secret-key, timeout: bad}]"
    )
    assert errs and all("sup3r-secret-key" not in e for e in errs)


@pytest.mark.parametrize("name", ["pool", "api_endpoint", "endpoint"])
def test_reserved_labels_rejected(name: str) -> None:
    """The exporter's own labels, and `endpoint`, which the Prometheus Operator sets."""
    errs = errors_of(
        f"accounts: [{{name: a, provider: fullenrich, api_key: k, labels: {{{name}: x}}}}]"
    )
    assert "reserved" in errs[0] and errs[0].startswith("accounts[0].labels"), errs
    assert name in errs[0]


def test_empty_and_non_mapping() -> None:
    assert parse_config("", env={}).accounts == []
    assert errors_of("- 1\n- 2\n") == ["(top level): the config must be a mapping"]


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert info.value.errors == ["(file): does not exist"]


def test_identity_is_what_is_polled() -> None:
    """A reload keeps an account's state unless its identity changes: provider, base_url or
    what is polled; a key, the schedule, thresholds or labels do not change it."""

    def one(extra: str, provider: str = "theirstack", key: str = "k1") -> Any:
        text = f"accounts: [{{name: a, provider: {provider}, api_key: {key}{extra}}}]"
        return parse_config(text, env={}).accounts[0]

    base = one("")
    assert one("", key="k2").identity() == base.identity()
    assert one("", key="k2") != base
    for tunable in (
        ", interval: 1h, timeout: 3s, max_staleness: 1d, max_response_size: 2MiB",
        ", low_credit_threshold: 5, labels: {team: x}, rate_limit: 1/s",
    ):
        assert one(tunable).identity() == base.identity(), tunable
        assert one(tunable) != base
    for polled in (
        ", base_url: http://proxy.example",
        ", consumption: {timezone: Europe/Madrid}",
        ", consumption: {enabled: false}",
    ):
        assert one(polled).identity() != base.identity(), polled
    assert one("", "fullenrich").identity() != base.identity()
    assert "k1" not in base.identity() and "k1" not in repr(base)


def test_numbers_no_float_holds_are_refused_where_they_are() -> None:
    """A YAML integer beyond any float (400 digits) is a config error at its place, cut short,
    never an OverflowError that leaves only "(top level): cannot be loaded"."""
    big = "9" * 400
    errors = errors_of(
        f"defaults: {{max_response_size: {big}}}\n"
        "accounts:\n"
        f"  - {{name: a, provider: fullenrich, api_key: k-123456, low_credit_threshold: {big}}}\n"
        f"  - {{name: b, provider: fullenrich, api_key: k-654321, interval: {big},"
        f" low_credit_threshold: {{workspace: -{big}}}}}\n"
        "  - {name: c, provider: http_json, provider_name: acme, api_key: k-1234567,"
        " request: {url: 'https://x.example/q'}, auth: {type: bearer},"
        f" error_when: [{{path: e, equals: [{big}]}}], pools: {{c: {{remaining: r}}}}}}\n"
    )
    assert [e.split(":")[0] for e in errors] == [
        "defaults.max_response_size",
        "accounts[0].low_credit_threshold",
        "accounts[1].interval",
        "accounts[1].low_credit_threshold",
        "accounts[2].error_when[0].equals[0]",
    ], errors
    assert all(len(e) < 200 for e in errors), errors


def test_accounts_giving_the_same_keys_share_one_fields_set() -> None:
    """Pydantic's per-model set of given keys (~0.7 kB) is shared between accounts that gave
    the same keys (7 MB at 10,000 accounts); each still reads its own, and a copy that adds a
    key does not change the others'."""
    config = parse_config(
        "accounts:\n"
        + "".join(
            f"  - {{name: a{i}, provider: fullenrich, api_key: k-{i:06d}}}\n" for i in range(3)
        )
        + "  - {name: b, provider: fullenrich, api_key: k-999999, labels: {team: x}}\n",
        env={},
    )
    a0, a1, a2, b = config.accounts
    assert a0.model_fields_set is a1.model_fields_set is a2.model_fields_set
    assert "labels" in b.model_fields_set and b.model_fields_set is not a0.model_fields_set
    copied = a0.model_copy(update={"low_credit_threshold": 5.0})
    assert "low_credit_threshold" in copied.model_fields_set
    assert "low_credit_threshold" not in a1.model_fields_set
