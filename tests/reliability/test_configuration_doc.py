"""docs/configuration.md is the complete reference: every key the config models and the web
config accept is documented there (a key added to the code without a line in the doc fails)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from exporter import webconfig
from exporter.accounts import AccountBase, Defaults
from exporter.config import ProviderSettings
from exporter.providers import PROVIDERS
from exporter.providers.theirstack import TheirStackConsumption
from exporter.providers.windsurf import WindsurfConsumption

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def documented() -> set[str]:
    # Names in code spans (`key`, `key: ...`, `a.key`) of the prose and tables; fenced examples
    # do not count (a key only shown in an example is not documented).
    prose = re.sub(r"^```.*?^```", "", DOC.read_text(), flags=re.MULTILINE | re.DOTALL)
    names: set[str] = set()
    for span in re.findall(r"`([^`\n]+)`", prose):
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", span))
    return names


def fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_every_config_key_is_documented() -> None:
    keys = {"defaults", "providers", "accounts"}
    keys |= fields(Defaults) | fields(ProviderSettings) | fields(TheirStackConsumption)
    keys |= fields(WindsurfConsumption)
    for registered in PROVIDERS.values():
        keys |= fields(registered.account)
    missing = sorted(keys - documented())
    assert not missing, f"not in docs/configuration.md: {missing}"


def test_every_web_config_key_and_value_is_documented() -> None:
    keys = set(webconfig._TOP_KEYS) | set(webconfig._TLS_KEYS)
    keys |= set(webconfig.CLIENT_AUTH_TYPES) | set(webconfig.TLS_VERSIONS)
    missing = sorted(keys - documented())
    assert not missing, f"not in docs/configuration.md: {missing}"


def test_defaults_in_the_doc_match_the_code() -> None:
    text = DOC.read_text()
    d = Defaults()
    for key, shown in (
        ("interval", "5m"),
        ("timeout", "15s"),
        ("max_staleness", "6h"),
        ("max_response_size", "1MiB"),
    ):
        assert f"| `{key}` | `{shown}` |" in text, key
    assert (d.interval, d.timeout, d.max_staleness) == (300, 15, 21600)
    assert d.max_response_size == 1024 * 1024
    assert f"| `max_concurrency` | `{ProviderSettings().max_concurrency}` |" in text
    assert AccountBase.model_fields["labels"] is not None
