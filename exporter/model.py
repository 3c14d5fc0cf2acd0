"""The vocabulary providers hand to the store and the collector reads.

A provider's ``fetch`` returns a :class:`Reading` or raises :class:`PollError`. A reading holds
only what the API said: a value the API did not give is ``None`` (absent), never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .redaction import MAX_MESSAGE, clean


class Reason(StrEnum):
    """Why a poll failed: the ``reason`` label of the poll errors counter
    (:data:`exporter.catalogue.ERRORS`)."""

    AUTH = "auth"
    PAYMENT_REQUIRED = "payment_required"
    RATE_LIMITED = "rate_limited"
    CLIENT_ERROR = "client_error"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    BAD_RESPONSE = "bad_response"
    INTERNAL = "internal"  # a fault in the exporter's own code, never the provider's


def reason_for_status(status: int) -> Reason:
    """The reason an HTTP error status is counted under (docs/metrics.md lists the reasons):
    401/403 ``auth``, 402 ``payment_required``, 429 ``rate_limited``, other 4xx ``client_error``,
    5xx ``server_error``; anything else that is not a success is ``bad_response``."""
    if status in (401, 403):
        return Reason.AUTH
    if status == 402:
        return Reason.PAYMENT_REQUIRED
    if status == 429:
        return Reason.RATE_LIMITED
    if 400 <= status < 500:
        return Reason.CLIENT_ERROR
    if status >= 500:
        return Reason.SERVER_ERROR
    # 1xx/3xx that reached us (redirects are not followed) are not a usable answer.
    return Reason.BAD_RESPONSE


class PollError(Exception):
    """A classified poll failure. ``message`` never carries a raw body, and once
    :meth:`redacted` with the account's key, no part of the key either."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        provider_text: bool = False,
    ) -> None:
        # One line, always, with each quote of the response cut short: messages end up in log
        # lines and on the status page.
        self.message = clean(message)
        super().__init__(f"{reason.value}: {self.message}")
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        #: The message carries the provider's own error text (from its response body): fit for
        #: the log, not for a page anyone who reaches the exporter may read.
        self.provider_text = provider_text
        # What the message quotes, uncut, until the key is known (see redacted()).
        self._quoting = message if self.message != message else None

    def redacted(self, *secrets: str) -> PollError:
        """This error fit to keep and show: ``secrets`` (every form of the account's key on the
        wire, :attr:`exporter.credentials.Credential.forms`; each whole or any run of 8 or more
        of its characters, in any case) out of the message before any quote is cut, the
        message cut to :data:`~exporter.redaction.MAX_MESSAGE` characters. A detached copy: no
        traceback keeps the failed call's frames (and its response) alive."""
        text = clean(self._quoting or self.message, secrets, MAX_MESSAGE)
        return PollError(
            self.reason,
            text,
            status=self.status,
            retry_after=self.retry_after,
            provider_text=self.provider_text,
        )


@dataclass(frozen=True, slots=True)
class PoolValues:
    """One pool's values from one endpoint; ``None`` means the endpoint did not say."""

    remaining: float | None = None
    used: float | None = None
    limit: float | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """What one successful poll of one endpoint said.

    ``daily_consumption`` maps pool -> {day key (ISO date of the provider's bucket) -> credits
    consumed that day}: the raw history the store turns into its consumed-credits counters. It
    holds every day the provider was asked about, 0 for a day its answer did not list.
    ``consumption`` maps pool -> {window ("1d", "7d", "30d") -> credits consumed}.
    ``notes`` maps a pool (or a topic such as ``consumption``) to why the reading leaves a
    value out or ignored part of the answer: logged once when it appears, shown on the status
    page. The text must stay the same from poll to poll while the cause lasts.
    """

    pools: Mapping[str, PoolValues] = field(default_factory=dict)
    expiry_timestamp: float | None = None
    cycle_start_timestamp: float | None = None
    cycle_end_timestamp: float | None = None
    seats: float | None = None
    consumption: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    daily_consumption: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)
