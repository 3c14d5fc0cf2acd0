"""The declarative http_json provider: config validation, presets, request building, parsing."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from exporter.config import parse_config
from exporter.configfile import ConfigError
from exporter.model import PollError, PoolValues, Reason
from exporter.providers import PROVIDERS, create_provider
from exporter.providers.http_json import (
    MAX_POOLS,
    PRESETS,
    HttpJson,
    HttpJsonAccount,
    merge_patch,
    parse_path,
    read_number,
    read_timestamp,
    resolve,
)
from support import account_client, exporter_command
from support.leaks import find_secrets

ROOT = Path(__file__).resolve().parents[2]


def load(text: str, env: dict[str, str] | None = None) -> list[Any]:
    return parse_config(text, env=env or {}).accounts


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    return info.value.errors


def provider(account_yaml: str) -> HttpJson:
    p = create_provider(load(f"accounts:\n{account_yaml}")[0])
    assert isinstance(p, HttpJson)
    return p


def bad(p: HttpJson, data: Any) -> str:
    with pytest.raises(PollError) as info:
        p.parse(data)
    assert info.value.reason is Reason.BAD_RESPONSE
    return info.value.message


MINIMAL = """
  - name: acme
    provider: http_json
    provider_name: acme
    api_key: secret-key-123
    request: {url: "https://api.example.com/v1/balance"}
    auth: {type: bearer}
    pools: {credits: {remaining: data.balance}}
"""


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a", ("a",)),
        ("data.total_credits", ("data", "total_credits")),
        ("data.items[0].value", ("data", "items", 0, "value")),
        ("[2]", (2,)),
        ("[0][1].x", (0, 1, "x")),
        ("items[-1]", ("items", -1)),
        ('data["odd.key"].x', ("data", "odd.key", "x")),
        ('["a b"]', ("a b",)),
        ("$", ()),
        ("$.data.x", ("data", "x")),
        ("$[0].x", (0, "x")),
        ('["$"]', ("$",)),
        ("a-b.c_d.1", ("a-b", "c_d", "1")),
    ],
)
def test_parse_path(text: str, parts: tuple[Any, ...]) -> None:
    assert parse_path(text) == parts


@pytest.mark.parametrize(
    "text",
    [
        "",
        "data..x",
        ".a",
        "a.",
        "a[",
        "a[x]",
        "a.[0]",
        "a b",
        " a",
        "a]",
        '["a"',
        "$.",
        "$..a",
    ],
)
def test_parse_path_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="invalid path"):
        parse_path(text)


def test_resolve_names_the_path() -> None:
    doc = {"data": {"items": [{"v": 1}], "s": "x"}}
    assert resolve(doc, "data.items[0].v") == 1
    assert resolve(doc, "data.items[-1].v") == 1
    assert resolve(doc, "$") is doc
    with pytest.raises(
        PollError, match=r"data\.items\[1\]\.v is missing \(the array at data\.items has 1\)"
    ):
        resolve(doc, "data.items[1].v")
    with pytest.raises(PollError, match=r"^bad_response: data\.total is missing$"):
        resolve(doc, "data.total")
    with pytest.raises(PollError, match=r"data\.s\.x: expected an object at data\.s, got string"):
        resolve(doc, "data.s.x")
    with pytest.raises(PollError, match=r"data\[0\]: expected an array at data, got object"):
        resolve(doc, "data[0]")
    with pytest.raises(PollError, match=r"rows\[3\]\.v is missing"):
        resolve({}, "v", "rows[3]")


# --------------------------------------------------------------------------- numbers, timestamps


def test_read_number() -> None:
    assert read_number(5, "x") == 5.0
    assert read_number(" 12.50 ", "x") == 12.5
    assert read_number("1e3", "x") == 1000
    assert read_number(None, "x", sentinels=(None,)) is None
    assert read_number(1_000_000_000_000, "x", sentinels=(1e12,)) is None
    assert read_number("1000000000000", "x", sentinels=(1e12,)) is None
    assert read_number("unlimited", "x", sentinels=("unlimited",)) is None
    assert read_number(-1, "x", sentinels=(-1,)) is None
    assert read_number(-2.5, "x", allow_negative=True) == -2.5
    raw: object
    for raw, fragment in [
        (None, "x is null"),
        (True, "got boolean"),
        ("12 credits", 'got the string "12 credits"'),
        ("1_000", "got the string"),
        ("nan", "not a plausible number"),
        ("inf", "not a plausible number"),
        (1e300, "not a plausible number"),
        (10**400, "not a plausible number"),
        (-1, "x is negative"),
        ([], "got array"),
        ({}, "got object"),
    ]:
        with pytest.raises(PollError, match=fragment) as info:
            read_number(raw, "x")
        assert info.value.reason is Reason.BAD_RESPONSE


def test_read_timestamp() -> None:
    t = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    assert read_timestamp("2026-12-01T00:00:00Z", "t") == t
    assert read_timestamp("2026-12-01T01:00:00+01:00", "t") == t
    assert read_timestamp("2026-12-01T00:00:00", "t") == t  # naive means UTC
    assert read_timestamp("2026-12-01", "t") == t
    assert read_timestamp("2026-12-01", "t", "date") == t
    assert read_timestamp(t, "t") == t
    assert read_timestamp(int(t), "t", "epoch") == t
    assert read_timestamp(str(int(t)), "t") == t
    assert read_timestamp(t * 1000, "t") == t  # auto: milliseconds detected
    assert read_timestamp(t * 1000, "t", "epoch_ms") == t
    assert read_timestamp(86_400_000, "t", "epoch_ms") == 86_400
    for raw, fmt, fragment in [
        ("next week", "auto", 'not a valid date or date-time \\("next week"\\)'),
        ("2026-13-01", "date", "not a valid date"),
        ("2026-12-01T00:00:00Z", "date", "not a valid date"),
        ("2026-12-01", "epoch", "should be an epoch timestamp"),
        (True, "auto", "should be a date or date-time string, got boolean"),
        (None, "auto", "got null"),
        ("", "auto", "got string"),
        (-5, "auto", "not a plausible timestamp"),
        (1e20, "epoch", "not a plausible timestamp"),
        (10**400, "auto", "not a plausible timestamp"),
    ]:
        with pytest.raises(PollError, match=fragment):
            read_timestamp(raw, "t", fmt)


# --------------------------------------------------------------------------- config


def test_minimal_account() -> None:
    (account,) = load(f"accounts:{MINIMAL}")
    assert isinstance(account, HttpJsonAccount)
    assert account.provider == "http_json"
    assert account.endpoint == "balance"
    p = create_provider(account)
    assert isinstance(p, HttpJson)
    assert p.label == "acme"
    assert p.endpoints == ("balance",)
    assert PROVIDERS["http_json"] == (HttpJsonAccount, HttpJson)


def test_errors_name_the_place() -> None:
    errs = errors(
        """
accounts:
  - {name: ok, provider: fullenrich, api_key: k}
  - name: x
    provider: http_json
    provider_name: theirstack
    api_key: k
    params: {a: 1}
    request:
      url: "/v1/{b}?x={a}"
      headers: {X-T: "{c}", "Bad Header": x}
      body: {q: ["{d}"]}
    auth: {type: bearer, name: foo}
    pools:
      credits: {remaining: "data..x"}
      Bad Key: {used: a}
      e: {}
      f: {remaining: a, for_each: items}
      g: {remaining: a, unit: "{pool}"}
      h: {remaining: a, scale: -1, unlimited: [[1]]}
    expiry: {path: t, format: hmm}
    cycle_end: "x["
    bogus: 1
"""
    )
    expected = [
        'accounts[1].provider_name: "theirstack" is the name of a built-in provider',
        "accounts[1].request.url: placeholder {b} is not defined: add it to params (defined: a)",
        "accounts[1].request.headers.X-T: placeholder {c} is not defined",
        "accounts[1].request.headers.Bad Header.[key]: String should match pattern",
        "accounts[1].request.body: q[0]: placeholder {d} is not defined",
        "accounts[1].auth: name is not used by auth type bearer",
        'accounts[1].pools.credits.remaining: invalid path "data..x"',
        'accounts[1].pools.Bad Key.[key]: invalid pool name "Bad Key"',
        "accounts[1].pools.e: needs at least one of remaining, used, limit",
        "accounts[1].pools.f: for_each needs name",
        'accounts[1].pools.g: unit "{pool}" needs a pool named from the response (name)',
        "accounts[1].pools.h.unlimited[0]: [1]: an unlimited value is a number, a string or null",
        "accounts[1].pools.h.scale: Input should be greater than 0",
        "accounts[1].expiry.format: Input should be 'auto', 'iso', 'date', 'epoch' or 'epoch_ms'",
        'accounts[1].cycle_end.path: invalid path "x["',
        "accounts[1].bogus: unknown key",
    ]
    for fragment in expected:
        assert any(e.startswith(fragment) for e in errs), (fragment, errs)
    assert not any(e.startswith("accounts[0]") for e in errs)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            "request: {url: /v1/balance}",
            'accounts[0].request.url: "/v1/balance" is relative, so base_url must be set',
        ),
        ("request: {url: 'ftp://x/y'}", 'accounts[0].request.url: invalid URL "ftp://x/y"'),
        ("request: {url: 'https://x/a b'}", "accounts[0].request.url: invalid URL"),
        (
            "request: {url: 'https://x/y', body: {a: 1}}",
            "accounts[0].request: body needs method POST",
        ),
        (
            "request: {url: 'https://x/y', method: PUT}",
            "accounts[0].request.method: Input should be 'GET' or 'POST'",
        ),
        (
            "request: {url: 'https://x/y', headers: {Authorization: x}}",
            "accounts[0].auth: request.headers also sets Authorization",
        ),
        (
            "auth: {type: body, field: a.b}",
            "accounts[0].auth: auth type body needs request.method POST",
        ),
        (
            "{request: {url: 'https://x/y', method: POST, body: {a: {b: 1}}}, auth: {type: body, field: a.b}}",
            'accounts[0].auth: request.body already sets "a.b", which carries the key',
        ),
        ("request: {url: 'mailto:x'}", 'accounts[0].request.url: invalid URL "mailto:x"'),
        ("request: {url: '//x.example/y'}", 'accounts[0].request.url: invalid URL "//x.example/y"'),
        (
            "request: {url: '/x?next=https://y'}",
            'accounts[0].request.url: "/x?next=https://y" is relative',
        ),
        (
            "auth: {type: body, field: 'a..b'}",
            "accounts[0].auth.field: String should match pattern",
        ),
        ("auth: {type: query}", "accounts[0].auth: auth type query needs name"),
        ("auth: {type: header}", "accounts[0].auth: auth type header needs name"),
        ("auth: {type: header, name: 'a b'}", 'accounts[0].auth: invalid header name "a b"'),
        ("auth: {type: basic}", "accounts[0].auth: auth type basic needs username"),
        (
            "auth: {type: basic, username: 'a:b'}",
            "accounts[0].auth: a Basic auth username cannot contain ':'",
        ),
        (
            "auth: {type: basic, username: '{user}'}",
            "accounts[0].auth.username: placeholder {user} is not defined",
        ),
        ("auth: {type: oauth}", "accounts[0].auth.type: Input should be"),
        (
            "auth: {type: bearer, scheme: Token}",
            "accounts[0].auth: scheme is not used by auth type bearer",
        ),
        (
            "base_url: 'https://{tenant}.example.com'",
            "accounts[0].base_url: placeholder {tenant} is not defined",
        ),
        (
            "base_url_if_key_suffix: {':fx': 'https://{x}.example.com'}",
            "accounts[0].base_url_if_key_suffix.:fx: placeholder {x} is not defined",
        ),
        ("provider_name: Acme", "accounts[0].provider_name: String should match pattern"),
        (
            "provider_name: http_json",
            'accounts[0].provider_name: "http_json" is the name of a built-in provider',
        ),
        ("provider_name: deepl", "(use provider: deepl and override its keys instead)"),
        ("endpoint: Balance", "accounts[0].endpoint: String should match pattern"),
        ("params: {'1x': a}", "accounts[0].params.1x.[key]: String should match pattern"),
        ("params: {a: [1]}", "accounts[0].params.a: Input should be a valid string"),
        ("pools: {}", "accounts[0].pools: Dictionary should have at least 1 item"),
        ("error_message: 'a..b'", 'accounts[0].error_message: invalid path "a..b"'),
        (
            "error_when: [{path: errorId}]",
            "accounts[0].error_when[0]: needs exactly one of equals or not_equals",
        ),
        (
            "error_when: [{path: e, equals: [1], not_equals: [0]}]",
            "accounts[0].error_when[0]: needs exactly one of equals or not_equals",
        ),
        (
            "error_when: [{path: e, equals: []}]",
            "accounts[0].error_when[0]: equals or not_equals needs at least one value",
        ),
        (
            "error_when: [{path: e, equals: [[1]]}]",
            "accounts[0].error_when[0].equals[0]: [1]: compare with a string",
        ),
        (
            f"error_when: [{{path: e, not_equals: [{'9' * 400}]}}]",
            "accounts[0].error_when[0].not_equals[0]: not a finite number (too large, infinite",
        ),
        (
            "error_when: [{path: e, equals: [.nan]}]",
            "accounts[0].error_when[0].equals[0]: not a finite number",
        ),
        (
            f"pools: {{c: {{remaining: a, unlimited: [{'9' * 400}]}}}}",
            "accounts[0].pools.c.unlimited[0]: not a finite number",
        ),
        (
            "error_when: [{path: e, equals: [1], reason: timeout}]",
            "accounts[0].error_when[0].reason: Input should be 'auth', 'payment_required'",
        ),
        (
            "error_when: [{path: 'e..', equals: [1]}]",
            "accounts[0].error_when[0].path: invalid path",
        ),
        (
            "documented_rate_limit: 5 a minute",
            'accounts[0].documented_rate_limit: invalid rate limit "5 a minute"',
        ),
        (
            "pools: {c: {remaining: a, unit_by_host: {'API.example.com': cny}}}",
            "accounts[0].pools.c.unit_by_host.API.example.com.[key]: String should match pattern",
        ),
        (
            "pools: {c: {remaining: a, name: n, unit: '{pool}', unit_by_host: {x.example: cny}}}",
            'accounts[0].pools.c: unit_by_host and unit "{pool}" cannot be used together',
        ),
        (
            "{required_params: {team: the team id}, request: {url: 'https://x/{team}'}}",
            "accounts[0].params.team: is required: the team id",
        ),
        (
            "{params: {team: ''}, request: {url: 'https://x/t/{team}/c'}}",
            "accounts[0].params.team: is empty, but fills a placeholder in request.url",
        ),
        (
            "{params: {team: ' '}, base_url: 'https://{team}.x', request: {url: /c}}",
            "accounts[0].params.team: is empty, but fills a placeholder in base_url",
        ),
        (
            "{params: {team: '..'}, request: {url: 'https://x/t/{team}/c'}}",
            'accounts[0].params.team: ".." would change the path of request.url',
        ),
        (
            "{params: {user: 'a:b'}, auth: {type: basic, username: '{user}'}}",
            "accounts[0].params.user: cannot contain ':', as it fills the Basic auth username",
        ),
    ],
)
def test_one_error(change: str, fragment: str) -> None:
    base = yaml.safe_load(MINIMAL)[0]
    base.update(yaml.safe_load(change))
    errs = errors(yaml.safe_dump({"accounts": [base]}))
    assert any(fragment in e for e in errs), errs


def test_required_params_replace_the_placeholder_errors() -> None:
    """A preset's required param missing is one error at params.<name> saying what it is, not
    one per template that uses it."""
    errs = errors("accounts: [{name: a, provider: plivo, api_key: k}]")
    assert errs == [
        "accounts[0].params.auth_id: is required: the Auth ID (MA... or SA...) from the Plivo console"
    ]
    errs = errors("accounts: [{name: a, provider: plivo, api_key: k, params: {auth_id: ''}}]")
    assert errs == ["accounts[0].params.auth_id: is empty, but fills a placeholder in request.url"]


def test_params_checked_only_where_they_shape_the_url_or_username() -> None:
    """Empty values are fine in a query string, a header or the body; '.' and ':' too."""
    p = provider(
        """
  - name: a
    provider: http_json
    provider_name: acme
    api_key: k-123456
    params: {q: "", dot: ".", colon: "a:b"}
    request:
      method: POST
      url: "https://x.example/v1/c?q={q}&d={dot}"
      headers: {X-Colon: "{colon}", X-Q: "{q}"}
      body: {q: "{q}", d: "{dot}"}
    auth: {type: bearer}
    pools: {c: {remaining: a}}
"""
    )
    assert p.url == "https://x.example/v1/c?q=&d=."


def test_placeholders_and_escapes() -> None:
    p = provider(
        """
  - name: a
    provider: http_json
    provider_name: acme
    api_key: k-123456
    base_url: "https://{region}.example.com/api/"
    params: {region: eu, team: "a/b c", n: 7}
    request:
      method: POST
      url: "/teams/{team}/usage?n={n}&literal={{x}}"
      headers: {X-Team: "{team}", X-Literal: "{{team}} {nope"}
      body: {"{team}": ["{n}", 1, true, null, {deep: "{region}"}], graphql: "{ viewer { credits } }"}
    auth: {type: header, name: X-Key}
    pools: {c: {remaining: a}}
"""
    )
    assert p.base_url == "https://eu.example.com/api"
    assert p.url == "https://eu.example.com/api/teams/a%2Fb%20c/usage?n=7&literal={x}"
    req = p.request
    assert req.headers == {"X-Team": "a/b c", "X-Literal": "{team} {nope", "X-Key": "k-123456"}
    assert req.body == {
        "a/b c": ["7", 1, True, None, {"deep": "eu"}],
        "graphql": "{ viewer { credits } }",
    }


# --------------------------------------------------------------------------- auth placement


def auth_provider(
    auth: str, request: str = "{url: 'https://x.example/v1/q'}", extra: str = ""
) -> HttpJson:
    return provider(
        f"""
  - name: a
    provider: http_json
    provider_name: acme
    api_key: "s3cr3t/+key"
    params: {{user: AC42}}
    request: {request}
    auth: {auth}
    pools: {{c: {{remaining: a}}}}
{extra}"""
    )


def test_every_auth_type() -> None:
    r = auth_provider("{type: bearer}").request
    assert r.headers == {"Authorization": "Bearer s3cr3t/+key"} and r.params is None
    r = auth_provider("{type: header, name: Authorization, scheme: DeepL-Auth-Key}").request
    assert r.headers == {"Authorization": "DeepL-Auth-Key s3cr3t/+key"}
    r = auth_provider("{type: header, name: xi-api-key}").request
    assert r.headers == {"xi-api-key": "s3cr3t/+key"}
    r = auth_provider("{type: header, name: Authorization, scheme: Token}").request
    assert r.headers == {"Authorization": "Token s3cr3t/+key"}
    assert auth_provider("{type: header, name: api_key}").request.headers == {
        "api_key": "s3cr3t/+key"
    }
    r = auth_provider("{type: query, name: api_key}").request
    assert r.params == {"api_key": "s3cr3t/+key"} and r.headers == {}
    assert "s3cr3t" not in r.url
    r = auth_provider(
        "{type: body, field: auth.token}",
        "{url: 'https://x.example/v1/q', method: POST, body: {auth: {kind: key}, q: 1}}",
    ).request
    assert r.body == {"auth": {"kind": "key", "token": "s3cr3t/+key"}, "q": 1}
    r = auth_provider(
        "{type: body, field: key}", "{url: 'https://x.example/q', method: POST}"
    ).request
    assert r.body == {"key": "s3cr3t/+key"}
    r = auth_provider("{type: basic, username: '{user}'}").request
    assert r.headers == {"Authorization": "Basic " + base64.b64encode(b"AC42:s3cr3t/+key").decode()}
    # POST without a body sends an empty object; GET sends none.
    r = auth_provider("{type: bearer}", "{url: 'https://x.example/q', method: POST}").request
    assert r.body == {}
    assert auth_provider("{type: bearer}").request.body is None
    # The request's repr (e.g. in a traceback) never shows the key.
    assert "s3cr3t" not in repr(r)


def test_base_url_if_key_suffix() -> None:
    def url(key: str) -> str:
        return provider(
            f"""
  - {{name: a, provider: deepl, api_key: "{key}"}}
"""
        ).url

    assert url("abc") == "https://api.deepl.com/v2/usage"
    assert url("abc:fx") == "https://api-free.deepl.com/v2/usage"
    # The longest matching suffix wins; a rule can be removed with null.
    p = provider(
        """
  - name: a
    provider: deepl
    api_key: "abc:fx"
    base_url: https://proxy.example/deepl
    base_url_if_key_suffix: {":fx": null}
"""
    )
    assert p.url == "https://proxy.example/deepl/v2/usage"
    p = provider(
        """
  - name: a
    provider: deepl
    api_key: "abc:fx"
    base_url_if_key_suffix: {"c:fx": "https://c.example"}
"""
    )
    assert p.url == "https://c.example/v2/usage"


# --------------------------------------------------------------------------- presets


def test_presets_are_data_and_registered() -> None:
    folder = ROOT / "exporter" / "providers" / "http_json" / "presets"
    names = sorted(f.stem for f in folder.glob("*.yaml"))
    assert names == [
        "anticaptcha",
        "boldsign",
        "crustdata",
        "deepl",
        "deepseek",
        "dropcontact",
        "elevenlabs",
        "firecrawl",
        "hunter",
        "lusha",
        "moonshot",
        "openrouter",
        "plivo",
        "sendgrid",
        "serpapi",
        "telnyx",
        "twilio",
        "vonage",
        "zerobounce",
    ]
    assert sorted(PRESETS) == names
    for name in names:
        assert PROVIDERS[name].provider is HttpJson
        account = PROVIDERS[name].account
        assert issubclass(account, HttpJsonAccount)
        assert name == account.PRESET
        assert PRESETS[name]["provider_name"] == name
        assert not {"name", "provider", "api_key"} & PRESETS[name].keys()


PRESET_CASES: list[tuple[str, str, Any, dict[str, PoolValues], dict[str, float | None]]] = [
    (
        "openrouter",
        "",
        {"data": {"total_credits": 100.5, "total_usage": 25.75}},
        {"credits": PoolValues(remaining=74.75, used=25.75, limit=100.5)},
        {},
    ),
    (
        "deepl",
        "",
        {
            "character_count": 180118,
            "character_limit": 1000000000000,
            "start_time": "2026-11-05T09:18:42Z",
            "end_time": "2026-12-05T09:18:42Z",
        },
        {"characters": PoolValues(used=180118)},
        {
            "cycle_start_timestamp": datetime(2026, 11, 5, 9, 18, 42, tzinfo=UTC).timestamp(),
            "cycle_end_timestamp": datetime(2026, 12, 5, 9, 18, 42, tzinfo=UTC).timestamp(),
        },
    ),
    (
        "deepl",
        "",
        {"character_count": 180118, "character_limit": 500000},
        {"characters": PoolValues(remaining=319882, used=180118, limit=500000)},
        {"cycle_start_timestamp": None, "cycle_end_timestamp": None},
    ),
    (
        "elevenlabs",
        "",
        {
            "tier": "creator",
            "character_count": 17231,
            "character_limit": 100000,
            "next_character_count_reset_unix": 1738356858,
        },
        {"characters": PoolValues(remaining=82769, used=17231, limit=100000)},
        {"cycle_end_timestamp": 1738356858},
    ),
    (
        "hunter",
        "",
        {
            "data": {
                "plan_name": "Starter",
                "reset_date": "2026-12-09",
                "calls": {"used": 0, "available": 0},
                "requests": {
                    # available includes a pack's remainder: remaining is read, not derived.
                    "credits": {"used": 15, "available": 1250, "remaining": 1150},
                    "searches": {"used": 10, "available": 500, "remaining": 490},
                    "verifications": {"used": 5, "available": 1000},
                },
            }
        },
        {
            "credits": PoolValues(remaining=1150, used=15, limit=1250),
            "searches": PoolValues(remaining=490, used=10, limit=500),
            # An answer without "remaining": used and the allowance, never available - used.
            "verifications": PoolValues(used=5, limit=1000),
        },
        {"cycle_end_timestamp": datetime(2026, 12, 9, tzinfo=UTC).timestamp()},
    ),
    (
        "hunter",
        "",
        # A plan without the searches/verifications meters.
        {
            "data": {
                "reset_date": "2026-12-09",
                "requests": {"credits": {"used": 1, "available": 50, "remaining": 49}},
            }
        },
        {"credits": PoolValues(remaining=49, used=1, limit=50)},
        {},
    ),
    (
        "twilio",
        "params: {account_sid: AC1}",
        {"account_sid": "AC1", "balance": "-0.25", "currency": "USD"},
        {"usd": PoolValues(remaining=-0.25)},
        {},
    ),
    (
        "deepseek",
        "",
        {
            "is_available": True,
            "balance_infos": [
                {
                    "currency": "CNY",
                    "total_balance": "110.00",
                    "granted_balance": "10.00",
                    "topped_up_balance": "100.00",
                },
                {
                    "currency": "USD",
                    "total_balance": "2.50",
                    "granted_balance": "0.00",
                    "topped_up_balance": "2.50",
                },
            ],
        },
        {"cny": PoolValues(remaining=110), "usd": PoolValues(remaining=2.5)},
        {},
    ),
]


@pytest.mark.parametrize(("preset", "extra", "body", "pools", "times"), PRESET_CASES)
def test_presets_parse_documented_answers(
    preset: str, extra: str, body: Any, pools: dict[str, PoolValues], times: dict[str, float | None]
) -> None:
    extra = f", {extra}" if extra else ""
    p = provider(f"  - {{name: a, provider: {preset}, api_key: k-123456{extra}}}")
    assert p.label == preset
    reading = p.parse(body)
    assert dict(reading.pools) == pools
    for attr, expected in times.items():
        assert getattr(reading, attr) == expected


def test_preset_units() -> None:
    p = provider("  - {name: a, provider: deepseek, api_key: k}")
    assert p.units() == {}
    p.parse({"balance_infos": [{"currency": "CNY", "total_balance": "1"}]})
    assert p.units() == {"cny": "cny"}
    assert provider("  - {name: a, provider: openrouter, api_key: k}").units() == {"credits": "usd"}
    assert provider("  - {name: a, provider: deepl, api_key: k}").units() == {
        "characters": "characters"
    }


@pytest.mark.parametrize(
    ("preset", "body", "fragment"),
    [
        ("openrouter", {"data": {"total_credits": 1}}, "data.total_usage is missing"),
        ("openrouter", {"total_credits": 1, "total_usage": 0}, "data.total_usage is missing"),
        ("openrouter", [], "expected an object at $, got array"),
        ("deepl", {"character_count": None, "character_limit": 5}, "character_count is null"),
        (
            "deepl",
            {"character_count": 1, "character_limit": 5, "end_time": "soon"},
            'end_time is not a valid date or date-time ("soon")',
        ),
        (
            "elevenlabs",
            {"character_count": 1, "character_limit": 5, "next_character_count_reset_unix": "x"},
            "should be an epoch timestamp",
        ),
        (
            "hunter",
            {"data": {"reset_date": "2026-12-09", "requests": {}}},
            "none of the pools is in the response (data.requests.credits.used is missing)",
        ),
        (
            "hunter",
            {"data": {"requests": {"credits": {"used": 1, "available": 2}}}},
            "data.reset_date is missing",
        ),
        (
            "hunter",
            {
                "data": {
                    "reset_date": "2026-12-09",
                    "requests": {"credits": {"used": "x", "available": 2}},
                }
            },
            'data.requests.credits.used should be a number, got the string "x"',
        ),
        ("deepseek", {"balance_infos": {}}, "balance_infos should be an array, got object"),
        (
            "deepseek",
            {"balance_infos": [{"currency": "CNY"}]},
            "balance_infos[0].total_balance is missing",
        ),
        (
            "deepseek",
            {"balance_infos": [{"currency": 1, "total_balance": "1"}]},
            "balance_infos[0].currency should be a string naming the pool, got number",
        ),
        (
            "deepseek",
            {"balance_infos": [{"currency": "", "total_balance": "1"}]},
            'balance_infos[0].currency ("") is not a usable pool name',
        ),
        (
            "deepseek",
            {"balance_infos": [{"currency": "CNY", "total_balance": "-1"}]},
            "balance_infos[0].total_balance is negative",
        ),
        (
            "deepseek",
            {
                "balance_infos": [
                    {"currency": "USD", "total_balance": "1"},
                    {"currency": "usd", "total_balance": "2"},
                ]
            },
            'two pools are named "usd"',
        ),
        ("twilio", {"balance": "1.0"}, "currency is missing"),
        (
            "twilio",
            {"balance": "ten", "currency": "USD"},
            'balance should be a number, got the string "ten"',
        ),
    ],
)
def test_preset_bad_answers_name_the_path(preset: str, body: Any, fragment: str) -> None:
    p = provider(f"  - {{name: a, provider: {preset}, api_key: k, params: {{account_sid: AC1}}}}")
    assert fragment in bad(p, body)


def test_preset_override_field_by_field() -> None:
    (a, b, c) = load(
        """
accounts:
  - name: a
    provider: deepl
    api_key: k
    pools: {characters: {unlimited: [], scale: 2}}
    cycle_start: null
    endpoint: usage
  - name: b
    provider: deepl
    api_key: k
    auth: {type: query, name: auth_key}
  - name: c
    provider: hunter
    api_key: k
    pools: {credits: {optional: false, remaining: data.requests.credits.remaining}}
"""
    )
    assert a.pools["characters"].used.path == "character_count"  # kept from the preset
    assert a.pools["characters"].unlimited == ()
    assert a.cycle_start is None and a.cycle_end is not None
    pa = create_provider(a)
    assert isinstance(pa, HttpJson)
    assert pa.endpoints == ("usage",)
    r = pa.parse({"character_count": 10, "character_limit": 1000000000000})
    assert r.pools["characters"] == PoolValues(remaining=2e12 - 20, used=20, limit=2e12)
    # An auth of another type replaces the preset's instead of merging with it.
    assert b.auth.type == "query" and b.auth.scheme is None
    # Hunter with the newer "remaining" field and a required credits meter.
    pc = create_provider(c)
    assert isinstance(pc, HttpJson)
    r = pc.parse(
        {
            "data": {
                "reset_date": "2026-12-09",
                "requests": {"credits": {"used": 1, "available": 5, "remaining": 3}},
            }
        }
    )
    assert r.pools == {"credits": PoolValues(remaining=3, used=1, limit=5)}
    assert "data.requests.credits.remaining is missing" in bad(
        pc,
        {
            "data": {
                "reset_date": "2026-12-09",
                "requests": {"credits": {"used": 1, "available": 5}},
            }
        },
    )


def test_preset_errors_name_the_accounts_place() -> None:
    errs = errors(
        """
accounts:
  - {name: ok, provider: openrouter, api_key: k}
  - {name: sms, provider: twilio, api_key: k}
  - {name: t, provider: deepl, api_key: k, pools: {characters: {used: "a..b"}}, request: {method: PATCH}}
  - {name: u, provider: openrouter, api_key: k, provider_name: deepl}
"""
    )
    assert errs == [
        "accounts[1].params.account_sid: is required: the Account SID (AC...) from the Twilio Console",
        "accounts[2].request.method: Input should be 'GET' or 'POST'",
        'accounts[2].pools.characters.used: invalid path "a..b" (use e.g. data.total, items[0].value, ["odd.key"], or $)',
        'accounts[3].provider_name: "deepl" is the name of a built-in provider (use provider: deepl and override its keys instead)',
    ]


def test_merge_patch() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None, "e": 3}, "d": [2]}) == {
        "a": {"c": 2, "e": 3},
        "d": [2],
    }
    assert merge_patch({"a": 1}, {"a": {"b": None}}) == {"a": {}}
    assert merge_patch({"a": 1}, 5) == 5


def test_presets_do_not_leak_between_accounts() -> None:
    a, b = load(
        """
accounts:
  - {name: a, provider: deepl, api_key: k, pools: {characters: {scale: 3}}}
  - {name: b, provider: deepl, api_key: k}
"""
    )
    assert a.pools["characters"].scale == 3
    assert b.pools["characters"].scale == 1
    assert PRESETS["deepl"]["pools"]["characters"].get("scale") is None


# --------------------------------------------------------------------------- parsing


GENERIC = """
  - name: a
    provider: http_json
    provider_name: acme
    api_key: k
    request: {url: "https://x.example/q"}
    auth: {type: bearer}
    pools:
      main: {remaining: r, used: u, limit: l, unlimited: [null, -1, "unlimited"], scale: 0.01}
      rows:
        for_each: rows
        name: "[0]"
        remaining: "[1]"
        optional: true
        unit: "{pool}"
    expiry: {path: exp, format: epoch_ms}
    cycle_start: {path: start, optional: true}
    cycle_end: {path: end, format: date, optional: true}
"""


def test_generic_parse() -> None:
    p = provider(GENERIC)
    r = p.parse(
        {
            "r": "150",
            "u": 50,
            "l": None,
            "rows": [["Email  Credits", 7], [" SMS ", "8.5"]],
            "exp": 1_798_761_600_000,
            "start": None,
            "end": "2027-01-01",
        }
    )
    assert r.pools == {
        "main": PoolValues(remaining=1.5, used=0.5, limit=None),
        "email_credits": PoolValues(remaining=7),
        "sms": PoolValues(remaining=8.5),
    }
    assert r.expiry_timestamp == 1_798_761_600
    assert r.cycle_start_timestamp is None
    assert r.cycle_end_timestamp == 1_798_761_600
    assert p.units() == {"email_credits": "email_credits", "sms": "sms"}
    # Derived remaining; sentinels; optional rows skipped when missing.
    r = p.parse({"u": 50, "l": "unlimited", "exp": 0, "r": -1})
    assert r.pools == {"main": PoolValues(remaining=None, used=0.5, limit=None)}
    assert r.cycle_end_timestamp is None
    r = p.parse({"r": 1, "u": 50, "l": 100, "exp": 0, "rows": [["a"], ["b", 2]]})
    assert r.pools == {
        "main": PoolValues(remaining=0.01, used=0.5, limit=1),
        "b": PoolValues(remaining=2),
    }


def test_scale_cannot_overflow() -> None:
    p = provider(
        """
  - name: a
    provider: http_json
    provider_name: acme
    api_key: k
    request: {url: "https://x.example/q"}
    auth: {type: bearer}
    pools: {c: {remaining: r, scale: 1e300}}
"""
    )
    assert p.parse({"r": 0}).pools["c"].remaining == 0
    assert bad(p, {"r": 1e10}) == "r times scale is not a plausible number"
    assert bad(p, {"r": 1e-280}) == "r times scale is not a plausible number"
    assert p.parse({"r": 1e-290}).pools["c"].remaining == pytest.approx(1e10)


def test_derived_remaining_and_negative() -> None:
    p = provider(
        """
  - name: a
    provider: http_json
    provider_name: acme
    api_key: k
    request: {url: "https://x.example/q"}
    auth: {type: bearer}
    pools: {c: {used: u, limit: l}}
"""
    )
    assert p.parse({"u": 3, "l": 10}).pools == {"c": PoolValues(remaining=7, used=3, limit=10)}
    # Used beyond the limit (overage) is reported as such, not clamped to 0.
    assert p.parse({"u": 12, "l": 10}).pools["c"].remaining == -2
    assert "u is negative" in bad(p, {"u": -3, "l": 10})


ERRORS_IN_200 = """
  - name: a
    provider: http_json
    provider_name: acme
    api_key: k-123456
    request: {url: "https://x.example/q"}
    auth: {type: bearer}
    error_when:
      - {path: status.code, equals: [401, "unauthorized"], reason: auth, means: key refused}
      - {path: ok, equals: [false], message: status.text}
      - {path: state, not_equals: ["ok", null], reason: server_error}
    pools: {c: {remaining: balance}}
"""


def test_error_when_rules() -> None:
    """Errors reported inside a successful answer fail the poll with the rule's reason; the
    first rule that matches wins; a rule whose path is missing (or runs through another shape)
    says nothing."""
    p = provider(ERRORS_IN_200)

    def refused(body: Any) -> PollError:
        with pytest.raises(PollError) as info:
            p.parse(body)
        return info.value

    assert p.parse({"balance": 5}).pools == {"c": PoolValues(remaining=5)}
    assert p.parse({"balance": 5, "status": [1], "state": None}).pools["c"].remaining == 5
    assert p.parse({"balance": 5, "ok": True, "state": "ok"}).pools["c"].remaining == 5
    e = refused({"status": {"code": 401}, "ok": False})
    assert (e.reason, e.message) == (Reason.AUTH, "status.code is 401: key refused")
    e = refused({"status": {"code": 401.0}})
    assert e.reason is Reason.AUTH  # numbers compare by value
    # An integer too large for a float is compared, not a crash (it is no rule's value).
    e = refused({"balance": 5, "status": {"code": 10**400}, "state": "degraded"})
    assert e.reason is Reason.SERVER_ERROR
    # Integers compare exactly, beyond a float's 53 bits too.
    exact = provider(
        ERRORS_IN_200.replace("equals: [401, ", f"equals: [{2**53 + 1}, ").replace(
            "status.code", "code"
        )
    )
    with pytest.raises(PollError):
        exact.parse({"balance": 1, "code": 2**53 + 1})
    assert exact.parse({"balance": 1, "code": 2**53}).pools["c"].remaining == 1
    e = refused({"balance": 5, "state": -(10**400)})  # and shown without one
    assert (e.reason, e.message) == (Reason.SERVER_ERROR, "state is a number too large to show")
    e = refused({"status": {"code": "unauthorized"}})
    assert (e.reason, e.message) == (Reason.AUTH, 'status.code is "unauthorized": key refused')
    assert refused({"ok": False}).message == "ok is false"
    e = refused({"ok": False, "status": {"code": 200, "text": "quota service down"}})
    assert (e.reason, e.message) == (Reason.BAD_RESPONSE, 'ok is false ("quota service down")')
    # true is not 1, "401" is not 401, 0 is not false.
    assert p.parse({"balance": 1, "status": {"code": "401"}, "ok": 0}).pools["c"].remaining == 1
    e = refused({"balance": 1, "state": "degraded"})
    assert (e.reason, e.message) == (Reason.SERVER_ERROR, 'state is "degraded"')
    # A value of the answer is quoted: the key it may echo is redacted before any cut.
    echo = "k-123456 " * 10
    e = refused({"ok": False, "status": {"text": echo}}).redacted("k-123456")
    assert "k-123456" not in e.message and "[REDACTED]" in e.message
    e = refused({"state": echo}).redacted("k-123456")
    assert "k-123456" not in e.message


def test_unit_by_host() -> None:
    def units(base_url: str) -> Any:
        return provider(
            f"""
  - name: a
    provider: http_json
    provider_name: acme
    api_key: k-123456
    base_url: "{base_url}"
    request: {{url: /q}}
    auth: {{type: bearer}}
    pools:
      main: {{remaining: a, unit: usd, unit_by_host: {{cn.example.com: cny, eu.example.com: eur}}}}
      other: {{remaining: b, unit_by_host: {{cn.example.com: cny}}}}
"""
        ).units()

    assert units("https://api.example.com") == {"main": "usd"}
    assert units("https://CN.example.com:8443/v1") == {"main": "cny", "other": "cny"}
    assert units("https://eu.example.com") == {"main": "eur"}


def test_generic_bad_answers() -> None:
    p = provider(GENERIC)
    assert bad(p, {"u": 1, "l": 1, "exp": 0}) == "r is missing"
    assert bad(p, {"r": 1, "u": 1, "l": 1}) == "exp is missing"
    assert bad(p, {"r": 1, "u": 1, "l": 1, "exp": None}) == "exp is null"
    assert "rows should be an array" in bad(p, {"r": 1, "u": 1, "l": 1, "exp": 0, "rows": 3})
    assert (
        bad(p, {"r": 1, "u": 1, "l": 1, "exp": 0, "rows": [5]})
        == "rows[0][0]: expected an array at $, got number"
    )
    assert (
        bad(p, {"r": 1, "u": 1, "l": 1, "exp": 0, "rows": [["main", 1]]})
        == 'two pools are named "main" (pools.rows)'
    )
    many = [[f"p{i}", i] for i in range(MAX_POOLS + 5)]
    assert f"more than {MAX_POOLS} pools" in bad(
        p, {"r": 1, "u": 1, "l": 1, "exp": 0, "rows": many}
    )
    assert "end is not a valid date" in bad(
        p, {"r": 1, "u": 1, "l": 1, "exp": 0, "end": "2027-01-01T00:00:00Z"}
    )


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[str, list[web.Request], dict[str, Any]]]:
    """A loopback server that records each request and answers with ``reply``."""
    seen: list[web.Request] = []
    reply: dict[str, Any] = {"status": 200, "body": {"data": {"balance": 42}}}
    bodies: list[Any] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request)
        raw = await request.read()
        bodies.append(json.loads(raw) if raw else None)
        return web.json_response(reply["body"], status=reply["status"])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    reply["bodies"] = bodies
    yield f"http://127.0.0.1:{port}", seen, reply
    await runner.cleanup()


async def test_fetch_over_http_with_query_auth(
    upstream: tuple[str, list[web.Request], dict[str, Any]],
) -> None:
    url, seen, reply = upstream
    key = "k/+ey=&1"
    p = provider(
        f"""
  - name: a
    provider: http_json
    provider_name: acme
    api_key: "{key}"
    base_url: "{url}/api"
    params: {{team: blue}}
    request: {{url: "/v1/q?team={{team}}", headers: {{X-V: "2"}}}}
    auth: {{type: query, name: api_key}}
    pools: {{credits: {{remaining: data.balance}}}}
"""
    )
    async with aiohttp.ClientSession() as session:
        http = account_client(session, secret=key)
        reading = await p.fetch("balance", http)
        assert reading.pools == {"credits": PoolValues(remaining=42)}
        request = seen[-1]
        assert request.path == "/api/v1/q"
        assert dict(request.query) == {"team": "blue", "api_key": key}
        assert request.headers["X-V"] == "2"
        assert "Authorization" not in request.headers

        # An error page that echoes the key: the message keeps the text, never the key.
        reply.update(status=401, body={"error": {"message": f"invalid key {key}"}})
        with pytest.raises(PollError) as info:
            await p.fetch("balance", http)
        assert info.value.reason is Reason.AUTH
        assert info.value.message == "HTTP 401: invalid key [REDACTED]"
        # A configured error path wins over the usual places.
        reply.update(status=500, body={"oops": {"why": "db down"}, "message": "generic"})
        with pytest.raises(PollError) as info:
            await p.fetch("balance", http)
        assert info.value.message == "HTTP 500: generic"
        # Nothing the client raises shows the URL with its query string.
        reply.update(status=200, body={"data": {}})
        with pytest.raises(PollError) as info:
            await p.fetch("balance", http)
        assert info.value.message == "data.balance is missing"
        for text in (str(info.value), repr(info.value)):
            assert find_secrets(text, [key]) == [] and "api_key" not in text


async def test_fetch_post_body_auth_and_basic(
    upstream: tuple[str, list[web.Request], dict[str, Any]],
) -> None:
    url, seen, reply = upstream
    body_p = provider(
        f"""
  - name: a
    provider: http_json
    provider_name: acme
    api_key: body-key-1
    request: {{method: POST, url: "{url}/q", body: {{query: {{team: x}}}}}}
    auth: {{type: body, field: auth.key}}
    pools: {{credits: {{remaining: data.balance}}}}
    error_message: oops.why
"""
    )
    basic_p = provider(
        f"""
  - name: b
    provider: twilio
    api_key: token-1
    base_url: "{url}/tw"
    params: {{account_sid: AC9}}
"""
    )
    async with aiohttp.ClientSession() as session:
        http = account_client(session, secret="body-key-1")
        await body_p.fetch("balance", http)
        assert seen[-1].method == "POST"
        assert reply["bodies"][-1] == {"query": {"team": "x"}, "auth": {"key": "body-key-1"}}
        reply.update(status=500, body={"oops": {"why": "db down"}, "message": "generic"})
        with pytest.raises(PollError) as info:
            await body_p.fetch("balance", http)
        assert info.value.message == "HTTP 500: db down"
        reply.update(status=200, body={"balance": "1.5", "currency": "EUR"})
        reading = await basic_p.fetch("balance", account_client(session, secret="token-1"))
        assert reading.pools == {"eur": PoolValues(remaining=1.5)}
        request = seen[-1]
        assert request.path == "/tw/2010-04-01/Accounts/AC9/Balance.json"
        scheme, _, encoded = request.headers["Authorization"].partition(" ")
        assert scheme == "Basic" and base64.b64decode(encoded) == b"AC9:token-1"


# --------------------------------------------------------------------------- CLI, example


def test_check_config_lists_http_json_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        """
accounts:
  - {name: a, provider: hunter, api_key: hk-1234567, pools: {credits: {used: "x..y"}}}
  - {name: b, provider: openrouter, api_key: or-1234567}
"""
    )
    proc = subprocess.run(
        [*exporter_command(), "check-config", f"--config.file={path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    text = proc.stdout + proc.stderr
    assert 'accounts[0].pools.credits.used: invalid path "x..y"' in text
    assert "hk-1234567" not in text


def test_example_config_presets_load() -> None:
    """The commented preset examples in config.example.yaml are valid once uncommented."""
    text = (ROOT / "config.example.yaml").read_text()
    lines = text.splitlines()
    start = lines.index("# --- http_json presets (uncomment to use) ---")
    block = []
    for line in lines[start + 1 :]:
        if not line.startswith("#"):
            break
        block.append(line[2:] if line.startswith("# ") else line[1:])
    doc = yaml.safe_load("\n".join(block))
    env = {
        "OPENROUTER_API_KEY": "a-123456",
        "DEEPL_AUTH_KEY": "b-123456:fx",
        "ELEVENLABS_API_KEY": "c-123456",
        "HUNTER_API_KEY": "d-123456",
        "TWILIO_AUTH_TOKEN": "e-123456",
        "TWILIO_ACCOUNT_SID": "AC123",
        "DEEPSEEK_API_KEY": "f-123456",
        "ACME_API_KEY": "g-123456",
        "VONAGE_API_KEY": "abcd1234",
        "PLIVO_AUTH_ID": "MA2025RK4E639VJFZAGV",
    }
    for preset in PRESETS:
        env.setdefault(f"{preset.upper()}_API_KEY", f"{preset}-123456")
    env |= {"VONAGE_API_SECRET": "h-123456", "PLIVO_AUTH_TOKEN": "i-123456"}
    config = parse_config(yaml.safe_dump({"accounts": doc}), env=env)
    assert {a.provider for a in config.accounts} == {*PRESETS, "http_json"}
