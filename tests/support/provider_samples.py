"""Sample accounts and known-good response bodies per provider, for the property tests
(test_parse_properties.py).

Every provider in ``exporter.providers.PROVIDERS`` is property-tested automatically with a
minimal account (name, provider, api_key). Register a :class:`ProviderSample` when that account
does not validate (required options), to test more variants (options that add endpoints), or
to give known-good bodies per endpoint: hypothesis then also mutates those (drops, nulls,
retypes fields), which finds far more than random JSON alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ProviderSample:
    accounts: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    """Extra account config keys, one dict per variant ({} = the minimal account)."""
    good: dict[str, Any] = field(default_factory=dict)
    """endpoint -> a valid response body."""


SAMPLES: dict[str, ProviderSample] = {}


def register_sample(provider: str, sample: ProviderSample) -> None:
    SAMPLES[provider] = sample


register_sample(
    "theirstack",
    ProviderSample(
        accounts=[{}, {"consumption": {"timezone": "Pacific/Kiritimati", "lookback_days": 7}}],
        good={
            "balance": {
                "api_credits": 900,
                "ui_credits": 40,
                "used_api_credits": 100,
                "used_ui_credits": 9,
                "earliest_expiration": "2026-12-01T00:00:00Z",
            },
            "consumption": [
                {
                    "period_start": "2026-11-20T00:00:00Z",
                    "api_credits_consumed": 12,
                    "ui_credits_consumed": 1,
                },
                {
                    "period_start": "2026-11-21T00:00:00+01:00",
                    "api_credits_consumed": 7.5,
                    "ui_credits_consumed": 0,
                },
            ],
        },
    ),
)
register_sample(
    "windsurf",
    ProviderSample(
        accounts=[
            {},
            {"prompt_usage": True},
            {"prompt_usage": True, "consumption": {"lookback_days": 7}},
        ],
        good={
            "balance": {
                "promptCreditsPerSeat": 500,
                "numSeats": 10,
                "addOnCreditsAvailable": 1000,
                "addOnCreditsUsed": 250,
                "billingCycleStart": "2026-11-01T00:00:00Z",
                "billingCycleEnd": "2026-12-01T00:00:00Z",
            },
            "user_analytics": {
                "userTableStats": [
                    {"name": "ada", "email": "ada@example.com", "promptCreditsUsed": 100},
                    {"name": "bob", "email": "bob@example.com", "promptCreditsUsed": 50},
                ],
                "billingCycleStart": "2026-11-01T00:00:00Z",
                "billingCycleEnd": "2026-12-01T00:00:00Z",
            },
            "consumption": {
                "queryResults": [
                    {
                        "cascadeRuns": {
                            "cascadeRuns": [
                                {
                                    "day": "2026-11-20T00:00:00Z",
                                    "model": "GPT-4.1",
                                    "mode": "CONVERSATIONAL_PLANNER_MODE_DEFAULT",
                                    "messagesSent": "4",
                                    "cascadeId": "c-1",
                                    "promptsUsed": "150",
                                },
                                {"day": "2026-11-21", "messagesSent": "1", "cascadeId": "c-2"},
                            ]
                        }
                    }
                ]
            },
        },
    ),
)
register_sample("fullenrich", ProviderSample(good={"balance": {"balance": 1234.5}}))

# --------------------------------------------------------------------------- http_json and presets

register_sample(
    "http_json",
    ProviderSample(
        accounts=[
            {
                "provider_name": "acme",
                "request": {"url": "https://acme.example/quota"},
                "auth": {"type": "bearer"},
                "pools": {
                    "main": {"remaining": "r", "used": "u", "limit": "l", "scale": 0.01},
                    "rows": {
                        "for_each": "rows",
                        "name": "[0]",
                        "remaining": "[1]",
                        "optional": True,
                    },
                },
                "expiry": {"path": "exp", "format": "epoch_ms"},
                "cycle_start": {"path": "start", "optional": True},
                "cycle_end": {"path": "end", "format": "date", "optional": True},
            }
        ],
        good={
            "balance": {
                "r": "150",
                "u": 50,
                "l": 200,
                "rows": [["Email Credits", 7], ["SMS", "8.5"]],
                "exp": 1_798_761_600_000,
                "start": "2026-11-01T00:00:00+01:00",
                "end": "2027-01-01",
            }
        },
    ),
)
register_sample(
    "openrouter",
    ProviderSample(good={"balance": {"data": {"total_credits": 100.5, "total_usage": 25.75}}}),
)
register_sample(
    "deepl",
    ProviderSample(
        good={
            "balance": {
                "character_count": 180118,
                "character_limit": 1250000,
                "start_time": "2026-11-05T09:18:42Z",
                "end_time": "2026-12-05T09:18:42Z",
            }
        }
    ),
)
register_sample(
    "elevenlabs",
    ProviderSample(
        good={
            "balance": {
                "character_count": 17231,
                "character_limit": 100000,
                "next_character_count_reset_unix": 1738356858,
            }
        }
    ),
)
register_sample(
    "hunter",
    ProviderSample(
        good={
            "balance": {
                "data": {
                    "reset_date": "2026-12-09",
                    "requests": {
                        "credits": {"used": 15, "available": 1000},
                        "searches": {"used": 10, "available": 500},
                        "verifications": {"used": 5, "available": 1000},
                    },
                }
            }
        }
    ),
)
register_sample(
    "twilio",
    ProviderSample(
        accounts=[{"params": {"account_sid": "AC1"}}],
        good={"balance": {"account_sid": "AC1", "balance": "12.34", "currency": "USD"}},
    ),
)
register_sample(
    "deepseek",
    ProviderSample(
        good={
            "balance": {
                "is_available": True,
                "balance_infos": [
                    {"currency": "CNY", "total_balance": "110.00", "granted_balance": "10.00"},
                    {"currency": "USD", "total_balance": "1.00", "granted_balance": "0.00"},
                ],
            }
        }
    ),
)
register_sample(
    "serpapi",
    ProviderSample(
        good={
            "balance": {
                "api_key": "SECRET_API_KEY",
                "plan_renewal_date": "2026-12-17",
                "searches_per_month": 30000,
                "plan_searches_left": 5958,
                "extra_credits": 0,
                "total_searches_left": 5958,
                "this_month_usage": 24042,
            }
        }
    ),
)
register_sample(
    "telnyx",
    ProviderSample(
        good={
            "balance": {
                "data": {
                    "record_type": "balance",
                    "pending": "10.00",
                    "balance": "300.00",
                    "credit_limit": "100.00",
                    "available_credit": "400.00",
                    "currency": "USD",
                }
            }
        }
    ),
)
register_sample(
    "firecrawl",
    ProviderSample(
        good={
            "balance": {
                "success": True,
                "data": {
                    "remainingCredits": 1000,
                    "planCredits": 500000,
                    "billingPeriodStart": "2025-01-01T00:00:00Z",
                    "billingPeriodEnd": "2025-01-31T23:59:59Z",
                },
            }
        }
    ),
)
register_sample(
    "sendgrid",
    ProviderSample(
        good={
            "balance": {
                "remain": 200,
                "total": 200,
                "overage": 0,
                "used": 0,
                "last_reset": "2013-01-01",
                "next_reset": "2013-02-01",
                "reset_frequency": "monthly",
            }
        }
    ),
)
register_sample(
    "vonage",
    ProviderSample(
        accounts=[{"params": {"vonage_api_key": "abcd1234"}}],
        good={"balance": {"value": 10.28, "autoReload": False}},
    ),
)
register_sample(
    "plivo",
    ProviderSample(
        accounts=[{"params": {"auth_id": "MA2025RK4E639VJFZAGV"}}],
        good={"balance": {"auth_id": "MA2025RK4E639VJFZAGV", "cash_credits": "1.80900"}},
    ),
)
register_sample(
    "moonshot",
    ProviderSample(
        good={
            "balance": {
                "code": 0,
                "data": {
                    "available_balance": 49.58894,
                    "voucher_balance": 46.58893,
                    "cash_balance": 3.00001,
                },
                "scode": "0x0",
                "status": True,
            }
        }
    ),
)
register_sample("zerobounce", ProviderSample(good={"balance": {"Credits": 2375323}}))
register_sample("crustdata", ProviderSample(good={"balance": {"credits": 9406}}))
register_sample(
    "lusha",
    ProviderSample(
        good={"balance": {"credits": {"total": 10000, "used": 1500, "remaining": 8500}}}
    ),
)
register_sample("boldsign", ProviderSample(good={"balance": {"BalanceCredits": 100}}))
register_sample("dropcontact", ProviderSample(good={"balance": {"credits": 1250}}))
register_sample(
    "anticaptcha",
    ProviderSample(good={"balance": {"errorId": 0, "balance": 12.3456, "captchaCredits": 85000}}),
)
