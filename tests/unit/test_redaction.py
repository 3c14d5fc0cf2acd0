"""Keys and their fragments out of quoted response values, before any cut: a parser marks
what it quotes, and the poll, which knows the key, cleans the message."""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.credentials import basic, bearer, key_forms, plain, scheme
from exporter.http import Exchange, interpret
from exporter.model import PollError, Reason
from exporter.providers import base
from exporter.providers.http_json import pool_name, read_number, read_timestamp
from exporter.redaction import (
    EXCERPT,
    MAX_MESSAGE,
    MIN_FRAGMENT,
    REDACTED,
    clean,
    holds_secret,
    quote,
    redact,
)
from support.leaks import find_secrets, wire_forms

KEY = "sk_live_" + string.ascii_letters[:43]  # 51 characters, longer than every cut


def runs(text: str, key: str = KEY) -> list[str]:
    """The key, if ``text`` holds any run of 8 of its characters (in any case)."""
    return find_secrets(text, [key])


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


def test_a_quote_is_redacted_before_it_is_cut() -> None:
    for prefix in ("", "x" * 10, "x" * 35, "x" * 39):
        value = f"{prefix}{KEY} is not allowed"
        assert clean(quote(value)) == value[:40]  # no key given: nothing to remove
        out = clean(quote(value), [KEY])
        assert runs(out) == [], out
        assert out.startswith(prefix[:40])
        # The key went whole, then the cut: not even a piece shorter than a fragment stays.
        assert out == f"{prefix}{REDACTED} is not allowed"[:EXCERPT]


def test_a_quote_is_cut_in_its_message_and_the_marks_go() -> None:
    message = clean(f'balance should be a number, got the string "{quote("y" * 100)}"')
    assert message == f'balance should be a number, got the string "{"y" * EXCERPT}"'
    # Marks in a response value are no quote of ours: they never reach a message.
    assert clean(quote("a\ue000b\ue001c")) == "abc"
    assert clean("a\ue001b\ue000c") == "abc"


def test_clean_makes_one_line_and_cuts() -> None:
    assert clean("a\nb" + "x" * 500, (), MAX_MESSAGE).startswith("a b")
    assert len(clean("x" * 500, (), MAX_MESSAGE)) == MAX_MESSAGE


@given(
    prefix=st.text(alphabet="ab :", max_size=60),
    start=st.integers(0, len(KEY) - MIN_FRAGMENT),
    length=st.integers(MIN_FRAGMENT, len(KEY)),
    limit=st.integers(1, 80),
)
def test_no_cut_leaves_a_fragment(prefix: str, start: int, length: int, limit: int) -> None:
    text = f"{prefix}{KEY[start : start + length]}{prefix}"
    # Whatever survives of the key at a cut (a quote's, or the message's) is shorter than a
    # fragment.
    for out in (clean(quote(text), [KEY]), clean(text, [KEY], limit)):
        assert runs(out) == [], (out, text)


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
        with pytest.raises(PollError) as info:
            read(value)
        kept = info.value.redacted(KEY)  # what the poll keeps and shows
        assert runs(kept.message) == [] and runs(str(kept)) == [], kept.message
        assert REDACTED in kept.message or len(value) > EXCERPT
        assert kept.reason is info.value.reason is Reason.BAD_RESPONSE


def test_a_long_message_removes_fragments_and_cuts_after() -> None:
    message = clean(f"{'y' * 190} {KEY[:30]} and {KEY}", [KEY], MAX_MESSAGE)
    assert runs(message) == [], message
    assert len(message) <= MAX_MESSAGE
    assert clean(f"invalid key {KEY[3:20]}", [KEY], MAX_MESSAGE) == f"invalid key {REDACTED}"


def test_a_redacted_error_is_detached_and_keeps_its_classification() -> None:
    try:
        raise PollError(Reason.RATE_LIMITED, f"HTTP 429: {KEY}", status=429, retry_after=3.0)
    except PollError as exc:
        kept = exc.redacted(KEY)
    assert (kept.reason, kept.status, kept.retry_after) == (Reason.RATE_LIMITED, 429, 3.0)
    assert kept.message == f"HTTP 429: {REDACTED}" and kept.__traceback__ is None


#: A key with characters a URL writes otherwise: "/", "+", "=", " ", "%", "&".
URL_KEY = "ak/9+Qz=w x%2&Lm"


def test_key_forms_cover_the_query_string_aiohttp_sends() -> None:
    """The form the key travels in as ``?api_key=`` (yarl's encoding, what an upstream echoes
    when it quotes the request) is one of the forms redacted, and so are the fully
    percent-encoded and the form-encoded ones."""
    from urllib.parse import quote as url_quote
    from urllib.parse import quote_plus

    from yarl import URL

    sent = URL("https://x.example/a").with_query({"api_key": URL_KEY}).raw_query_string
    assert sent.partition("=")[2] in key_forms(URL_KEY)
    assert url_quote(URL_KEY, safe="") in key_forms(URL_KEY)
    assert quote_plus(URL_KEY) in key_forms(URL_KEY)
    assert key_forms("plainletters") == ("plainletters",)


@pytest.mark.parametrize("form", key_forms(URL_KEY))
def test_clean_removes_every_form_of_the_key(form: str) -> None:
    text = f"GET /account.json?api_key={form}&x=1 was refused"
    forms = key_forms(URL_KEY)
    assert clean(text, forms) == f"GET /account.json?api_key={REDACTED}&x=1 was refused"
    error = PollError(Reason.CLIENT_ERROR, f"HTTP 400: {quote(text)}").redacted(*forms)
    assert form not in error.message and REDACTED in error.message


# --------------------------------------------------------------------------- case and wire forms


#: Letters in both cases, alternating: no run of 8 of it lower-cased is a run of it as is.
MIXED = "Zq" + "".join(c.upper() if i % 2 else c for i, c in enumerate("abcdefghijklmnopqrstuvwxy"))


def test_fragments_are_found_in_any_case() -> None:
    """An upstream that lower-cases (or upper-cases) what it echoes echoes the key still."""
    for text in (f"unknown key {MIXED.lower()}", f"KEY {MIXED.upper()[5:20]} REFUSED"):
        out = clean(text, [MIXED], MAX_MESSAGE)
        assert runs(out, MIXED) == [], out
        out = clean(quote(text), [MIXED])
        assert runs(out, MIXED) == [], out
    assert redact(f"x {MIXED.swapcase()} y", [MIXED]) == f"x {REDACTED} y"
    # A run shorter than a fragment stays, in any case.
    assert redact(MIXED[:7].upper(), [MIXED]) == MIXED[:7].upper()


#: The username of HTTP Basic (a Twilio Account SID) and a key that is its password.
USER, SECRET = "AC123", "sk_live+AbC/dEf=GhIjKlMnOpQrStUv"
#: A key a JSON body writes otherwise every few characters.
JSON_KEY = 'ab"cd\\ef' * 6


@pytest.mark.parametrize(
    ("credential", "sent"),
    [
        (plain(SECRET), SECRET),
        (bearer(SECRET), f"Bearer {SECRET}"),
        (scheme("Token", SECRET), f"Token {SECRET}"),
        (basic(USER, SECRET), f"Basic {wire_forms(SECRET, basic_user=USER)[-1]}"),
    ],
)
def test_a_credential_declares_every_form_it_puts_on_the_wire(credential: Any, sent: str) -> None:
    """The value sent is one of the forms, and so is each form the tests know the key travels
    in: as written, URL-encoded three ways, as a JSON string, Basic's base64 of user:key."""
    assert credential.value == sent
    forms = set(credential.forms)
    assert sent in forms
    expected = wire_forms(SECRET, basic_user=USER if sent.startswith("Basic") else None)
    assert set(expected) <= forms
    assert SECRET not in repr(credential) and sent not in repr(credential)


@pytest.mark.parametrize(
    "echo",
    [
        f"refused credentials Basic {wire_forms(SECRET, basic_user=USER)[-1]}",
        f"refused {wire_forms(SECRET, basic_user=USER)[-1].lower()}",
        f"token {wire_forms(SECRET, basic_user=USER)[-1][10:30]} is not valid",
        f"body {json.dumps({'service_key': JSON_KEY})}",
    ],
)
def test_an_echo_of_the_request_leaves_no_form_of_the_key(echo: str) -> None:
    """What an upstream echoing its request's Authorization header or JSON body says, in the
    provider's error text (interpret) and in a quoted value (PollError.redacted)."""
    forms = (*basic(USER, SECRET).forms, *plain(JSON_KEY).forms)
    known = [*wire_forms(SECRET, basic_user=USER), *wire_forms(JSON_KEY)]
    body = json.dumps({"message": echo}).encode()
    with pytest.raises(PollError) as info:
        interpret(Exchange(401, {}, body), secrets=forms, error_message=lambda d: d["message"])
    assert find_secrets(info.value.message, known) == [], info.value.message
    kept = PollError(Reason.BAD_RESPONSE, f"balance is {quote(echo)}").redacted(*forms)
    assert find_secrets(kept.message, known) == [], kept.message


def test_holds_secret_in_any_case_and_for_runs_of_eight() -> None:
    assert holds_secret(KEY.lower(), [KEY])
    assert holds_secret(f"pool_{KEY[20:28].upper()}", [KEY])
    assert not holds_secret(f"pool_{KEY[20:27]}", [KEY])  # 7 characters
    assert holds_secret("usd_abcd", ["abcd"])  # a key shorter than a fragment: whole
    assert not holds_secret("usd", ["k"])  # too short to look for at all


@pytest.mark.parametrize("shown", [KEY, KEY.lower(), f"eur {KEY[10:30].upper()}", KEY[3:11]])
def test_a_pool_name_holding_the_key_is_refused(shown: str) -> None:
    """A name read from the answer becomes a label: one that holds the key (or any 8 of its
    characters, in any case) is a bad_response that says so without quoting it."""
    with pytest.raises(PollError) as info:
        pool_name(shown, "items[0].name", key_forms(KEY))
    assert info.value.reason is Reason.BAD_RESPONSE
    assert info.value.message == (
        "items[0].name holds the account's key (or part of it): not a usable pool name"
    )
    assert pool_name("EUR", "items[0].name", key_forms(KEY)) == "eur"
