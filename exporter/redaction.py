"""The one place that makes text safe to log and show: keys out, on one line, cut to length.

A response can echo the key inside any value (``{"balance": "<key> is not allowed"}``), and an
error message quotes such values, cut to a few dozen characters. Cutting first would leave the
start of the key behind, and a search for the whole key would no longer find it. So a parser
marks what it quotes (:func:`quote`) and leaves the cut to :func:`clean`, which removes the keys
(and any fragment of them of :data:`MIN_FRAGMENT` characters or more) BEFORE it cuts each quote
to :data:`EXCERPT` characters. A parser does not know the key: the poll that called it does,
and asks for the clean copy (:meth:`exporter.model.PollError.redacted`).

The secrets to remove are every form of a key the request put on the wire (the key, its URL
and JSON encodings, a Basic header's base64: :mod:`exporter.credentials`), each compared
without regard to case: an upstream that lower-cases what it echoes echoes the key still.

Why 8 characters: a shorter run of a key's characters tells an attacker little (a key has 128
bits or more; 7 characters of base64 are 42 of them), and short runs also occur in ordinary text.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Iterable, Iterator

REDACTED = "[REDACTED]"
#: Any run of at least this many characters of a key is redacted as if it were the key.
MIN_FRAGMENT = 8
#: A secret shorter than this is not looked for where a match refuses or rewrites ordinary
#: text (the log, pool names): it would match words, and real keys are never that short.
MIN_SECRET = 4
#: How many characters of a response value a message quotes.
EXCERPT = 40
#: The longest message kept about a poll (a provider's own error text included).
MAX_MESSAGE = 200

# A quote's bounds in a message until it is cleaned: Unicode private-use characters, taken out
# of every quoted value and of everything clean() returns.
_OPEN, _CLOSE = "\ue000", "\ue001"
_MARKS = re.compile(f"[{_OPEN}{_CLOSE}]")
# What a public message leaves out: anything quoted, and a URL's path and query.
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_URL_TAIL = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s/?#]+)[^\s]*", re.IGNORECASE)


_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _fold(text: str) -> str:
    """``text`` with ASCII letters in lower case: the same length, so spans carry over."""
    return text.translate(_FOLD)


@functools.lru_cache(maxsize=4096)
def _whole(secret: str) -> re.Pattern[str]:
    return re.compile(re.escape(secret), re.IGNORECASE | re.ASCII)


@functools.lru_cache(maxsize=4096)
def _grams(folded: str) -> frozenset[str]:
    return frozenset(folded[i : i + MIN_FRAGMENT] for i in range(len(folded) - MIN_FRAGMENT + 1))


def one_line(text: str) -> str:
    """``text`` with every run of white space (line breaks included) as one space."""
    return " ".join(text.split())


def _fragments(text: str, secret: str) -> Iterator[tuple[int, int]]:
    """Spans of ``text`` that are runs of ``secret``'s characters, MIN_FRAGMENT or longer, in
    any case (``secret`` at least MIN_FRAGMENT long)."""
    text, secret = _fold(text), _fold(secret)
    grams = _grams(secret)
    i, last = 0, len(text) - MIN_FRAGMENT
    while i <= last:
        if text[i : i + MIN_FRAGMENT] not in grams:
            i += 1
            continue
        end = i + MIN_FRAGMENT
        while end < len(text) and text[i : end + 1] in secret:
            end += 1
        yield i, end
        i = end


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` without any of ``secrets``, whole or as a fragment of MIN_FRAGMENT+
    characters, in any case (a secret shorter than a fragment: whole and as written)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if len(secret) < MIN_FRAGMENT:
            text = text.replace(secret, REDACTED)
            continue
        parts, last = [], 0
        for start, end in _fragments(text, secret):
            parts += [text[last:start], REDACTED]
            last = end
        if parts:
            text = "".join(parts) + text[last:]
    return text


def holds_secret(text: str, secrets: Iterable[str]) -> bool:
    """Whether ``text`` holds one of ``secrets`` or a run of MIN_FRAGMENT+ of its characters,
    in any case (a secret shorter than a fragment: whole; one shorter than MIN_SECRET: not
    looked for)."""
    folded = _fold(text)
    for secret in secrets:
        if len(secret) < MIN_SECRET:
            continue
        if len(secret) < MIN_FRAGMENT:
            if _fold(secret) in folded:
                return True
        elif next(_fragments(folded, secret), None) is not None:
            return True
    return False


def quote(value: object) -> str:
    """``value`` (from a response) to quote in a poll error's message: :func:`clean` cuts it to
    :data:`EXCERPT` characters once the keys are out of it."""
    return f"{_OPEN}{_MARKS.sub('', str(value))}{_CLOSE}"


def _cut_quotes(text: str, keys: tuple[str, ...]) -> str:
    # Enough of each quote that whatever reaches the cut after redaction was looked at whole.
    span = EXCERPT + 2 * max(map(len, keys), default=0)
    head, *quoted = text.split(_OPEN)
    out = [head]
    for part in quoted:
        value, _, rest = part.partition(_CLOSE)
        if keys:
            value = redact(value[:span], keys)
        out += [value[:EXCERPT], rest]
    return "".join(out)


def clean(text: str, secrets: Iterable[str] = (), limit: int | None = None) -> str:
    """``text`` safe to log and show: without ``secrets`` (every form of a key on the wire,
    :attr:`exporter.credentials.Credential.forms`) or any run of MIN_FRAGMENT+ of their
    characters, in any case; each :func:`quote` cut to EXCERPT characters after that; on one
    line; and cut to ``limit`` characters (None: no cut but the quotes')."""
    # Longest first: a form that holds another (``Basic <token>``) goes whole.
    keys = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
    if _OPEN in text:
        text = _cut_quotes(text, keys)
    text = _MARKS.sub("", text)
    for key in keys:  # whole keys before any cut (one straddling it would stay), at C speed
        if len(key) >= MIN_FRAGMENT:
            text = _whole(key).sub(REDACTED, text)
        else:
            text = text.replace(key, REDACTED)
    text = one_line(text)
    if limit is not None:
        text = text[: limit + 2 * max(map(len, keys), default=0)]
    return (redact(text, keys) if keys else text)[:limit]


def public(text: str, secrets: Iterable[str], limit: int) -> str:
    """``text`` for a page anyone who can reach the exporter may read: :func:`clean`, then
    anything quoted (fragments of a response) elided, URLs cut to scheme and host, and at most
    ``limit`` characters (a longer one ends with an ellipsis)."""
    text = _URL_TAIL.sub(r"\1", _QUOTED.sub('"\u2026"', clean(text, secrets)))
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    return text
