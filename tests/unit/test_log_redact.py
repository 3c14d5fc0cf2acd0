"""Secret redaction in logs, with a handful of keys and with thousands (indexed lookup)."""

from __future__ import annotations

import pytest

from exporter.credentials import key_forms
from exporter.log import Redactor
from exporter.redaction import REDACTED

R = REDACTED


@pytest.mark.parametrize("extra", [0, 5000])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("no secret here", "no secret here"),
        ("key-alpha-1234", R),
        ("start key-alpha-1234 end", f"start {R} end"),
        ("key-alpha-1234key-alpha-1234", R + R),
        ("x key-alpha-12345 y", f"x {R} y"),  # the longer key wins
        ("key-alpha-123", "key-alpha-123"),  # a prefix of a key is not the key
        ("tail key-beta", f"tail {R}"),
        ("", ""),
        ("abc", "abc"),
    ],
)
def test_redact(value: str, expected: str, extra: int) -> None:
    r = Redactor()
    decoys = [f"decoy-{i:05d}-secret" for i in range(extra)]
    r.set_secrets(["key-alpha-1234", "key-alpha-12345", "key-beta", "abc", *decoys])
    assert r.redact(value) == expected


def test_processor_walks_the_event() -> None:
    r = Redactor()
    r.set_secrets([f"secret-{i}" for i in range(100)])
    event = {"event": "poll failed", "error": "bad secret-42!", "nested": {"x": ["secret-7"]}}
    out = r(None, "info", event)
    assert out == {"event": "poll failed", "error": f"bad {R}!", "nested": {"x": [R]}}


def test_a_key_in_a_url_is_redacted_in_every_form() -> None:
    """A library's message may hold the URL of a call with its query string: the key there is
    percent-encoded (``+`` as %2B, ``/`` kept or %2F), not as configured."""
    r = Redactor()
    r.set_secrets(key_forms("sk/9+Qz=w x"))  # what Config.secrets() gives for it
    for url in (
        "https://x.example/a?api_key=sk/9%2BQz%3Dw+x",
        "https://x.example/a?api_key=sk%2F9%2BQz%3Dw%20x",
        "https://x.example/a?api_key=sk%2F9%2BQz%3Dw+x",
    ):
        assert r.redact(f"url={url}") == f"url=https://x.example/a?api_key={R}"
