"""The demo's accounts: their simulated starting state (a month of history, daily burn) and the
exporter config entries that poll them (``credits-exporter demo``, the docs' screenshot)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from .clock import DAY, add_months, iso_z, utc_midnight


def demo_states(now: float) -> dict[str, tuple[str, dict[str, Any]]]:
    """Realistic starting state for the demo accounts, with history and burn."""
    rng = random.Random(20261120)
    today = datetime.fromtimestamp(now, UTC).date()
    day_fraction = (now - utc_midnight(today)) / DAY

    def history(api_rate: float, ui_rate: float) -> dict[str, dict[str, int]]:
        days: dict[str, dict[str, int]] = {}
        for back in range(1, 31):
            day = today - timedelta(days=back)
            weekday = 1.0 if day.weekday() < 5 else 0.35
            days[day.isoformat()] = {
                "api": int(api_rate * weekday * rng.uniform(0.7, 1.3)),
                "ui": int(ui_rate * weekday * rng.uniform(0.5, 1.5)),
            }
        days[today.isoformat()] = {
            "api": int(api_rate * day_fraction),
            "ui": int(ui_rate * day_fraction),
        }
        return days

    cycle_start = datetime(today.year, today.month, 1, tzinfo=UTC)
    names = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov"]
    names += ["Ken Thompson"]
    users = [
        {
            "name": name,
            "email": name.split()[0].lower() + "@example.com",
            "promptCreditsUsed": rng.randint(80, 1400),
            "activeDays": rng.randint(3, 20),
            "teamStatus": "USER_TEAM_STATUS_APPROVED",
        }
        for name in names
    ]
    # The engineering team's Cascade use (prompt and add-on credits alike, as CascadeAnalytics
    # reports it) over the last 30 days; what fell in this billing cycle is its usage so far.
    cascade_rng = random.Random(20261121)
    cascade: dict[str, float] = {}
    for back in range(30, 0, -1):
        day = today - timedelta(days=back)
        weekday = 1.0 if day.weekday() < 5 else 0.3
        cascade[day.isoformat()] = round(470 * weekday * cascade_rng.uniform(0.7, 1.3), 2)
    cascade[today.isoformat()] = round(470 * day_fraction, 2)
    spent = int(sum(v for d, v in cascade.items() if d >= cycle_start.date().isoformat()))
    prompt_spent = min(12_500, spent * 350 // 470)
    weights = [cascade_rng.uniform(0.2, 1.0) for _ in names]
    shares = [int(prompt_spent * w / sum(weights)) for w in weights]
    engineers = [{**u, "promptCreditsUsed": n} for u, n in zip(users, shares, strict=True)]
    return {
        "demo-theirstack-growth": (
            "theirstack",
            {
                "api_credits": 48_200,
                "ui_credits": 1_150,
                "used_api_credits": 11_800,
                "used_ui_credits": 350,
                "burn_api_per_day": 1_800.0,
                "burn_ui_per_day": 40.0,
                "consumption_days": history(1_800, 40),
            },
        ),
        "demo-theirstack-research": (
            "theirstack",
            {
                "api_credits": 3_400,
                "ui_credits": 90,
                "used_api_credits": 6_600,
                "used_ui_credits": 110,
                "earliest_expiration": iso_z(now + 20 * DAY),
                "burn_api_per_day": 260.0,
                "burn_ui_per_day": 6.0,
                "consumption_days": history(260, 6),
            },
        ),
        "demo-windsurf-engineering": (
            "windsurf",
            {
                "prompt_credits_per_seat": 500,
                "num_seats": 25,
                "add_on_credits_available": 10_000,
                "add_on_credits_used": spent - sum(shares),
                "billing_cycle_start": iso_z(cycle_start.timestamp()),
                "billing_cycle_end": iso_z(add_months(cycle_start, 1).timestamp()),
                "users": engineers,
                "burn_prompt_per_day": 350.0,
                "burn_add_on_per_day": 120.0,
                "cascade_days": cascade,
            },
        ),
        "demo-windsurf-design": (
            "windsurf",
            {
                # No add-on credits ever bought: protobuf JSON leaves both fields out.
                "prompt_credits_per_seat": 500,
                "num_seats": 4,
                "billing_cycle_start": iso_z(cycle_start.timestamp()),
                "billing_cycle_end": iso_z(add_months(cycle_start, 1).timestamp()),
                "users": [{**u, "promptCreditsUsed": rng.randint(40, 300)} for u in users[:4]],
                "numbers_as_strings": True,
                "burn_prompt_per_day": 40.0,
            },
        ),
        "demo-fullenrich-sales": (
            "fullenrich",
            {"balance": 4_821.5, "burn_per_day": 95.25},
        ),
        "demo-serpapi-search": (
            "serpapi",
            {
                "searches_per_month": 15_000,
                "this_month_usage": min(14_000, int(420 * (today.day - 1 + day_fraction))),
                "extra_credits": 2_500,
                "plan_renewal_date": add_months(cycle_start, 1).date().isoformat(),
                "burn_searches_per_day": 420.0,
            },
        ),
        "demo-telnyx-voip": (
            "telnyx",
            {"balance": 182.4, "credit_limit": 100.0, "pending": 3.2, "burn_per_day": 14.5},
        ),
    }


DEMO_ACCOUNTS: list[dict[str, Any]] = [
    {
        "name": "growth",
        "provider": "theirstack",
        "api_key": "demo-theirstack-growth",
        "low_credit_threshold": {"api": 5_000, "ui": 100},
    },
    {
        "name": "research",
        "provider": "theirstack",
        "api_key": "demo-theirstack-research",
        "low_credit_threshold": {"api": 1_000, "ui": 50},
        "consumption": {"timezone": "Europe/Madrid"},
    },
    {
        "name": "engineering",
        "provider": "windsurf",
        "api_key": "demo-windsurf-engineering",
        "prompt_usage": True,
        "consumption": {"lookback_days": 30},
        "low_credit_threshold": {"prompt": 2_000, "add_on": 1_000, "team": 3_000},
    },
    {
        "name": "design",
        "provider": "windsurf",
        "api_key": "demo-windsurf-design",
        "prompt_usage": True,
        "low_credit_threshold": {"prompt": 200},
    },
    {
        "name": "sales",
        "provider": "fullenrich",
        "api_key": "demo-fullenrich-sales",
        "low_credit_threshold": 500,
    },
    {
        "name": "search",
        "provider": "serpapi",
        "api_key": "demo-serpapi-search",
        "low_credit_threshold": {"searches": 2_000},
    },
    {
        "name": "voip",
        "provider": "telnyx",
        "api_key": "demo-telnyx-voip",
        "low_credit_threshold": {"usd": 50},
    },
]
"""Exporter config account entries for the demo accounts (the caller adds ``base_url``)."""
