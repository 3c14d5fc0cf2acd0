"""The http_json provider: one call as the account describes it, the answer read strictly."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any
from urllib.parse import urlsplit

from ...accounts import AccountBase
from ...credentials import Credential, basic, bearer, plain, scheme
from ...http import AccountClient
from ...model import PoolValues, Reading
from ..base import ABSURD, Provider, bad, json_type
from .account import HttpJsonAccount
from .paths import MissingPath, join_path, resolve
from .spec import PoolSpec, Sentinel, TimeField, ValueField
from .templates import absolute, render, render_json, url_encode
from .values import body_error, error_message_reader, pool_name, read_number, read_timestamp

MAX_POOLS = 50
"""More pools than this from one response is a bad response (a label-cardinality guard)."""
NO_REMAINING_NOTE = (
    "remaining not in the answer ({path}): none is published for this pool, so CreditsLow "
    "and CreditsExhausted cannot fire for it"
)
"""The note of a pool whose optional ``remaining`` the answer left out (Hunter's older plans)."""


@dataclass(frozen=True, slots=True)
class _Request:
    """One call, key included: the fields that can hold it stay out of ``repr``."""

    method: str
    url: str
    headers: Mapping[str, str] = dc_field(repr=False)
    params: Mapping[str, str] | None = dc_field(repr=False)
    body: Any = dc_field(repr=False)


class HttpJson(Provider):
    name = "http_json"
    default_base_url = ""

    account: HttpJsonAccount

    def __init__(self, account: HttpJsonAccount) -> None:
        self.account = account
        params = account.params
        base = account.base_url or ""
        secret = account.secret
        for suffix in sorted(account.base_url_if_key_suffix, key=len, reverse=True):
            if secret.endswith(suffix):
                base = account.base_url_if_key_suffix[suffix]
                break
        self.base_url = render(base, params, url_encode).rstrip("/")
        url = render(account.request.url, params, url_encode)
        if not absolute(url):
            url = f"{self.base_url}/{url.lstrip('/')}"
        #: The URL polled. Never holds the key: query-string auth is sent as a parameter.
        self.url = url
        host = (urlsplit(url).hostname or "").lower()
        #: Each pool rule's unit for the host polled.
        self._pool_units = {
            key: spec.unit_by_host.get(host, spec.unit) for key, spec in account.pools.items()
        }
        self._static_units: dict[str, str] = {
            key: unit
            for key, unit in self._pool_units.items()
            if unit is not None and account.pools[key].name is None
        }
        #: Units of the pools of the last good answer (pools named by it included).
        self._units = dict(self._static_units)
        #: Reads the API's own error text out of an error body.
        self.error_message = error_message_reader(account.error_message)
        #: Every form of the key on the wire: a pool name holding one is refused.
        self._secrets = self.credential(account).forms
        #: The call to make, built once: key included, so never log or show it.
        self.request = self._build_request()

    @classmethod
    def credential(cls, account: AccountBase) -> Credential:
        """The key as the account's ``auth`` sends it."""
        assert isinstance(account, HttpJsonAccount)
        auth, key = account.auth, account.secret
        if auth.type == "bearer":
            return bearer(key)
        if auth.type == "header" and auth.scheme:
            return scheme(auth.scheme, key)
        if auth.type == "basic":
            assert auth.username is not None
            return basic(render(auth.username, account.params), key)
        return plain(key)  # a header of its own, a query parameter, a JSON body's string

    @classmethod
    def documented_rate(cls, account: AccountBase) -> float | None:
        return account.documented_rate_limit if isinstance(account, HttpJsonAccount) else None

    @property
    def label(self) -> str:
        return self.account.provider_name

    @property
    def endpoints(self) -> tuple[str, ...]:
        return (self.account.endpoint,)

    def units(self) -> Mapping[str, str]:
        return dict(self._units)

    def _build_request(self) -> _Request:
        account = self.account
        secret = self.credential(account).value
        params = account.params
        headers = {k: render(v, params) for k, v in account.request.headers.items()}
        body = render_json(account.request.body, params) if account.request.body else None
        query: dict[str, str] | None = None
        auth = account.auth
        if auth.type in ("bearer", "basic"):
            headers["Authorization"] = secret
        elif auth.type == "header":
            assert auth.name is not None
            headers[auth.name] = secret
        elif auth.type == "query":
            assert auth.name is not None
            query = {auth.name: secret}
        else:
            assert auth.field is not None
            body = body if isinstance(body, dict) else {}
            node = body
            *parents, last = auth.field.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = secret
        if account.request.method == "POST" and body is None:
            body = {}
        return _Request(account.request.method, self.url, headers, query, body)

    async def fetch(self, endpoint: str, client: AccountClient) -> Reading:
        req = self.request
        resp = await client.request_json(
            req.method,
            req.url,
            headers=req.headers,
            params=req.params,
            json_body=req.body,
            error_message=self.error_message,
        )
        return self.parse(resp.data)

    # -- parsing (pure but for remembering the units of the pools of the last good answer)

    def parse(self, data: Any) -> Reading:
        """Read a response into a Reading; ``PollError(BAD_RESPONSE)`` naming the path on any
        missing or mistyped value, and the error an ``error_when`` rule finds in it."""
        error = body_error(data, self.account.error_when)
        if error is not None:
            raise error
        pools: dict[str, PoolValues] = {}
        units: dict[str, str] = {}
        notes: dict[str, str] = {}
        skipped: list[str] = []
        for key, spec in self.account.pools.items():
            for name, values, left_out in self._read_pools(data, key, spec, skipped):
                if name in pools:
                    raise bad(f'two pools are named "{name}" (pools.{key})')
                if len(pools) >= MAX_POOLS:
                    raise bad(f"more than {MAX_POOLS} pools in one response")
                pools[name] = values
                if left_out is not None:
                    notes[name] = NO_REMAINING_NOTE.format(path=left_out)
                unit = self._pool_units[key]
                if unit is not None:
                    units[name] = name if unit == "{pool}" else unit
        if not pools and skipped:
            # Optional pools tolerate plans that lack a meter, not an answer that lacks them all.
            raise bad(f"none of the pools is in the response ({skipped[0]})")
        account = self.account
        reading = Reading(
            pools=pools,
            expiry_timestamp=self._time(data, account.expiry),
            cycle_start_timestamp=self._time(data, account.cycle_start),
            cycle_end_timestamp=self._time(data, account.cycle_end),
            notes=notes,
        )
        self._units = {**self._static_units, **units}
        return reading

    def _read_pools(
        self, data: Any, key: str, spec: PoolSpec, skipped: list[str]
    ) -> Iterator[tuple[str, PoolValues, str | None]]:
        """Each pool the rule finds: its name, its values, and the path of its optional
        ``remaining`` when the answer left it out (None: read, or not declared)."""
        if spec.for_each is None:
            try:
                name = key
                if spec.name is not None:
                    raw = _not_null(resolve(data, spec.name), spec.name, spec)
                    name = pool_name(raw, spec.name, self._secrets)
                values, left_out = self._values(data, spec, "")
            except MissingPath as exc:
                if spec.optional:
                    skipped.append(exc.message)
                    return
                raise
            yield name, values, left_out
            return
        try:
            items = resolve(data, spec.for_each)
        except MissingPath as exc:
            if spec.optional:
                skipped.append(exc.message)
                return
            raise
        if not isinstance(items, list):
            raise bad(f"{spec.for_each} should be an array, got {json_type(items)}")
        assert spec.name is not None
        for i, item in enumerate(items):
            where = f"{spec.for_each}[{i}]" if spec.for_each != "$" else f"[{i}]"
            try:
                shown = join_path(where, spec.name)
                raw = _not_null(resolve(item, spec.name, where), shown, spec)
                name = pool_name(raw, shown, self._secrets)
                values, left_out = self._values(item, spec, where)
            except MissingPath:
                if spec.optional:
                    continue
                raise
            yield name, values, left_out

    @staticmethod
    def _values(data: Any, spec: PoolSpec, where: str) -> tuple[PoolValues, str | None]:
        """The pool's values, and the path of its optional ``remaining`` if the answer left
        it out."""
        left_out: list[str] = []

        def number(ref: ValueField | None, sentinels: tuple[Sentinel, ...]) -> float | None:
            if ref is None:
                return None
            shown = join_path(where, ref.path)
            try:
                raw = resolve(data, ref.path, where)
            except MissingPath:
                if ref.optional:
                    left_out.append(shown)
                    return None
                raise
            if None not in sentinels:
                _not_null(raw, shown, spec)
            value = read_number(raw, shown, sentinels=sentinels, allow_negative=spec.allow_negative)
            if value is None:
                return None
            scaled = value * spec.scale
            if not math.isfinite(scaled) or abs(scaled) > ABSURD:
                raise bad(f"{shown} times scale is not a plausible number")
            return scaled

        remaining = number(spec.remaining, spec.unlimited)
        gone = left_out[0] if left_out else None  # only remaining was read so far
        used = number(spec.used, ())
        limit = number(spec.limit, spec.unlimited)
        if spec.remaining is None and limit is not None and used is not None:
            remaining = limit - used
        return PoolValues(remaining=remaining, used=used, limit=limit), gone

    @staticmethod
    def _time(data: Any, ref: TimeField | None) -> float | None:
        if ref is None:
            return None
        try:
            raw = resolve(data, ref.path)
        except MissingPath:
            if ref.optional:
                return None
            raise
        if raw is None:
            if ref.optional:
                return None
            raise bad(f"{ref.path} is null")
        return read_timestamp(raw, ref.path, ref.format)


def _not_null(raw: Any, where: str, spec: PoolSpec) -> Any:
    """``raw``; a null with the pool's ``null_means`` fails the poll with that explanation."""
    if raw is None and spec.null_means is not None:
        raise bad(f"{where} is null: {spec.null_means}")
    return raw
