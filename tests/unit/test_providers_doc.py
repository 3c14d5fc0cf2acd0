"""docs/providers.md stays true: its config examples load, and the worked example reads its own
sample answer into the values the page shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from exporter.config import parse_config
from exporter.model import PoolValues
from exporter.providers import PROVIDERS, create_provider
from exporter.providers.http_json import PRESETS, HttpJson

DOC = (Path(__file__).resolve().parents[2] / "docs" / "providers.md").read_text()


def env_for(text: str) -> dict[str, str]:
    return {name: f"{name.lower()}-123456" for name in re.findall(r"\$\{([A-Z_]+)", text)}


def test_every_config_example_loads() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
    configs = [b for b in blocks if b.startswith("accounts:")]
    assert len(configs) >= 8
    names = set()
    for block in configs:
        config = parse_config(block, env=env_for(block))
        for account in config.accounts:
            create_provider(account)
            names.add(account.provider)
    assert names >= {*PRESETS, "http_json"}


def test_every_provider_has_a_section() -> None:
    for name in PROVIDERS:
        assert f"\n### {name}\n" in DOC or name == "http_json", name
    assert "## http_json: any JSON credit API in YAML" in DOC


def test_worked_example_reads_its_sample_answer() -> None:
    config_text = re.search(r"<!-- worked-example-config -->\n```yaml\n(.*?)```", DOC, re.S)
    answer = re.search(r"<!-- worked-example-response -->\n```json\n(.*?)```", DOC, re.S)
    assert config_text is not None and answer is not None
    (account,) = parse_config(config_text.group(1), env=env_for(config_text.group(1))).accounts
    provider = create_provider(account)
    assert isinstance(provider, HttpJson)
    request = provider.request
    assert request.url == "https://api.acme-enrich.example/v3/quota?workspace=blue"
    assert request.body == {"workspace": "blue", "auth": {"token": "acme_api_key-123456"}}
    assert request.headers == {"X-Acme-Version": "2026-01"}
    reading = provider.parse(json.loads(answer.group(1)))
    assert dict(reading.pools) == {
        "email_credits": PoolValues(remaining=1234.56, used=765.44, limit=2000),
        "phone": PoolValues(remaining=50, used=0, limit=None),
    }
    assert reading.expiry_timestamp == 1.7987616e09
    assert reading.cycle_start_timestamp == 1.7934876e09
    assert reading.cycle_end_timestamp == 1.7960832e09
    for line in (
        'credits_remaining{account="acme-prod",pool="email_credits",provider="acme_enrich"} 1234.56',
        'credits_billing_cycle_end_timestamp_seconds{account="acme-prod",provider="acme_enrich"} '
        "1.7960832e+09",
    ):
        assert line in DOC
