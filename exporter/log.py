"""structlog set-up: logfmt or JSON on stderr, one event name per line, secrets redacted.

The redaction processor replaces every configured API key (updated on each reload) wherever it
appears in an event, as a defence in depth: the code never logs a key on purpose.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[REDACTED]"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING}
_LEVELS.update({"warning": logging.WARNING, "error": logging.ERROR})
LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("logfmt", "json")


class Redactor:
    """A structlog processor that removes known secrets from every value of an event."""

    def __init__(self) -> None:
        self._secrets: tuple[str, ...] = ()
        self._by_prefix: dict[str, tuple[str, ...]] = {}

    def set_secrets(self, secrets: Iterable[str]) -> None:
        # Longest first, so a key that contains another is replaced whole. Very short
        # strings would redact ordinary words; real keys are never that short.
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))
        # Indexed by their first four characters, so that a value is checked against the few
        # keys that could start at each position instead of every key (10,000 accounts).
        by_prefix: dict[str, list[str]] = {}
        for secret in self._secrets:
            by_prefix.setdefault(secret[:4], []).append(secret)
        self._by_prefix = {k: tuple(v) for k, v in by_prefix.items()}

    def redact(self, value: str) -> str:
        if len(self._secrets) <= 8:
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        by_prefix, out, last, i, end = self._by_prefix, [], 0, 0, len(value) - 3
        while i < end:
            for secret in by_prefix.get(value[i : i + 4], ()):
                if value.startswith(secret, i):
                    out.append(value[last:i])
                    out.append(REDACTED)
                    i = last = i + len(secret)
                    break
            else:
                i += 1
        if not out:
            return value
        out.append(value[last:])
        return "".join(out)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(v) for v in value]
        if isinstance(value, BaseException):
            return self.redact(f"{type(value).__name__}: {value}")
        return value

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not self._secrets:
            return event
        for key, value in list(event.items()):
            event[key] = self._walk(value)
        return event


redactor = Redactor()


def configure(level: str = "info", fmt: str = "logfmt", stream: TextIO | None = None) -> None:
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.processors.LogfmtRenderer(
            key_order=["ts", "level", "event"], drop_missing=True
        )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
