"""Content negotiation for /metrics: ``Accept`` and ``Accept-Encoding`` with their q-values.

``q=0`` means "not acceptable" (RFC 9110, section 12.4.2), so ``application/openmetrics-text;q=0``
gets the text format and ``gzip;q=0`` an uncompressed body. When both formats are acceptable the
one with the higher q wins, OpenMetrics on a tie (Prometheus asks for it first).

Answers are remembered per header value: a Prometheus server sends the same ``Accept`` on every
scrape, and parsing it took a fifth of the time of a small gzip scrape.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

_OPENMETRICS = "application/openmetrics-text"
_TEXT_RANGES = ("text/plain", "text/*", "*/*")


def _weighted(header: str) -> Iterator[tuple[str, float]]:
    """(lower-cased token, q) of each element of a comma-separated header; an element with a
    q that is not a number from 0 to 1 is left out."""
    for element in header.split(","):
        token, *params = (part.strip() for part in element.split(";"))
        if not token:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
        if 0.0 <= q <= 1.0:
            yield token.lower(), q


def _best(header: str, tokens: tuple[str, ...]) -> float:
    """The highest q the header gives any of ``tokens`` (0: none of them is listed)."""
    return max((q for token, q in _weighted(header) if token in tokens), default=0.0)


@functools.lru_cache(maxsize=256)
def wants_openmetrics(accept: str) -> bool:
    """Whether to answer in OpenMetrics rather than the Prometheus text format."""
    om = _best(accept, (_OPENMETRICS,))
    return om > 0 and om >= _best(accept, _TEXT_RANGES)


@functools.lru_cache(maxsize=256)
def wants_gzip(accept_encoding: str) -> bool:
    """Whether the client takes a gzip body: ``gzip`` (or ``x-gzip``) listed with q > 0, or not
    listed and ``*`` with q > 0."""
    listed = list(_weighted(accept_encoding))
    if any(token in ("gzip", "x-gzip") for token, _ in listed):
        return _best(accept_encoding, ("gzip", "x-gzip")) > 0
    return _best(accept_encoding, ("*",)) > 0
