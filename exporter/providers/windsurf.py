"""Windsurf (formerly Codeium): ``POST /GetTeamCreditBalance``, with ``prompt_usage``
``POST /UserPageAnalytics``, and with ``consumption`` ``POST /CascadeAnalytics``. The service key
travels in the JSON body, never in a header.

Pools: ``prompt`` (limit = promptCreditsPerSeat x numSeats; used and remaining only from the
analytics endpoint) and ``add_on`` (limit = addOnCreditsAvailable, used = addOnCreditsUsed,
remaining = limit - used). Both describe the current billing cycle only. With ``consumption``,
``team``: the team's credits as a whole, whose daily consumption CascadeAnalytics reports (its
``cascade_runs`` rows, ``promptsUsed`` in hundredths of a credit, summed per UTC day: nothing
says how it splits between the two pools), and whose remaining, used and limit are the sums of
the two pools' when both are known for the same billing cycle.

The API speaks protobuf JSON (Connect): a field at its zero value is left out and an int64 may be
written as a string. So an omitted numeric field is 0, a number written as a string is a number,
and a field that is present with another type (null included: the encoder never writes one) is
a ``bad_response``. An ``"error"`` that is empty is protobuf's empty string: no error.

Prompt usage is known only from an analytics answer that names its billing cycle
(``billingCycleStart``/``billingCycleEnd``), and it is combined with the balance's limit only
when both name the same cycle: right after a cycle reset the balance is on the new cycle while
analytics (refreshed every 3 hours upstream) still reports the old one. Otherwise used and
remaining are absent and the reading's notes say why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from ..accounts import TUNABLE, AccountBase, Interval, Strict
from ..http import AccountClient
from ..model import PoolValues, Reading, Reason
from .base import (
    Provider,
    bad,
    check_number,
    optional_timestamp,
    require_list,
    require_object,
)
from .daily import DailyHistory, bucket_day

_AUTH_MESSAGES = ("invalid service key", "insufficient permission", "unauthorized", "forbidden")
_RATE_MESSAGES = ("rate limit", "rate-limit", "ratelimit", "too many requests")
_BALANCE_FIELDS = ("promptCreditsPerSeat", "numSeats", "addOnCreditsAvailable", "addOnCreditsUsed")
_CYCLE_FIELDS = ("billingCycleStart", "billingCycleEnd")

NO_CYCLE_NOTE = (
    "prompt usage not reported: the UserPageAnalytics answer names no billing cycle "
    "(an older API version), so its usage cannot be tied to the balance's cycle"
)
TEAM_NO_PROMPT_USAGE_NOTE = (
    "team remaining not known, so no runway: the prompt pool's usage is only polled with "
    "prompt_usage: true"
)
TEAM_NO_CYCLE_NOTE = (
    "team remaining not known, so no runway: it needs the prompt pool's used and remaining "
    "for the balance's billing cycle"
)
#: Upstream refreshes analytics every 3 hours: polling CascadeAnalytics more often than this
#: costs requests and finds nothing new.
CONSUMPTION_MIN_INTERVAL = 1800.0
#: CascadeAnalytics' body cap unless the config sets max_response_size: it answers a row per
#: day, model, mode and conversation (about 200 bytes each) over the lookback, so a team of a
#: few hundred people passes 1 MiB within days. 32 MiB holds about 160,000 rows; reading one
#: such answer takes the body and, while it is parsed, about four times as much again.
CONSUMPTION_MAX_RESPONSE_SIZE = 32 * 1024 * 1024


class WindsurfConsumption(Strict):
    enabled: bool = True
    #: At least 7 days (the runway's window); at most 30, the longest window published (the
    #: docs state no largest range).
    lookback_days: int = Field(default=30, ge=7, le=30)
    min_interval: Interval = CONSUMPTION_MIN_INTERVAL


#: Every account without a ``consumption`` block shares this one (immutable): 10,000 accounts
#: would otherwise hold as many copies (~2 MB).
CONSUMPTION_OFF = WindsurfConsumption(enabled=False)


class WindsurfAccount(AccountBase):
    provider: Literal["windsurf"]
    prompt_usage: bool = False
    #: Off unless the account has a ``consumption`` block (its key needs "Teams Read-only").
    consumption: WindsurfConsumption = Field(default_factory=lambda: CONSUMPTION_OFF)

    def pool_names(self) -> tuple[str, ...]:
        return ("prompt", "add_on", *(("team",) if self.consumption.enabled else ()))

    def slowest_poll(self) -> tuple[str, float]:
        """``consumption`` is polled every ``interval``, but at most every ``min_interval``."""
        if self.consumption.enabled and self.consumption.min_interval > self.effective_interval:
            return "consumption.min_interval", self.consumption.min_interval
        return super().slowest_poll()

    def identity(self) -> str:
        """As for every account; ``consumption.min_interval`` only paces the polls, so a reload
        that changes it keeps the account's state too."""
        exclude: dict[str, Any] = dict.fromkeys(TUNABLE, True)
        exclude["consumption"] = {"min_interval"}
        return self.model_dump_json(exclude=exclude)


def error_text(data: Any) -> str | None:
    """The ``error`` of a body, if it says anything (protobuf writes no error as ``""``)."""
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, str) and err.strip():
            return err
    return None


def error_message(data: Any) -> str | None:
    return error_text(data)


def classify(status: int, data: Any) -> Reason | None:
    """Windsurf does not document its auth or rate-limit status codes: trust the error text."""
    text = error_text(data)
    if text is None:
        return None
    lowered = text.lower()
    if any(m in lowered for m in _AUTH_MESSAGES):
        return Reason.AUTH
    if any(m in lowered for m in _RATE_MESSAGES):
        return Reason.RATE_LIMITED
    # An error on a 2xx is still an error.
    return Reason.BAD_RESPONSE if status < 400 else None


def proto_number(obj: Mapping[str, Any], key: str, where: str = "") -> float:
    """A protobuf-JSON numeric field: left out means 0; a number or a number as a string."""
    if key not in obj:
        return 0.0
    return check_number(obj[key], f"{where}{key}", strings=True)


def cascade_runs_query(now: datetime, lookback_days: int) -> dict[str, Any]:
    """The rest of a CascadeAnalytics request body: the ``cascade_runs`` data source for the
    whole team (no ``group_name``, ``emails`` or ``ide_types``: the balance is the team's),
    from midnight UTC ``lookback_days - 1`` days ago until ``now``."""
    first = now.date() - timedelta(days=lookback_days - 1)
    return {
        "start_timestamp": f"{first.isoformat()}T00:00:00Z",
        "end_timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "query_requests": [{"cascade_runs": {}}],
    }


def cascade_runs(data: Any) -> list[Any]:
    """The rows of the one ``cascade_runs`` result. An empty result (``{}``, or
    ``{"cascadeRuns": {}}``) is protobuf's way of writing no rows; a result of another data
    source, or other than one result for the one query, is not an answer to it."""
    obj = require_object(data)
    if "queryResults" not in obj:
        raise bad("queryResults is missing (one result per query request expected)")
    results = require_list(obj["queryResults"], "queryResults")
    if len(results) != 1:
        raise bad(f"queryResults should hold 1 result (one query was sent), got {len(results)}")
    result = require_object(results[0], "queryResults[0]")
    if "cascadeRuns" not in result:
        if result:
            raise bad(f"queryResults[0] answers another query ({', '.join(sorted(result))})")
        return []
    runs = require_object(result["cascadeRuns"], "queryResults[0].cascadeRuns")
    if "cascadeRuns" not in runs:
        return []
    return require_list(runs["cascadeRuns"], "queryResults[0].cascadeRuns.cascadeRuns")


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _cycle(reading: Reading) -> tuple[float, float] | None:
    start, end = reading.cycle_start_timestamp, reading.cycle_end_timestamp
    return None if start is None or end is None else (start, end)


def _same_cycle(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) < 1 and abs(a[1] - b[1]) < 1


def _describe(cycle: tuple[float, float] | None) -> str:
    if cycle is None:
        return "names no billing cycle"
    start, end = (datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in cycle)
    return f"is on the cycle {start} to {end}"


class Windsurf(Provider):
    name = "windsurf"
    default_base_url = "https://server.codeium.com/api/v1"

    account: WindsurfAccount

    @property
    def endpoints(self) -> tuple[str, ...]:
        return (
            "balance",
            *(("user_analytics",) if self.account.prompt_usage else ()),
            *(("consumption",) if self.account.consumption.enabled else ()),
        )

    def default_max_response_size(self, endpoint: str) -> int:
        if endpoint == "consumption":
            return CONSUMPTION_MAX_RESPONSE_SIZE
        return super().default_max_response_size(endpoint)

    def poll_interval(self, endpoint: str) -> float:
        interval = self.account.effective_interval
        if endpoint == "consumption":
            return max(interval, self.account.consumption.min_interval)
        return interval

    async def fetch(self, endpoint: str, client: AccountClient) -> Reading:
        body: dict[str, Any] = {"service_key": self.credential(self.account).value}
        now = datetime.now(UTC)
        if endpoint == "consumption":
            path = "CascadeAnalytics"
            body |= cascade_runs_query(now, self.account.consumption.lookback_days)
        else:
            path = "GetTeamCreditBalance" if endpoint == "balance" else "UserPageAnalytics"
        resp = await client.request_json(
            "POST",
            f"{self.base_url}/{path}",
            json_body=body,
            error_message=error_message,
            classify=classify,
        )
        if endpoint == "balance":
            return self.parse_balance(resp.data)
        if endpoint == "consumption":
            return self.parse_consumption(resp.data, now)
        return self.parse_analytics(resp.data)

    @staticmethod
    def parse_balance(data: Any) -> Reading:
        obj = require_object(data)
        if not any(key in obj for key in (*_BALANCE_FIELDS, *_CYCLE_FIELDS)):
            # Zero values may be left out, but not all of them and the cycle too: that is not
            # a balance (e.g. an empty object from a proxy).
            raise bad(f"none of the balance fields is in the answer ({', '.join(_BALANCE_FIELDS)})")
        per_seat, seats, add_on_limit, add_on_used = (proto_number(obj, k) for k in _BALANCE_FIELDS)
        return Reading(
            pools={
                "prompt": PoolValues(limit=per_seat * seats),
                "add_on": PoolValues(
                    limit=add_on_limit, used=add_on_used, remaining=add_on_limit - add_on_used
                ),
            },
            seats=seats,
            cycle_start_timestamp=optional_timestamp(obj, "billingCycleStart"),
            cycle_end_timestamp=optional_timestamp(obj, "billingCycleEnd"),
        )

    @staticmethod
    def parse_analytics(data: Any) -> Reading:
        obj = require_object(data)
        # An empty repeated field is left out; null or any other type is wrong.
        users = (
            require_list(obj["userTableStats"], "userTableStats") if "userTableStats" in obj else []
        )
        rows = [require_object(user, f"userTableStats[{i}]") for i, user in enumerate(users)]
        start = optional_timestamp(obj, "billingCycleStart")
        end = optional_timestamp(obj, "billingCycleEnd")
        if start is None or end is None:
            return Reading(
                pools={"prompt": PoolValues()},
                cycle_start_timestamp=start,
                cycle_end_timestamp=end,
                notes={"prompt": NO_CYCLE_NOTE},
            )
        used = sum(
            proto_number(row, "promptCreditsUsed", f"userTableStats[{i}].")
            for i, row in enumerate(rows)
        )
        return Reading(
            pools={"prompt": PoolValues(used=used)},
            cycle_start_timestamp=start,
            cycle_end_timestamp=end,
        )

    def parse_consumption(self, data: Any, now: datetime) -> Reading:
        """``cascade_runs`` rows (one per day, model, mode and conversation) -> the ``team``
        pool's credits per UTC day (the sum of ``promptsUsed``, in hundredths of a credit) over
        the lookback, and its windows. A row's ``day`` is read by
        :func:`~exporter.providers.daily.bucket_day` in UTC."""
        cents: dict[date, float] = {}
        for i, item in enumerate(cascade_runs(data)):
            where = f"queryResults[0].cascadeRuns.cascadeRuns[{i}]"
            row = require_object(item, where)
            if "day" not in row:
                raise bad(f"{where}.day is missing")
            day = bucket_day(row["day"], UTC, f"{where}.day")
            cents[day] = cents.get(day, 0.0) + proto_number(row, "promptsUsed", f"{where}.")
        history = DailyHistory(("team",), now.date(), self.account.consumption.lookback_days)
        for day, total in cents.items():
            history.add(day, {"team": total / 100})
        return history.reading("UTC")

    def derive(self, merged: Reading, readings: Mapping[str, Reading]) -> Reading:
        """The prompt pool's remaining (:meth:`_prompt`), then the team's (:meth:`_team`)."""
        return self._team(self._prompt(merged, readings))

    def _team(self, merged: Reading) -> Reading:
        """With consumption: the team's remaining, used and limit, the sums of the prompt and
        add-on pools', when both are known (the prompt pool's only for the balance's billing
        cycle); otherwise the team pool has its consumption alone and a note says why."""
        if not self.account.consumption.enabled:
            return merged
        prompt, add_on = merged.pools.get("prompt"), merged.pools.get("add_on")
        if prompt is None or add_on is None or _sum(prompt.remaining, add_on.remaining) is None:
            if "team" not in merged.pools:
                return merged
            why = TEAM_NO_CYCLE_NOTE if self.account.prompt_usage else TEAM_NO_PROMPT_USAGE_NOTE
            return dataclasses.replace(merged, notes={**merged.notes, "team": why})
        team = PoolValues(
            remaining=_sum(prompt.remaining, add_on.remaining),
            used=_sum(prompt.used, add_on.used),
            limit=_sum(prompt.limit, add_on.limit),
        )
        return dataclasses.replace(merged, pools={**merged.pools, "team": team})

    def _prompt(self, merged: Reading, readings: Mapping[str, Reading]) -> Reading:
        """Prompt remaining = limit - used, when the balance and the analytics name the same
        billing cycle; with another cycle on either side, only the balance's limit stays."""
        balance, analytics = readings.get("balance"), readings.get("user_analytics")
        prompt = merged.pools.get("prompt")
        if balance is None or analytics is None or prompt is None:
            return merged  # one endpoint's values alone
        if prompt.limit is None or prompt.used is None:
            return merged
        balance_cycle, analytics_cycle = _cycle(balance), _cycle(analytics)
        pools = dict(merged.pools)
        if balance_cycle and analytics_cycle and _same_cycle(balance_cycle, analytics_cycle):
            pools["prompt"] = PoolValues(
                limit=prompt.limit, used=prompt.used, remaining=prompt.limit - prompt.used
            )
            return dataclasses.replace(merged, pools=pools)
        pools["prompt"] = PoolValues(limit=prompt.limit)
        note = (
            f"prompt usage withheld until analytics reaches the balance's billing cycle: the "
            f"balance {_describe(balance_cycle)}, analytics {_describe(analytics_cycle)} "
            "(analytics is refreshed about every 3 hours)"
        )
        return dataclasses.replace(merged, pools=pools, notes={**merged.notes, "prompt": note})
