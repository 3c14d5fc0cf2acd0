"""Keys and their fragments out of quoted response values, before any cut."""

from __future__ import annotations

import string
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.http import safe_message
from exporter.providers import base
from exporter.providers.http_json import pool_name, read_number, read_timestamp
from exporter.redaction import MIN_FRAGMENT, REDACTED, excerpt, keys_in_scope, redact

KEY = "sk_live_" + string.ascii_letters[:43]  # 51 characters, longer than every cut


def runs(text: str, key: str = KEY) -> list[str]:
    return [
        key[i : i + MIN_FRAGMENT]
        for i in range(len(key) - MIN_FRAGMENT + 1)
        if key[i : i + MIN_FRAGMENT] in text
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{KEY} is not allowed", f"{REDACTED} is not allowed"),
        (f"bad {KEY[:40]}", f"bad {REDACTED}"),  # a fragment, as another cut left it
        (f"{KEY[10:30]} and {KEY[5:13]}", f"{REDACTED} and {REDACTED}"),
        (f"{KEY[:7]} is too short to tell", f"{KEY[:7]} is too short to tell"),
        ("nothing here", "nothing here"),
    ],
)
def test_redact_whole_keys_and_long_fragments(text: str, expected: str) -> None:
    assert redact(text, [KEY]) == expected


def test_excerpt_redacts_before_it_cuts() -> None:
    for prefix in ("", "x" * 10, "x" * 35, "x" * 39):
        value = f"{prefix}{KEY} is not allowed"
        assert excerpt(value) == value[:40]  # outside a poll: nothing to remove
        with keys_in_scope(KEY):
            out = excerpt(value)
        assert runs(out) == [], out
        assert out.startswith(prefix[:40])


@given(
    prefix=st.text(alphabet="ab :", max_size=60),
    start=st.integers(0, len(KEY) - MIN_FRAGMENT),
    length=st.integers(MIN_FRAGMENT, len(KEY)),
    limit=st.integers(1, 80),
)
def test_no_cut_leaves_a_fragment(prefix: str, start: int, length: int, limit: int) -> None:
    fragment = KEY[start : start + length]
    with keys_in_scope(KEY):
        out = excerpt(f"{prefix}{fragment}{prefix}", limit)
    # Whatever survives of the key at the cut is shorter than a fragment.
    assert runs(out) == [], (out, fragment)


@pytest.mark.parametrize(
    "read",
    [
        lambda v: read_number(v, "balance"),
        lambda v: read_timestamp(v, "expires"),
        lambda v: pool_name(v, "items[0].name"),
        lambda v: base.parse_timestamp(v, "earliest_expiration"),
        lambda v: base.check_number(v, "credits", strings=True),
    ],
)
def test_every_reader_that_quotes_a_value_removes_the_key(read: Callable[[str], object]) -> None:
    for value in (f"{KEY} is not allowed", f"key: {KEY}!", f"{'x' * 38}{KEY}"):
        with keys_in_scope(KEY), pytest.raises(base.PollError) as info:
            read(value)
        assert runs(info.value.message) == [], info.value.message


def test_safe_message_removes_fragments_and_cuts_after() -> None:
    message = safe_message(f"{'y' * 190} {KEY[:30]} and {KEY}", KEY)
    assert runs(message) == [], message
    assert len(message) <= 200
    assert safe_message(f"invalid key {KEY[3:20]}", KEY) == f"invalid key {REDACTED}"
