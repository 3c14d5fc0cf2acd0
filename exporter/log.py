"""structlog set-up: logfmt or JSON on stderr, one event name per line, secrets redacted.

The redaction processor replaces every configured API key (updated on each reload) wherever it
appears in an event, as a defence in depth: the code never logs a key on purpose.

Everything else that logs goes through the same renderer, one line per event: the libraries'
stdlib ``logging`` records (aiohttp's server refusing a malformed request, for one) and the
event loop's errors (:class:`LoopErrorLogger`, which logs a repeated error once a minute, not
once per ``accept()``). A line that cannot be written (stderr closed, a broken pipe) is dropped:
it never raises into the code that logged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, TextIO

import structlog

from .redaction import MIN_SECRET, REDACTED

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
        """Redact ``secrets`` from now on: every form of every key as the requests carry it
        on the wire (a query-string key in a URL a library logs, a Basic header's base64...:
        :meth:`exporter.config.Config.secrets`)."""
        # Longest first, so a key that contains another is replaced whole.
        forms = {s for s in secrets if len(s) >= MIN_SECRET}
        self._secrets = tuple(sorted(forms, key=len, reverse=True))
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


class _SafePrintLogger(structlog.PrintLogger):
    """Drops a line it cannot write instead of raising into the caller: a poll loop or a
    request must not fail because stderr is a closed pipe."""

    def msg(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # ValueError: the stream is closed
            super().msg(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


class _StdlibBridge(logging.Handler):
    """Renders the records of stdlib ``logging`` (aiohttp, asyncio, ...) as structlog events,
    one line each. A client's malformed request is the client's fault: a warning with the
    parser's complaint on one line, never a traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a log record must never raise into a library
            self._emit(record)

    def _emit(self, record: logging.LogRecord) -> None:
        from aiohttp.http_exceptions import HttpProcessingError

        logger = get_logger(record.name)
        exc = record.exc_info[1] if record.exc_info else None
        if record.name == "aiohttp.server" and str(record.msg).startswith("Error handling"):
            args = record.args if isinstance(record.args, tuple) else ()
            peer = str(args[0]) if args else None
            if isinstance(exc, HttpProcessingError):  # the client's fault, not ours
                logger.warning("bad request from client", peer=peer, error=_one_line(exc))
            elif exc is not None:
                logger.error(
                    "request failed", peer=peer, error=_one_line(exc), exc_info=record.exc_info
                )
            return
        event = " ".join(record.getMessage().split())
        if exc is not None:
            logger.log(record.levelno, event, error=_one_line(exc), exc_info=record.exc_info)
        else:
            logger.log(record.levelno, event)


class LoopErrorLogger:
    """An event loop exception handler: one structured line per error, and an error that
    repeats (``accept()`` failing while the process is out of file descriptors, say) once per
    ``every`` seconds with the number of times it happened meanwhile."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._last: dict[str, tuple[float, int]] = {}
        self._log = get_logger("asyncio")

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message") or "event loop error")
        exc = context.get("exception")
        key = f"{message}|{type(exc).__name__}"
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.every:
            self._last[key] = (last[0], last[1] + 1)
            return
        self._last[key] = (now, 0)
        fields: dict[str, Any] = {}
        if last is not None and last[1]:
            fields["repeated"] = last[1]
        if isinstance(exc, BaseException):
            fields["error"] = _one_line(exc)
            if not isinstance(exc, OSError):  # a bug: its traceback says where
                fields["exc_info"] = exc
        self._log.error(" ".join(message.split()), **fields)


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
        logger_factory=_SafePrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not isinstance(h, _StdlibBridge)]
    root.addHandler(_StdlibBridge())
    root.setLevel(_LEVELS[level])


class _SafePrintLoggerFactory:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __call__(self, *args: Any) -> _SafePrintLogger:
        return _SafePrintLogger(self._stream)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
