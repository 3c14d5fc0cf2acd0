"""What every benchmark phase shares: the processes (simulator, exporter, reference server),
HTTP helpers, wrk and its results, the probe's records. See bench/README.md."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.simserver import account_entry

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
OM_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)  # what Prometheus 2.x sends
VARIANTS: tuple[tuple[str, dict[str, str]], ...] = (
    ("text", {"Accept-Encoding": "identity"}),
    ("gzip", {"Accept-Encoding": "gzip"}),
    ("openmetrics", {"Accept": OM_ACCEPT, "Accept-Encoding": "identity"}),
    ("openmetrics+gzip", {"Accept": OM_ACCEPT, "Accept-Encoding": "gzip"}),
)
# Scaled-down time for the upstream-calls measurement: 5 m intervals become 10 s.
SCALE = 30
SCALED_INTERVAL = 300 / SCALE


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path | None = None
    spawned: float = 0.0  # time.monotonic() just before the process was started

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def read_url(popen: subprocess.Popen[bytes], what: str, timeout: float = 120) -> str:
    assert popen.stdout is not None
    result: list[str] = []

    def read() -> None:
        assert popen.stdout is not None
        result.append(popen.stdout.readline().decode().strip())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    if not result or not result[0].startswith("http"):
        popen.kill()
        raise RuntimeError(f"{what} did not start")
    return result[0]


@contextmanager
def simulator(
    accounts: int, prefix: str, latency: float = 0.0, provider: str | None = None
) -> Iterator[Proc]:
    cmd = [PY, "-m", "bench.simserver", f"--accounts={accounts}", f"--prefix={prefix}"]
    cmd += [f"--latency={latency}"] + ([f"--provider={provider}"] if provider else [])
    popen = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
    proc = Proc(popen, read_url(popen, "simulator"))
    try:
        yield proc
    finally:
        proc.stop()


def sim_base_urls(sim: Proc) -> dict[str, str]:
    return {
        "theirstack": f"{sim.url}/theirstack",
        "windsurf": f"{sim.url}/windsurf/api/v1",
        "fullenrich": f"{sim.url}/fullenrich/api/v2",
    }


def sim_stats(sim: Proc) -> dict[str, Any]:
    with urllib.request.urlopen(f"{sim.url}/_bench/stats", timeout=30) as resp:
        data: dict[str, Any] = json.load(resp)
        return data


def sim_reset(sim: Proc) -> None:
    req = urllib.request.Request(f"{sim.url}/_bench/reset", data=b"", method="POST")
    urllib.request.urlopen(req, timeout=30).read()


def free_port() -> int:

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exporter_cmd() -> list[str]:
    exe = Path(PY).with_name("credits-exporter")
    return [str(exe)] if exe.exists() else [PY, "-m", "exporter"]


@contextmanager
def exporter(
    config: dict[str, Any],
    workdir: Path,
    *,
    probe: Path | None = None,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Iterator[Proc]:
    port = free_port()
    cfg = workdir / f"config-{port}.yaml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    log_path = workdir / f"exporter-{port}.log"
    base = [PY, "-m", "bench.probe"] if probe else exporter_cmd()
    cmd = [*base, f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}", *args]
    environ = {**os.environ, **(env or {})}
    if probe:
        environ["BENCH_PROBE_FILE"] = str(probe)
    with log_path.open("wb") as out:
        spawned = time.monotonic()
        popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=environ)
    proc = Proc(popen, f"http://127.0.0.1:{port}", log_path, spawned)
    try:
        yield proc
    finally:
        proc.stop()


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, (resp.read(), dict(resp.headers))
    except urllib.error.HTTPError as exc:
        return exc.code, (exc.read(), dict(exc.headers))


def wait_ready(proc: Proc, timeout: float, interval: float = 0.05) -> float:
    """Seconds until /readyz answered 200 (from now)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"exporter exited: {proc.log_path and proc.log_path.read_text()}")
        with suppress(OSError):
            if get(f"{proc.url}/readyz", timeout=2)[0] == 200:
                return time.monotonic() - started
        time.sleep(interval)
    raise RuntimeError(f"exporter not ready within {timeout}s")


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def probe_lines(
    path: Path, start: float = 0.0, end: float = math.inf, *, within: bool = False
) -> list[dict[str, Any]]:
    """The probe's records overlapping [start, end] (``within``: lying wholly inside it). A
    record covers the half second before its timestamp."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        with suppress(ValueError):
            rec = json.loads(line)
            first, last = rec["t"] - 0.5, rec["t"]
            if within:
                if first >= start and last <= end:
                    out.append(rec)
            elif last >= start and first <= end:
                out.append(rec)
    return out


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text) * 1000


def wrk(url: str, headers: dict[str, str], duration: float, timeout: float = 10) -> WrkResult:
    cmd = ["wrk", "-t1", "-c4", f"-d{duration:g}s", f"--timeout={timeout:g}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    p50 = p99 = math.nan
    rps, requests, errors = math.nan, 0, 0
    for line in out.splitlines():
        parts = line.split()
        if parts[:1] in (["50.000%"], ["50%"]):
            p50 = _ms(parts[1])
        elif parts[:1] in (["99.000%"], ["99%"]):
            p99 = _ms(parts[1])
        elif line.startswith("Requests/sec:"):
            rps = float(parts[1])
        elif "requests in" in line:
            requests = int(parts[0])
        elif line.strip().startswith(("Non-2xx", "Socket errors")):
            errors += sum(int(x.rstrip(",")) for x in parts if x.rstrip(",").isdigit())
    return WrkResult(rps, p50, p99, requests, errors)


def bench_config(
    n: int, prefix: str, sim: Proc, *, churn: bool, provider: str | None = None
) -> dict[str, Any]:
    urls = sim_base_urls(sim)
    accounts = [account_entry(i, prefix, urls, provider) for i in range(n)]
    if churn:
        # Reproduce at once the steady update rate of 5-minute polling: 1/30 of the accounts
        # poll every 10 s (the rest wait 5 m after the first poll).
        for entry in accounts[: max(1, n // SCALE)]:
            entry["interval"] = "10s"
    return {"defaults": {"interval": "5m", "timeout": "30s"}, "accounts": accounts}


def loadavg() -> float:
    return os.getloadavg()[0]


def best_run(runs: list[WrkResult]) -> WrkResult:
    """Best of several runs (lowest p50 and p99, highest rate): the figure least disturbed by
    other work on the machine, on either side."""
    return WrkResult(
        rps=max(r.rps for r in runs),
        p50_ms=min(r.p50_ms for r in runs),
        p99_ms=min(r.p99_ms for r in runs),
        requests=sum(r.requests for r in runs),
        errors=sum(r.errors for r in runs),
    )


def median_run(runs: list[WrkResult]) -> WrkResult:
    """Median p50, p99 and rate of several runs; requests and errors summed."""
    return WrkResult(
        rps=statistics.median(r.rps for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        requests=sum(r.requests for r in runs),
        errors=sum(r.errors for r in runs),
    )


@contextmanager
def reference_server(directory: Path) -> Iterator[Proc]:
    """``python -m bench.static_server`` serving the ``<variant>.body`` files of ``directory``
    with their headers."""
    popen = subprocess.Popen(
        [PY, "-m", "bench.static_server", f"--dir={directory}"], stdout=subprocess.PIPE, cwd=ROOT
    )
    proc = Proc(popen, read_url(popen, "reference server"))
    try:
        yield proc
    finally:
        proc.stop()


def per_render(recs: list[dict[str, Any]], renders: str, **counters: str) -> dict[str, float]:
    """From the probe's records ``recs`` (in order): the seconds they span, the renders in them
    (counter ``renders``) and, per render, the increase of each of ``counters`` (name: the
    probe's key)."""
    first, last = recs[0], recs[-1]
    n = last[renders] - first[renders]
    out = {"seconds": last["t"] - first["t"], "renders": n}
    for name, key in counters.items():
        out[name] = (last[key] - first[key]) / max(1, n)
    return out
