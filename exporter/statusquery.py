"""The filters and paging of the status page and ``/api/status``: parsed from the query string,
checked, and turned back into links.

``state`` (failing, stale, never_polled, low, ok: the page's State column) and ``provider``
may be given several times or comma-separated; ``account`` matches names containing it (case
ignored); ``page`` counts from 1, and a page past the last is the last (:meth:`Query.clamped`);
``per_page`` is 1 to :data:`MAX_PER_PAGE` (the page shows :data:`PAGE_PER_PAGE` by default,
``/api/status`` every matching account, on one page). ``history=1`` adds the pools' sparkline
history to ``/api/status`` (left out by default: it is most of the JSON).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from .statuspage import SEVERITY_RANK

PAGE_PER_PAGE = 100
PER_PAGE_CHOICES = (25, 100, 500, 1000)
MAX_PER_PAGE = 1000
MAX_ACCOUNT_FILTER = 200


class QueryError(ValueError):
    """A filter or paging parameter that cannot be used; the message names it."""


#: Queries of at most this many state and provider values, and this many characters of
#: provider and account filter, have their key remembered (1,024 of them): a remembered query
#: is kept whole, and a query string may name thousands of providers, or long ones.
KEY_CACHE_VALUES = 8
KEY_CACHE_CHARS = 256


@dataclass(frozen=True, slots=True)
class Query:
    states: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    account: str = ""
    page: int = 1
    #: None: every matching account (``/api/status`` without ``per_page``).
    per_page: int | None = PAGE_PER_PAGE
    #: ``/api/status`` with each pool's ``history``.
    history: bool = False

    @property
    def filtered(self) -> bool:
        return bool(self.states or self.providers or self.account)

    def key(self) -> str:
        """The same string for the same view, whatever order the parameters came in."""
        if (
            len(self.states) + len(self.providers) <= KEY_CACHE_VALUES
            and sum(map(len, self.providers)) + len(self.account) <= KEY_CACHE_CHARS
        ):
            return _key(self)  # remembered: small, and what people and scripts ask for
        return self.query_string(every=True)  # a query that long is not kept

    def query_string(self, *, every: bool = False, default_per_page: int | None = None) -> str:
        pairs: list[tuple[str, Any]] = [("state", s) for s in self.states]
        pairs += [("provider", p) for p in self.providers]
        if self.account:
            pairs.append(("account", self.account))
        if every or self.per_page != default_per_page:
            pairs.append(("per_page", "all" if self.per_page is None else self.per_page))
        if every or self.page != 1:
            pairs.append(("page", self.page))
        if self.history:
            pairs.append(("history", 1))
        return urlencode(pairs)

    def href(self, default_per_page: int | None = PAGE_PER_PAGE, **changes: Any) -> str:
        """A relative link (``?…``) to this view with ``changes``, so that the page works under
        any path prefix."""
        return "?" + replace(self, **changes).query_string(default_per_page=default_per_page)

    def pages(self, total: int) -> int:
        if self.per_page is None:
            return 1
        return max(1, -(-total // self.per_page))

    def clamped(self, total: int) -> Query:
        """This view among ``total`` matching accounts: a page past the last is the last (and
        without ``per_page``, every account is on page 1)."""
        return replace(self, page=min(self.page, self.pages(total)))

    def window(self, total: int) -> tuple[int, int]:
        """The [start, end) indexes of this page among ``total`` matching accounts."""
        if self.per_page is None:
            return 0, total
        start = min((self.page - 1) * self.per_page, total)
        return start, min(start + self.per_page, total)


def _values(params: Mapping[str, str] | Any, name: str) -> list[str]:
    raw: Sequence[str] = params.getall(name, []) if hasattr(params, "getall") else []
    if not raw and name in params:
        raw = [params[name]]
    return [v.strip() for item in raw for v in item.split(",") if v.strip()]


def _positive(text: str, name: str, most: int) -> int:
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise QueryError(f"{name}: expected a whole number from 1 to {most:,}, got {text!r}")
    return int(text)


def parse_query(
    params: Mapping[str, str] | Any, *, default_per_page: int | None, history: bool = False
) -> Query:
    """A :class:`Query` from a request's query parameters (an aiohttp ``MultiDict``, or any
    mapping); ``history``: the view may include the pools' history (``/api/status``). Unknown
    parameters are ignored, as browsers and proxies add their own; a bad value raises
    :class:`QueryError`."""
    states = tuple(dict.fromkeys(_values(params, "state")))
    for s in states:
        if s not in SEVERITY_RANK:
            raise QueryError(
                f"state: unknown state {s!r} (expected one of {', '.join(SEVERITY_RANK)})"
            )
    providers = tuple(dict.fromkeys(_values(params, "provider")))
    account = " ".join(str(params.get("account", "")).split())
    if len(account) > MAX_ACCOUNT_FILTER:
        raise QueryError(f"account: at most {MAX_ACCOUNT_FILTER} characters")
    per_page_text = str(params.get("per_page", "")).strip()
    if not per_page_text:
        per_page = default_per_page
    elif per_page_text == "all" and default_per_page is None:
        per_page = None
    else:
        per_page = _positive(per_page_text, "per_page", MAX_PER_PAGE)
    page_text = str(params.get("page", "")).strip()
    page = _positive(page_text, "page", 10**9) if page_text else 1
    with_history = False
    if history:
        flag = str(params.get("history", "")).strip().lower()
        if flag not in _FLAGS:
            raise QueryError(f"history: expected 1 or 0 (true or false), got {flag!r}")
        with_history = _FLAGS[flag]
    return Query(states, providers, account, page, per_page, with_history)


_FLAGS = {"": False, "0": False, "false": False, "1": True, "true": True}


@functools.lru_cache(maxsize=1024)
def _key(query: Query) -> str:
    # Remembered: every request for a view asks for its key (its ETag, the kept views), and
    # urlencode was most of the time of serving a ready-made view.
    return query.query_string(every=True)
