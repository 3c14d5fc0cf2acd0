"""The tests' one leak check, by the rule docs/security.md states: no key may appear where the
exporter writes (logs, /metrics, the status page, /api/status, messages), whole or as any run
of :data:`LEAK_RUN` of its characters, in any case, in any form it travelled in.

The forms are worked out here from the standard library, not taken from the exporter: a form
the exporter forgets to redact is then still looked for.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from yarl import URL

#: Any run of this many characters of a key is a leak (docs/security.md).
LEAK_RUN = 8


def wire_forms(key: str, *, basic_user: str | None = None) -> tuple[str, ...]:
    """``key`` in every form a request may carry it: as written, in a query string as aiohttp
    sends it, percent-encoded, form-encoded, as a JSON string, and (with ``basic_user``) HTTP
    Basic's base64 of ``user:key``."""
    forms = [
        key,
        URL.build(query={"k": key}).raw_query_string.partition("=")[2],
        quote(key, safe=""),
        quote_plus(key),
        json.dumps(key)[1:-1],
    ]
    if basic_user is not None:
        forms.append(base64.b64encode(f"{basic_user}:{key}".encode()).decode("ascii"))
    return tuple(dict.fromkeys(forms))


def find_secrets(text: str, secrets: Iterable[str]) -> list[str]:
    """Which of ``secrets`` ``text`` holds, whole or as any run of LEAK_RUN characters,
    compared without regard to case (a secret shorter than LEAK_RUN: whole)."""
    folded = text.lower()
    found = []
    for secret in secrets:
        s = secret.lower()
        runs = {s[i : i + LEAK_RUN] for i in range(max(1, len(s) - LEAK_RUN + 1))}
        if any(run in folded for run in runs):
            found.append(secret)
    return found
