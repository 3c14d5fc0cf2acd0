"""Keeping API keys out of text that quotes a provider's response.

A response can echo the key inside any value (``{"balance": "<key> is not allowed"}``), and an
error message quotes such values, cut to a few dozen characters. Cutting first would leave the
start of the key behind, and a search for the whole key would no longer find it. So quoting goes
through :func:`excerpt`, which removes the keys of the poll in progress (:func:`keys_in_scope`)
and any fragment of them of :data:`MIN_FRAGMENT` characters or more BEFORE it cuts; and
:func:`redact` does the same for a whole message.

Why 8 characters: a shorter run of a key's characters tells an attacker little (a key has 128
bits or more; 7 characters of base64 are 42 of them), and short runs also occur in ordinary text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REDACTED = "[REDACTED]"
#: Any run of at least this many characters of a key is redacted as if it were the key.
MIN_FRAGMENT = 8
#: How many characters of a response value a message quotes.
EXCERPT = 40

_KEYS: ContextVar[tuple[str, ...]] = ContextVar("credits_keys_in_scope", default=())


@contextmanager
def keys_in_scope(*keys: str) -> Iterator[None]:
    """Within this block (one poll, in its own task), :func:`excerpt` removes ``keys``."""
    token = _KEYS.set(tuple(k for k in keys if k))
    try:
        yield
    finally:
        _KEYS.reset(token)


def _fragments(text: str, key: str) -> Iterator[tuple[int, int]]:
    """Spans of ``text`` that are runs of ``key``'s characters, MIN_FRAGMENT or longer."""
    grams = {key[i : i + MIN_FRAGMENT] for i in range(len(key) - MIN_FRAGMENT + 1)}
    i, last = 0, len(text) - MIN_FRAGMENT
    while i <= last:
        if text[i : i + MIN_FRAGMENT] not in grams:
            i += 1
            continue
        end = i + MIN_FRAGMENT
        while end < len(text) and text[i : end + 1] in key:
            end += 1
        yield i, end
        i = end


def redact(text: str, keys: Iterable[str]) -> str:
    """``text`` without any of ``keys``, whole or as a fragment of MIN_FRAGMENT+ characters."""
    for key in sorted({k for k in keys if k}, key=len, reverse=True):
        if key in text:
            text = text.replace(key, REDACTED)
        if len(key) < MIN_FRAGMENT:
            continue
        parts, last = [], 0
        for start, end in _fragments(text, key):
            parts += [text[last:start], REDACTED]
            last = end
        if parts:
            text = "".join(parts) + text[last:]
    return text


def excerpt(value: object, limit: int = EXCERPT) -> str:
    """``value`` as text cut to ``limit`` characters, for quoting in a message: the keys in
    scope (and their fragments) are removed first, so a cut never leaves part of a key."""
    text = str(value)
    keys = _KEYS.get()
    if keys:
        # Enough text that whatever reaches the cut after redaction was looked at whole.
        text = redact(text[: limit + 2 * max(map(len, keys))], keys)
    return text[:limit]
