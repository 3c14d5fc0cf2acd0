"""The log's own robustness: lines that cannot be written are dropped, library records and
event-loop errors are one line each, a repeated loop error is logged once a minute."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator

import pytest
from aiohttp.http_exceptions import BadStatusLine

from exporter.log import LoopErrorLogger, configure, get_logger


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure("info", "logfmt", stream=out)
    yield out
    configure()


def test_a_line_that_cannot_be_written_is_dropped() -> None:
    read, write = os.pipe()
    pipe = os.fdopen(write, "w")
    configure("info", "logfmt", stream=pipe)
    try:
        os.close(read)  # the reader went away: every write is EPIPE
        get_logger("test").warning("account down", account="a")  # does not raise
        with contextlib.suppress(BrokenPipeError):  # what the failed line left in the buffer
            pipe.close()
        get_logger("test").warning("account down", account="a")  # a closed stream: neither
    finally:
        configure()


def test_library_records_are_one_structured_line(stream: io.StringIO) -> None:
    server = logging.getLogger("aiohttp.server")
    server.exception(
        "Error handling request from %s", "10.0.0.7", exc_info=BadStatusLine("GET\n\x16\x03")
    )
    try:
        raise ValueError("a bug\nover two lines")
    except ValueError:
        server.exception("Error handling request from %s", "10.0.0.8")
    logging.getLogger("aiohttp.client").warning("something\nodd")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("ts=") and "level=warning" in lines[0]
    assert 'event="bad request from client" peer=10.0.0.7 error="BadStatusLine: ' in lines[0]
    assert "Traceback" not in lines[0]
    assert (
        'event="request failed" peer=10.0.0.8 error="ValueError: a bug over two lines"'
        in (lines[1])
    )
    assert 'event="something odd"' in lines[2]
    assert len(lines) == 3  # a traceback, when there is one, stays inside its line


def test_a_repeated_loop_error_is_logged_once_a_minute(stream: io.StringIO) -> None:
    now = [0.0]
    handler = LoopErrorLogger(every=60, clock=lambda: now[0])
    error = OSError(24, "Too many open files")
    for _ in range(1000):
        handler(None, {"message": "socket.accept() out of system resource", "exception": error})  # type: ignore[arg-type]
        now[0] += 0.01
    now[0] = 61.0
    handler(None, {"message": "socket.accept() out of system resource", "exception": error})  # type: ignore[arg-type]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "Too many open files" in lines[0] and "repeated" not in lines[0]
    assert "repeated=999" in lines[1]
