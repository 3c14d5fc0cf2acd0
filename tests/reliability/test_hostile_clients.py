"""Hostile clients of the web port, against a real exporter.

* Connections held without being used, with the open-files limit low (128): 150 that send
  nothing and 20 that send a request head one line at a time (slowloris). /healthz keeps
  answering all along (a kubelet probe would otherwise kill the pod), every one of those
  connections is closed within the head timeout, the exporter logs the condition once (no
  accept() tracebacks), and serves normally afterwards.
* Malformed requests: each is one structured log line, never a traceback outside the log.
* The port is taken: the exporter says it cannot start, and never that it stopped.
"""

from __future__ import annotations

import resource
import select
import socket
import subprocess
import threading
from pathlib import Path

from exporter.simulator import SimulatorThread
from support import ExporterProcess, exporter_command, http_get, wait_for
from support.servers import logfmt

#: Seconds a new connection has to send its request head (docs/security.md).
HEAD_TIMEOUT = 10.0
KEY = "sk_idle_clients_0123456789abcdef"
OPEN_FILES = 128
IDLE = 150
SLOW = 20


def low_open_files_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))


def closed_by_peer(sock: socket.socket) -> bool:
    """The server closed it (EOF or reset); False while it is still open."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(4096) == b""
    except OSError:
        return True


class Slowloris(threading.Thread):
    """Connections that send a request head one header line at a time, forever."""

    def __init__(self, port: int, count: int) -> None:
        super().__init__(name="slowloris", daemon=True)
        self.socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        for s in self.socks:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        self.closed: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for i, s in enumerate(self.socks):
                if i in self.closed:
                    continue
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    self.closed.add(i)
                    continue
                if closed_by_peer(s):
                    self.closed.add(i)


def test_idle_and_slow_clients_cannot_exhaust_the_exporter(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    exp = ExporterProcess(account(simulator), tmp_path, preexec_fn=low_open_files_limit)
    idle: list[socket.socket] = []
    slow: Slowloris | None = None
    try:
        exp.wait_ready()
        slow = Slowloris(exp.port, SLOW)
        slow.start()
        for _ in range(IDLE):
            idle.append(socket.create_connection(("127.0.0.1", exp.port)))
        # Probes all along the flood: every one answered.
        probes = [http_get(f"{exp.url}/healthz", timeout=3)[0] for _ in range(10)]
        assert probes == [200] * 10
        # Every idle and every slow connection is closed, within the head timeout (and some
        # scheduling slack), never left open for aiohttp's hour-long keep-alive.
        wait_for(lambda: all(closed_by_peer(s) for s in idle), timeout=HEAD_TIMEOUT + 20)
        wait_for(lambda: len(slow.closed) == SLOW, timeout=HEAD_TIMEOUT + 20)
        # Serving as before.
        assert http_get(f"{exp.url}/healthz")[0] == 200
        assert "credits_remaining" in exp.metrics()
    finally:
        if slow is not None:
            slow.stop.set()
        for s in idle + (slow.socks if slow is not None else []):
            s.close()
        exp.stop()
    logs = exp.logs()
    assert logs.count("connection limit reached") == 1, logs
    assert "Traceback" not in logs
    assert "out of system resource" not in logs and "Too many open files" not in logs
    assert len(logs) < 20_000, len(logs)


def account(simulator: SimulatorThread) -> dict[str, object]:
    simulator.add_account("fullenrich", KEY, balance=10)
    return {
        "accounts": [
            {
                "name": "a",
                "provider": "fullenrich",
                "api_key": KEY,
                "base_url": simulator.base_url("fullenrich"),
            }
        ]
    }


MALFORMED = [
    b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
]


def test_malformed_requests_are_one_log_line_each(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    exp = ExporterProcess(account(simulator), tmp_path)
    try:
        exp.wait_ready()
        for request in MALFORMED:
            with socket.create_connection(("127.0.0.1", exp.port), timeout=5) as s:
                s.sendall(request)
                assert s.recv(4096).split(b" ")[1].startswith(b"4"), request[:40]
        wait_for(lambda: exp.logs().count("bad request from client") == len(MALFORMED))
        assert http_get(f"{exp.url}/healthz")[0] == 200
    finally:
        exp.stop()
    lines = exp.logs().splitlines()
    assert "Traceback" not in exp.logs()
    for line in lines:  # every line is a log line: a time, a level, an event
        record = logfmt(line)
        assert {"ts", "level", "event"} <= record.keys(), line
    refused = [logfmt(x) for x in lines if "bad request from client" in x]
    assert all(r["level"] == "warning" and r["peer"] == "127.0.0.1" for r in refused), refused


def test_a_taken_port_is_not_a_start_nor_a_stop(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "config.yaml"
        config.write_text("accounts: []\n")
        result = subprocess.run(
            [
                *exporter_command(),
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    assert "cannot start" in result.stderr
    assert "exporter started" not in result.stderr
    assert "exporter stopped" not in result.stderr
