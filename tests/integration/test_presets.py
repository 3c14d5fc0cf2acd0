"""The http_json provider end to end: the exporter as a subprocess polls the simulated APIs of
every preset (OpenRouter, DeepL Pro and Free, ElevenLabs, Hunter, Twilio, DeepSeek) and an API
the project has never heard of, configured with YAML alone; the values are read off /metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from aiohttp import web

from exporter.simulator import Simulator, SimulatorThread
from support import ExporterProcess, http_get, sample_values, value, wait_for
from support.leaks import find_secrets, wire_forms

OR_KEY = "sk-or-v1-it-0r7f3a-0001"
DL_KEY = "it-dl-pro-7c1e-0002"
DLF_KEY = "it-dl-free-9a2c-0003:fx"
EL_KEY = "it-el-9b4d-key-0004"
HU_KEY = "it-hu-5e2a-key-0005"
HU_BAD_KEY = "it-hu-5e2a-rvk-0006"
TW_TOKEN = "it-tw-6a8d-token-0007"
TW_SID = "AC0123456789abcdef0123456789abcdef"
DS_KEY = "sk-it-ds-3b9f-0008"
DS_BAD_KEY = "sk-it-ds-3b9f-brk-0009"
ACME_KEY = "acme/secret+key=0010"  # characters that change when URL-encoded
KEYS = (OR_KEY, DL_KEY, DLF_KEY, EL_KEY, HU_KEY, HU_BAD_KEY, TW_TOKEN, DS_KEY, DS_BAD_KEY, ACME_KEY)

DEEPL_START = "2026-11-05T09:18:42Z"
DEEPL_END = "2026-12-05T09:18:42Z"
EL_RESET = 1_798_761_600  # 2027-01-01T00:00:00Z


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------- an unknown API

ACME_REQUESTS: list[dict[str, Any]] = []


async def acme_quota(request: web.Request) -> web.Response:
    """A credit API nobody wrote code for: POST, the key inside the JSON body, a team in the
    query string and in the body, a version header; money in cents as strings, a null limit
    meaning unlimited, three timestamp formats."""
    body = await request.json()
    ACME_REQUESTS.append({"query": dict(request.query), "body": body})
    if not isinstance(body, dict) or body.get("auth", {}).get("token") != ACME_KEY:
        return web.json_response({"error": {"message": "bad token"}}, status=401)
    if request.query.get("team") != "blue team" or body.get("team") != "blue team":
        return web.json_response({"error": {"message": "unknown team"}}, status=404)
    if request.headers.get("X-Acme-Version") != "2026-01":
        return web.json_response({"error": {"message": "version header missing"}}, status=400)
    return web.json_response(
        {
            "result": {
                "wallets": [
                    {
                        "kind": "Email Credits",
                        "balance_cents": "123456",
                        "granted_cents": 200000,
                        "spent_cents": "76544",
                    },
                    {"kind": "SMS", "balance_cents": 5000, "granted_cents": None, "spent_cents": 0},
                ],
                "plan": {
                    "renews_on": "2026-12-01",
                    "started": "2026-11-01T00:00:00+01:00",
                    "credits_expire_ms": 1_798_761_600_000,
                },
            }
        }
    )


ACME_YAML = """
  - name: acme-prod
    provider: http_json
    provider_name: acme
    api_key: "{key}"
    base_url: "{base}"
    params: {{team: blue team, version: "2026-01"}}
    request:
      method: POST
      url: /acme/v3/quota?team={{team}}
      headers: {{X-Acme-Version: "{{version}}"}}
      body: {{team: "{{team}}", fields: [wallets, plan]}}
    auth: {{type: body, field: auth.token}}
    pools:
      wallets:
        for_each: result.wallets
        name: kind
        remaining: balance_cents
        used: spent_cents
        limit: granted_cents
        unlimited: [null]
        scale: 0.01
        unit: usd
    expiry: {{path: result.plan.credits_expire_ms, format: epoch_ms}}
    cycle_start: result.plan.started
    cycle_end: {{path: result.plan.renews_on, format: date}}
    low_credit_threshold: {{email_credits: 100}}
"""


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    simulator = Simulator()
    simulator.app.router.add_post("/acme/v3/quota", acme_quota)
    thread = SimulatorThread(simulator)
    thread.start()
    ACME_REQUESTS.clear()
    yield thread
    thread.stop()


def seed(sim: SimulatorThread) -> None:
    sim.add_account("openrouter", OR_KEY, total_credits=100.5, total_usage=25.75)
    sim.add_account(
        "deepl",
        DL_KEY,
        character_count=180_118,
        character_limit=1_000_000_000_000,
        start_time=DEEPL_START,
        end_time=DEEPL_END,
    )
    sim.add_account("deepl", DLF_KEY, character_count=1_000, character_limit=500_000)
    sim.add_account(
        "elevenlabs",
        EL_KEY,
        character_count=17_231,
        character_limit=100_000,
        next_character_count_reset_unix=EL_RESET,
    )
    sim.add_account(
        "hunter",
        HU_KEY,
        reset_date="2026-12-09",
        # available includes what is left of a pack: remaining is Hunter's own figure.
        credits={"used": 115, "available": 1200, "remaining": 1100},
        searches={"used": 10, "available": 500, "remaining": 490},
        verifications={"used": 5, "available": 1000},  # an answer without remaining
    )
    sim.add_account(
        "hunter",
        HU_BAD_KEY,
        # An upstream error page that echoes the request, key included.
        fail={
            "status": 400,
            "body": {"errors": [{"id": "wrong_params", "details": f"bad api_key={HU_BAD_KEY}"}]},
        },
    )
    sim.add_account("twilio", TW_TOKEN, account_sid=TW_SID, balance=-3.5, currency="USD")
    sim.add_account("deepseek", DS_KEY, balances={"CNY": 110.0, "USD": 2.5}, granted={"CNY": 10})
    sim.add_account("deepseek", DS_BAD_KEY, balances={"CNY": 1.0}, malformed="missing_field")


def config_text(sim: SimulatorThread) -> str:
    url = sim.url
    return f"""
defaults: {{interval: 1s, timeout: 2s}}
accounts:
  - {{name: router, provider: openrouter, api_key: "{OR_KEY}", base_url: "{url}/openrouter/api/v1",
      low_credit_threshold: 10}}
  - name: translate-pro
    provider: deepl
    api_key: "{DL_KEY}"
    base_url: "{url}/deepl"
    base_url_if_key_suffix: {{":fx": "{url}/deepl-free"}}
  - name: translate-free
    provider: deepl
    api_key: "{DLF_KEY}"
    base_url: "{url}/deepl"
    base_url_if_key_suffix: {{":fx": "{url}/deepl-free"}}
  - {{name: voice, provider: elevenlabs, api_key: "{EL_KEY}", base_url: "{url}/elevenlabs"}}
  - {{name: leads, provider: hunter, api_key: "{HU_KEY}", base_url: "{url}/hunter/v2"}}
  - {{name: leads-old, provider: hunter, api_key: "{HU_BAD_KEY}", base_url: "{url}/hunter/v2"}}
  - name: sms
    provider: twilio
    api_key: "{TW_TOKEN}"
    base_url: "{url}/twilio"
    params: {{account_sid: {TW_SID}}}
    low_credit_threshold: {{usd: 20}}
  - {{name: llm, provider: deepseek, api_key: "{DS_KEY}", base_url: "{url}/deepseek"}}
  - {{name: llm-broken, provider: deepseek, api_key: "{DS_BAD_KEY}", base_url: "{url}/deepseek"}}
{ACME_YAML.format(key=ACME_KEY, base=url)}"""


def scrape(exp: ExporterProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return sample_values(exp.metrics())


# --------------------------------------------------------------------------- the test


def test_presets_and_an_unknown_api_end_to_end(sim: SimulatorThread, start_exporter: Any) -> None:
    seed(sim)
    exp: ExporterProcess = start_exporter(config_text(sim), args=["--log.level=debug"])
    exp.wait_ready()

    def all_polled() -> Any:
        s = scrape(exp)
        wanted = [
            value(s, "credits_remaining", account=a) for a in ("router", "translate-free", "voice")
        ]
        wanted.append(value(s, "credits_remaining", account="acme-prod", pool="sms"))
        ready = all(v is not None for v in wanted)
        ready = ready and value(s, "credits_remaining", account="llm", pool="usd") is not None
        ready = ready and value(s, "credits_used", account="translate-pro") is not None
        ready = ready and value(s, "credits_remaining", account="leads", pool="credits") is not None
        ready = ready and value(s, "credits_remaining", account="sms") is not None
        errors = value(s, "credits_poll_errors_total", account="llm-broken", reason="bad_response")
        ready = ready and bool(errors)
        ready = ready and bool(
            value(s, "credits_poll_errors_total", account="leads-old", reason="client_error")
        )
        return s if ready else None

    s = wait_for(all_polled)

    # OpenRouter: remaining derived from total_credits - total_usage.
    o = {"provider": "openrouter", "account": "router", "pool": "credits"}
    assert value(s, "credits_limit", **o) == 100.5
    assert value(s, "credits_used", **o) == 25.75
    assert value(s, "credits_remaining", **o) == 74.75
    assert value(s, "credits_low_threshold", **o) == 10
    assert (
        value(s, "credits_up", provider="openrouter", account="router", api_endpoint="balance") == 1
    )

    # DeepL Pro: the 1e12 sentinel means no limit, so limit and remaining are absent (not 0).
    d = {"provider": "deepl", "account": "translate-pro"}
    assert value(s, "credits_used", **d, pool="characters") == 180_118
    assert value(s, "credits_limit", **d, pool="characters") is None
    assert value(s, "credits_remaining", **d, pool="characters") is None
    assert value(s, "credits_billing_cycle_start_timestamp_seconds", **d) == ts(DEEPL_START)
    assert value(s, "credits_billing_cycle_end_timestamp_seconds", **d) == ts(DEEPL_END)
    # DeepL Free: the ":fx" key went to the free host (the Pro host refuses it with a 403).
    f = {"provider": "deepl", "account": "translate-free", "pool": "characters"}
    assert value(s, "credits_limit", **f) == 500_000
    assert value(s, "credits_used", **f) == 1_000
    assert value(s, "credits_remaining", **f) == 499_000
    assert value(s, "credits_billing_cycle_end_timestamp_seconds", account="translate-free") is None
    assert sim.calls(DLF_KEY, "/deepl-free/v2/usage") >= 1
    assert sim.calls(DLF_KEY) == sim.calls(DLF_KEY, "/deepl-free/v2/usage")
    assert sim.calls(DL_KEY) == sim.calls(DL_KEY, "/deepl/v2/usage") >= 1

    # ElevenLabs: characters, cycle end from an epoch.
    e = {"provider": "elevenlabs", "account": "voice"}
    assert value(s, "credits_remaining", **e, pool="characters") == 100_000 - 17_231
    assert value(s, "credits_limit", **e, pool="characters") == 100_000
    assert value(s, "credits_billing_cycle_end_timestamp_seconds", **e) == EL_RESET

    # Hunter: three meters, available = limit, remaining as given (never available - used),
    # reset date = cycle end (midnight UTC).
    h = {"provider": "hunter", "account": "leads"}
    for pool, used, limit, remaining in (
        ("credits", 115, 1200, 1100),
        ("searches", 10, 500, 490),
        ("verifications", 5, 1000, None),
    ):
        assert value(s, "credits_used", **h, pool=pool) == used
        assert value(s, "credits_limit", **h, pool=pool) == limit
        assert value(s, "credits_remaining", **h, pool=pool) == remaining
    assert value(s, "credits_billing_cycle_end_timestamp_seconds", **h) == ts(
        "2026-12-09T00:00:00Z"
    )

    # Twilio: one pool named by the lower-cased currency; a negative balance is kept.
    t = {"provider": "twilio", "account": "sms", "pool": "usd"}
    assert value(s, "credits_remaining", **t) == -3.5
    assert value(s, "credits_used", **t) is None
    assert value(s, "credits_low_threshold", **t) == 20

    # DeepSeek: one pool per currency, string numbers.
    k = {"provider": "deepseek", "account": "llm"}
    assert value(s, "credits_remaining", **k, pool="cny") == 110
    assert value(s, "credits_remaining", **k, pool="usd") == 2.5

    # The unknown API, from YAML alone.
    a = {"provider": "acme", "account": "acme-prod"}
    assert value(s, "credits_remaining", **a, pool="email_credits") == 1234.56
    assert value(s, "credits_used", **a, pool="email_credits") == 765.44
    assert value(s, "credits_limit", **a, pool="email_credits") == 2000
    assert value(s, "credits_low_threshold", **a, pool="email_credits") == 100
    assert value(s, "credits_remaining", **a, pool="sms") == 50
    assert value(s, "credits_used", **a, pool="sms") == 0
    assert value(s, "credits_limit", **a, pool="sms") is None  # null = unlimited
    assert value(s, "credits_expiry_timestamp_seconds", **a) == 1_798_761_600
    assert value(s, "credits_billing_cycle_start_timestamp_seconds", **a) == ts(
        "2026-10-31T23:00:00Z"
    )
    assert value(s, "credits_billing_cycle_end_timestamp_seconds", **a) == ts(
        "2026-12-01T00:00:00Z"
    )
    assert value(s, "credits_up", **a, api_endpoint="balance") == 1
    sent = ACME_REQUESTS[0]
    assert sent["query"] == {"team": "blue team"}
    assert sent["body"] == {
        "team": "blue team",
        "fields": ["wallets", "plan"],
        "auth": {"token": ACME_KEY},
    }

    # A path missing from an answer is a bad_response naming the path; nothing is published.
    b = {"provider": "deepseek", "account": "llm-broken"}
    assert value(s, "credits_up", **b, api_endpoint="balance") == 0
    assert value(s, "credits_remaining", **b) is None

    def status_shows_the_failures() -> dict[str, Any]:
        # The status page renders at most every 2 s: it may show the polls a moment after
        # /metrics does.
        data: dict[str, Any] = json.loads(http_get(f"{exp.url}/api/status")[1])
        by_name = {acct["account"]: acct for acct in data["accounts"]}
        return data if {"llm-broken", "leads-old"} <= errors_of(by_name) else {}

    def errors_of(by_name: dict[str, Any]) -> set[str]:
        return {name for name, acct in by_name.items() if "balance" in acct["errors"]}

    status = wait_for(status_shows_the_failures)
    by_name = {acct["account"]: acct for acct in status["accounts"]}
    error = by_name["llm-broken"]["errors"]["balance"]
    assert error["reason"] == "bad_response"
    assert "balance_infos is missing" in error["message"]
    # The upstream error that echoed the Hunter key: the page shows the status only, the log
    # the message without the key (below).
    hunter_error = by_name["leads-old"]["errors"]["balance"]
    assert hunter_error["reason"] == "client_error"
    assert hunter_error["message"] == "HTTP 400"
    assert by_name["acme-prod"]["provider"] == "acme"

    # No key, in any form, in /metrics, the status page, the JSON status or the (debug) logs.
    pages = [exp.metrics(), http_get(f"{exp.url}/")[1].decode(), json.dumps(status)]
    assert exp.stop() == 0
    logs = exp.logs()
    assert "account=llm-broken provider=deepseek endpoint=balance reason=bad_response" in logs
    assert 'error="balance_infos is missing"' in logs
    assert 'error="HTTP 400: bad api_key=[REDACTED]"' in logs
    secrets = [f for key in KEYS for f in wire_forms(key)] + list(
        wire_forms(TW_TOKEN, basic_user=TW_SID)
    )
    for text in [*pages, logs]:
        assert find_secrets(text, secrets) == []  # the acme key URL-encoded included
        assert "api_key=" not in text.replace("bad api_key=[REDACTED]", "")


# --------------------------------------------------------------------------- issue 14's presets

KEYS14 = {
    "serpapi": "it-srp/key+0011=",  # in the query string: characters a URL encodes
    "telnyx": "KEY-it-tlx-0012",
    "firecrawl": "fc-it-fcr-0013",
    "sendgrid": "SG.it-sgd.0014",
    "vonage": "it-vng-secret-0015",
    "plivo": "it-plv-token-0016",
    "moonshot": "sk-it-msh-0017",
    "zerobounce": "it-zbn-key-0018",
    "crustdata": "it-csd-key-0019",
    "lusha": "it-lsh-key-0020",
    "boldsign": "it-bsg-key-0021",
    "dropcontact": "it-dct-key-0022",
    "anticaptcha": "it-acp-key-0023",
}
ZB_BAD_KEY = "it-zbn-rvk-0024"
AC_BROKE_KEY = "it-acp-brk-0025"
PLIVO_ID = "MA2025RK4E639VJFZAGV"
VONAGE_KEY = "abcd1234"
MOUNTS = {"telnyx": "/telnyx/v2"}
PARAMS = {"plivo": {"auth_id": PLIVO_ID}, "vonage": {"vonage_api_key": VONAGE_KEY}}


def seed14(sim: SimulatorThread) -> None:
    k = KEYS14
    sim.add_account(
        "serpapi",
        k["serpapi"],
        searches_per_month=30000,
        this_month_usage=24042,
        extra_credits=250,
        plan_renewal_date="2026-12-17",
    )
    sim.add_account("telnyx", k["telnyx"], balance=300, credit_limit=100, pending=10)
    sim.add_account(
        "firecrawl",
        k["firecrawl"],
        remaining_credits=1000,
        plan_credits=500000,
        billing_period_start="2025-01-01T00:00:00Z",
        billing_period_end="2025-01-31T23:59:59Z",
    )
    sim.add_account(
        "sendgrid",
        k["sendgrid"],
        total=200,
        used=40,
        last_reset="2026-11-01",
        next_reset="2026-12-01",
    )
    sim.add_account("vonage", k["vonage"], vonage_api_key=VONAGE_KEY, value=10.28)
    sim.add_account("plivo", k["plivo"], auth_id=PLIVO_ID, cash_credits=1.809)
    sim.add_account("moonshot", k["moonshot"], voucher_balance=46.58893, cash_balance=3.00001)
    sim.add_account("zerobounce", k["zerobounce"], credits=2375323)
    sim.add_account("zerobounce", ZB_BAD_KEY, credits=5, revoked=True)
    sim.add_account("crustdata", k["crustdata"], credits=9406.5)
    sim.add_account("lusha", k["lusha"], total=10000, used=1500)
    sim.add_account("boldsign", k["boldsign"], balance_credits=100)
    sim.add_account("dropcontact", k["dropcontact"], credits=1250)
    sim.add_account("anticaptcha", k["anticaptcha"], balance=12.3456, captcha_credits=85000)
    sim.add_account("anticaptcha", AC_BROKE_KEY, error="ERROR_ZERO_BALANCE")


def config14(sim: SimulatorThread) -> dict[str, Any]:
    accounts: list[dict[str, Any]] = [
        {
            "name": name,
            "provider": name,
            "api_key": key,
            "base_url": sim.url + MOUNTS.get(name, f"/{name}"),
            **({"params": PARAMS[name]} if name in PARAMS else {}),
        }
        for name, key in KEYS14.items()
    ]
    accounts[0]["low_credit_threshold"] = {"searches": 1000}
    for name, preset, key in (
        ("zerobounce-revoked", "zerobounce", ZB_BAD_KEY),
        ("anticaptcha-broke", "anticaptcha", AC_BROKE_KEY),
    ):
        accounts.append(
            {"name": name, "provider": preset, "api_key": key, "base_url": f"{sim.url}/{preset}"}
        )
    # Anti-Captcha's documented 1/30s is kept: one poll each is all this test needs.
    return {"defaults": {"interval": "1s", "timeout": "2s"}, "accounts": accounts}


def test_issue14_presets_end_to_end(sim: SimulatorThread, start_exporter: Any) -> None:
    seed14(sim)
    exp: ExporterProcess = start_exporter(config14(sim), args=["--log.level=debug"])
    exp.wait_ready()

    def all_polled() -> Any:
        s = scrape(exp)
        ready = all(value(s, "credits_up", account=name) == 1 for name in KEYS14)
        for name, reason in (
            ("zerobounce-revoked", "auth"),
            ("anticaptcha-broke", "payment_required"),
        ):
            ready = ready and bool(
                value(s, "credits_poll_errors_total", account=name, reason=reason)
            )
        return s if ready else None

    s = wait_for(all_polled, timeout=30)

    def pool(name: str, metric: str, pool_name: str) -> float | None:
        return value(s, metric, provider=name, account=name, pool=pool_name)

    expected: dict[tuple[str, str], tuple[float | None, float | None, float | None]] = {
        # (preset, pool): (remaining, used, limit)
        ("serpapi", "searches"): (5958, 24042, 30000),
        ("serpapi", "extra_credits"): (250, None, None),
        ("telnyx", "usd"): (400, None, None),  # available_credit: balance + credit line
        ("firecrawl", "credits"): (1000, None, 500000),
        ("sendgrid", "emails"): (160, 40, 200),
        ("vonage", "balance"): (10.28, None, None),
        ("plivo", "cash_credits"): (1.809, None, None),
        ("moonshot", "available"): (49.58894, None, None),
        ("zerobounce", "credits"): (2375323, None, None),
        ("crustdata", "credits"): (9406.5, None, None),
        ("lusha", "credits"): (8500, 1500, 10000),
        ("boldsign", "api_credits"): (100, None, None),
        ("dropcontact", "credits"): (1250, None, None),
        ("anticaptcha", "balance"): (12.3456, None, None),
    }
    for (name, pool_name), (remaining, used, limit) in expected.items():
        assert pool(name, "credits_remaining", pool_name) == remaining, (name, pool_name)
        assert pool(name, "credits_used", pool_name) == used, (name, pool_name)
        assert pool(name, "credits_limit", pool_name) == limit, (name, pool_name)
    assert value(s, "credits_low_threshold", account="serpapi", pool="searches") == 1000
    cycle = {
        "serpapi": (None, ts("2026-12-17T00:00:00Z")),
        "firecrawl": (ts("2025-01-01T00:00:00Z"), ts("2025-01-31T23:59:59Z")),
        "sendgrid": (ts("2026-11-01T00:00:00Z"), ts("2026-12-01T00:00:00Z")),
    }
    for name, (start, end) in cycle.items():
        assert value(s, "credits_billing_cycle_start_timestamp_seconds", account=name) == start
        assert value(s, "credits_billing_cycle_end_timestamp_seconds", account=name) == end
    # Refusals inside a 200: classified, and no balance published from them.
    assert value(s, "credits_remaining", account="zerobounce-revoked") is None
    assert value(s, "credits_remaining", account="anticaptcha-broke") is None
    # The key travelled where each preset says: the simulator counted each on its own path.
    assert sim.calls(KEYS14["plivo"], f"/plivo/v1/Account/{PLIVO_ID}/") >= 1
    assert sim.calls(KEYS14["anticaptcha"], "/anticaptcha/getBalance") >= 1
    assert sim.calls(KEYS14["serpapi"], "/serpapi/account.json") >= 1

    def status_shows_the_refusals() -> dict[str, Any] | None:
        data: dict[str, Any] = json.loads(http_get(f"{exp.url}/api/status")[1])
        failing = {a["account"] for a in data["accounts"] if a["errors"]}
        return data if {"zerobounce-revoked", "anticaptcha-broke"} <= failing else None

    status = wait_for(status_shows_the_refusals)
    by_name = {acct["account"]: acct for acct in status["accounts"]}
    units = {
        name: {pool: p["unit"] for pool, p in by_name[name]["pools"].items()}
        for name in ("telnyx", "vonage", "plivo", "moonshot", "anticaptcha", "sendgrid")
    }
    assert units == {
        "telnyx": {"usd": "usd"},
        "vonage": {"balance": "eur"},
        "plivo": {"cash_credits": "usd"},
        "moonshot": {"available": "usd"},
        "anticaptcha": {"balance": "usd"},
        "sendgrid": {"emails": "emails"},
    }
    zb = by_name["zerobounce-revoked"]["errors"]["balance"]
    assert (zb["reason"], zb["message"]) == (
        "auth",
        "Credits is -1: ZeroBounce's answer for an invalid API key",
    )
    ac = by_name["anticaptcha-broke"]["errors"]["balance"]
    assert ac["reason"] == "payment_required"
    # The status page shows the exporter's words, not the provider's text ("…" elided).
    assert ac["message"] == 'errorId is 10: the balance is zero or negative ("…")'

    pages = [exp.metrics(), http_get(f"{exp.url}/")[1].decode(), json.dumps(status)]
    assert exp.stop() == 0
    logs = exp.logs()
    assert (
        'error="errorId is 10: the balance is zero or negative (\\"ERROR_ZERO_BALANCE\\")"' in logs
    )
    users = {"vonage": VONAGE_KEY, "plivo": PLIVO_ID}
    secrets = [f for key in (ZB_BAD_KEY, AC_BROKE_KEY) for f in wire_forms(key)]
    for name, key in KEYS14.items():
        secrets += wire_forms(key, basic_user=users.get(name))
    for text in [*pages, logs]:
        assert find_secrets(text, secrets) == []  # the serpapi key URL-encoded included
