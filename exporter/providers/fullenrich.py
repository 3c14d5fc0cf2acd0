"""FullEnrich: ``GET /account/credits`` -> pool ``workspace`` remaining (fractional and negative
values kept).

The public API has no usage, limit or expiry: those series are absent, never 0.
"""

from __future__ import annotations

from typing import Any, Literal

from ..accounts import AccountBase
from ..credentials import Credential, bearer
from ..http import AccountClient
from ..model import PoolValues, Reading
from .base import Provider, require_number, require_object

POOL = "workspace"


class FullEnrichAccount(AccountBase):
    provider: Literal["fullenrich"]

    def pool_names(self) -> tuple[str, ...]:
        return (POOL,)


def error_message(data: Any) -> str | None:
    msg = data["message"]
    return str(msg) if msg is not None else None


class FullEnrich(Provider):
    name = "fullenrich"
    default_base_url = "https://app.fullenrich.com/api/v2"
    default_rate_limit = 1.0  # documented: 60 requests/minute per workspace

    account: FullEnrichAccount

    @classmethod
    def credential(cls, account: AccountBase) -> Credential:
        return bearer(account.secret)

    @property
    def endpoints(self) -> tuple[str, ...]:
        return ("balance",)

    async def fetch(self, endpoint: str, client: AccountClient) -> Reading:
        resp = await client.request_json(
            "GET",
            f"{self.base_url}/account/credits",
            headers={"Authorization": self.credential(self.account).value},
            error_message=error_message,
        )
        return self.parse_balance(resp.data)

    @staticmethod
    def parse_balance(data: Any) -> Reading:
        obj = require_object(data)
        # A negative balance (use beyond it, or a refund taken back) is published as is.
        balance = require_number(obj, "balance", allow_negative=True)
        return Reading(pools={POOL: PoolValues(remaining=balance)})
