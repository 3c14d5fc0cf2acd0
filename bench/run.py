"""The benchmark: ``make bench`` (= ``python -m bench.run``). See bench/README.md.

Every figure is measured against a reference measured in the same run on the same machine, and
the results go to bench/RESULTS.md (``--output``). The exporter always runs as a real
subprocess (``credits-exporter``, or ``python -m bench.probe`` which is the same CLI with a
loop-lag probe inside); the simulated provider APIs run in another process
(``python -m bench.simserver``), so they never compete with the exporter's event loop; HTTP load
comes from wrk (``-t1 -c4``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.gcpolicy import gc_section, phase_gc
from bench.harness import (
    OM_ACCEPT,
    PY,
    ROOT,
    SCALE,
    SCALED_INTERVAL,
    VARIANTS,
    Proc,
    bench_config,
    best_run,
    exporter,
    get,
    loadavg,
    log,
    median_run,
    per_render,
    probe_lines,
    read_url,
    rss_mb,
    sim_reset,
    sim_stats,
    simulator,
    wait_ready,
    wrk,
)
from bench.status import phase_status, status_section, status_targets
from exporter import __version__

# --------------------------------------------------------------------------- phases


@dataclass
class Results:
    machine: dict[str, str] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    status: list[dict[str, Any]] = field(default_factory=list)
    status_rounds: int = 5
    status_duration: float = 2.0
    cycle: list[dict[str, Any]] = field(default_factory=list)
    startup: dict[str, Any] = field(default_factory=dict)
    calls: dict[str, Any] = field(default_factory=dict)
    gc: dict[str, Any] = field(default_factory=dict)
    started: str = ""
    seconds: float = 0.0
    args: str = ""


def history_day_mb(pools: int, accounts: int) -> tuple[float, float]:
    """(MiB the sparkline history of ``pools`` pools takes after a full day, MiB it takes
    with one point per pool, as right after start-up), measured with tracemalloc on the
    store's own History type."""
    from exporter.store import History, history_points

    points = history_points(accounts)

    def size(n: int) -> float:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        keep = []
        for _ in range(pools):
            h = History(points)
            for i in range(n):
                h.append((1.8e9 + 300.0 * i, 1000.0 + i))
            keep.append(h)
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return used / 2**20

    return size(points), size(1)


def phase_metrics(
    n: int, duration: float, workdir: Path, *, churn: bool, rounds: int = 3
) -> dict[str, Any]:
    log(f"/metrics at {n} accounts (churn={churn}, load average {loadavg():.2f})")
    out: dict[str, Any] = {"accounts": n, "churn": churn, "variants": {}}
    out["load_before"] = loadavg()
    with simulator(n, f"m{n}") as sim:
        probe = workdir / f"probe-{n}.jsonl"
        config = bench_config(n, f"m{n}", sim, churn=churn)
        t0 = time.time()
        with exporter(config, workdir, probe=probe) as exp:
            out["ready_seconds"] = wait_ready(exp, timeout=300)
            ready_at = time.time()
            log(f"  ready after {out['ready_seconds']:.1f}s")
            time.sleep(3)  # the first renders after the poll wave
            ref_dir = workdir / f"ref-{n}"
            ref_dir.mkdir()
            for name, headers in VARIANTS:
                status, (body, resp_headers) = get(f"{exp.url}/metrics", headers)
                assert status == 200, status
                keep = {
                    k: v
                    for k, v in resp_headers.items()
                    if k in ("Content-Type", "Vary", "Content-Encoding")
                }
                (ref_dir / f"{name}.body").write_bytes(body)
                (ref_dir / f"{name}.headers").write_text(json.dumps(keep))
                if name == "text":
                    out["bytes"] = len(body)
                    out["series"] = sum(
                        1 for line in body.splitlines() if line and not line.startswith(b"#")
                    )
                    out["pools"] = body.count(b"\ncredits_remaining{")
                if name == "gzip":
                    out["gzip_bytes"] = len(body)
                    assert gzip.decompress(body).count(b"\n") > 0
            popen = subprocess.Popen(
                [PY, "-m", "bench.static_server", f"--dir={ref_dir}"],
                stdout=subprocess.PIPE,
                cwd=ROOT,
            )
            ref = Proc(popen, read_url(popen, "reference server"))
            windows: list[tuple[float, float]] = []
            try:
                for name, headers in VARIANTS:
                    # Alternate reference and exporter runs; compare the medians, so that a
                    # burst of other work on the machine spoils at most one run of each.
                    refs, exps = [], []
                    for _ in range(rounds):
                        refs.append(wrk(f"{ref.url}/{name}", headers, duration))
                        w0 = time.time()
                        exps.append(wrk(f"{exp.url}/metrics", headers, duration))
                        windows.append((w0, time.time()))
                    r, e = best_run(refs), best_run(exps)
                    rm, em = median_run(refs), median_run(exps)
                    out["variants"][name] = {
                        "reference": r.as_json(),
                        "exporter": e.as_json(),
                        "p50_ratio": e.p50_ms / r.p50_ms,
                        "rps_ratio": e.rps / r.rps,
                        "median_p50_ratio": em.p50_ms / rm.p50_ms,
                        "runs": {
                            "reference_p50_ms": [x.p50_ms for x in refs],
                            "exporter_p50_ms": [x.p50_ms for x in exps],
                        },
                    }
                    log(
                        f"  {name:17} ref p50 {r.p50_ms:7.2f} ms {r.rps:7.0f}/s | exporter "
                        f"p50 {e.p50_ms:7.2f} ms {e.rps:7.0f}/s | ratio {e.p50_ms / r.p50_ms:.2f}"
                    )
            finally:
                ref.stop()
            # Cover at least one of the cache's minute looks (which must render nothing).
            if n >= 10000:
                remaining = ready_at + 75 - time.time()
                if remaining > 0:
                    log(f"  waiting {remaining:.0f}s to cover a minute tick")
                    time.sleep(remaining)
            out["rss_mb"], out["hwm_mb"] = rss_mb(exp.popen.pid)
            end = time.time()
        wrk_lines = [rec for w in windows for rec in probe_lines(probe, *w)]
        after = probe_lines(probe, ready_at, end, within=True)
        before = probe_lines(probe, t0, ready_at)
        out["lag_ms"] = {
            f"{phase}{suffix}": 1000 * max((r[key] for r in recs), default=math.nan)
            for phase, recs in (
                ("during_wrk", wrk_lines),
                ("after_ready", after),
                ("start_up", before),
            )
            for suffix, key in (("", "max_lag"), ("_busy", "max_busy_lag"))
        }
        if after:
            out["renders"] = per_render(
                after,
                "renders",
                accounts_per_render="accounts_rendered",
                segments_per_render="segments_deflated",
            )
            out["renders"]["render_seconds_max"] = max(r["render_seconds_max"] for r in after)
        out["sim_calls"] = sim_stats(sim)["calls"]
    out["load_after"] = loadavg()
    if n >= 10000:
        out["history_day_mb"], out["history_now_mb"] = history_day_mb(out["pools"], n)
    log(f"  RSS {out['rss_mb']:.0f} MiB (peak {out['hwm_mb']:.0f}), lag {out['lag_ms']}")
    return out


def phase_cycle(workdir: Path, concurrency: int | None) -> dict[str, Any]:
    n, latency = 1000, 0.1
    log(f"poll cycle: {n} accounts, {latency * 1000:.0f} ms latency, concurrency {concurrency}")
    with simulator(n, "cyc", latency=latency, provider="fullenrich") as sim:
        config = bench_config(n, "cyc", sim, churn=False, provider="fullenrich")
        config["defaults"]["interval"] = "1h"
        if concurrency is not None:
            config["providers"] = {"fullenrich": {"max_concurrency": concurrency}}
        with exporter(config, workdir) as exp:
            wait_ready(exp, timeout=120)
            stats = sim_stats(sim)
    effective = concurrency or stats["max_in_flight"]
    cycle = stats["last_end"] - stats["first_start"]
    ideal = n / effective * latency
    out = {
        "accounts": n,
        "latency": latency,
        "concurrency": concurrency,
        "max_in_flight": stats["max_in_flight"],
        "calls": stats["calls"],
        "cycle_seconds": cycle,
        "ideal_seconds": ideal,
        "ratio": cycle / ideal,
    }
    log(f"  cycle {cycle:.2f}s vs ideal {ideal:.2f}s (in flight max {stats['max_in_flight']})")
    return out


def phase_startup(workdir: Path, runs: int = 5) -> dict[str, Any]:
    n, latency = 1000, 0.1
    log(f"start-up to ready: {n} accounts, {latency * 1000:.0f} ms latency, default settings")
    times = []
    for _ in range(runs):
        # A fresh simulator each time: after answering a wave of 1,667 connections the
        # simulator (one Python process) is slower for a while, and that is not the exporter.
        with simulator(n, "st", latency=latency) as sim:
            config = bench_config(n, "st", sim, churn=False)
            with exporter(config, workdir) as exp:  # (writes the config file first)
                wait_ready(exp, timeout=60, interval=0.01)
                times.append(time.monotonic() - exp.spawned)
            calls = sim_stats(sim)["calls"]
    target = 3 * latency + 1
    out = {
        "accounts": n,
        "latency": latency,
        "calls": calls,
        "runs": times,
        "median_seconds": statistics.median(times),
        "target_seconds": target,
    }
    log(f"  ready after {[f'{t:.2f}' for t in times]} s (target < {target:.1f} s)")
    return out


def phase_calls(workdir: Path, n: int, window: float) -> dict[str, Any]:
    log(f"upstream calls vs scrape rate: {n} accounts, interval {SCALED_INTERVAL:g}s, {window:g}s")
    scenarios = (("every 1 s", 1.0), ("every 60 s", 60.0))
    out: dict[str, Any] = {"accounts": n, "interval": SCALED_INTERVAL, "window": window}
    with simulator(n, "ca") as sim_a, simulator(n, "cb") as sim_b:
        configs = []
        for sim, prefix in ((sim_a, "ca"), (sim_b, "cb")):
            config = bench_config(n, prefix, sim, churn=False)
            config["defaults"]["interval"] = f"{SCALED_INTERVAL:g}s"
            configs.append(config)
        loops = sum(1 if a["provider"] == "fullenrich" else 2 for a in configs[0]["accounts"])
        with exporter(configs[0], workdir) as exp_a, exporter(configs[1], workdir) as exp_b:
            wait_ready(exp_a, 60)
            wait_ready(exp_b, 60)
            time.sleep(2 * SCALED_INTERVAL)  # past the start-up wave, into the steady state
            stop = threading.Event()
            scrapes = {label: 0 for label, _ in scenarios}

            def scraper(url: str, label: str, every: float) -> None:
                while not stop.is_set():
                    status, _ = get(
                        f"{url}/metrics", {"Accept": OM_ACCEPT, "Accept-Encoding": "gzip"}
                    )
                    assert status == 200
                    scrapes[label] += 1
                    stop.wait(every)

            sim_reset(sim_a)
            sim_reset(sim_b)
            threads = [
                threading.Thread(target=scraper, args=(exp.url, label, every), daemon=True)
                for (label, every), exp in zip(scenarios, (exp_a, exp_b), strict=True)
                for _ in range(2)  # a Prometheus HA pair
            ]
            for t in threads:
                t.start()
            time.sleep(window)
            calls = [sim_stats(sim_a)["calls"], sim_stats(sim_b)["calls"]]
            stop.set()
    expected = loops * 3600 / SCALED_INTERVAL
    for (label, every), c in zip(scenarios, calls, strict=True):
        per_hour = c * 3600 / window
        out[label] = {
            "scrape_interval": every,
            "scrapes": scrapes[label],
            "calls_in_window": c,
            "calls_per_hour": per_hour,
            "calls_per_hour_at_5m": per_hour / SCALE,
        }
        log(f"  scraped {label}: {c} calls in {window:g}s -> {per_hour:.0f}/h")
    out["loops"] = loops
    out["expected_per_hour"] = expected
    out["expected_per_hour_at_5m"] = expected / SCALE
    out["ratio"] = calls[0] / calls[1]
    return out


# --------------------------------------------------------------------------- report


def machine() -> dict[str, str]:
    cpu = "unknown"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with suppress(OSError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    os_name = "unknown"
    with suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": mem,
        "os": f"{os_name}, Linux {platform.release()}",
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "wrk": (wrk_version.split("[")[0].strip() or "wrk").splitlines()[0],
        "exporter": __version__,
    }


def ok(flag: bool) -> str:
    return "met" if flag else "**NOT MET**"


MB = 1e6 / 2**20  # MiB per MB: 250 MB = 238.4 MiB


def report(res: Results) -> str:
    L: list[str] = []
    add = L.append
    add("# Benchmark results")
    add("")
    add(
        f"Recorded by `make bench` (`python -m bench.run{' ' + res.args if res.args else ''}`) "
        f"on {res.started} in {res.seconds / 60:.1f} minutes. How it measures and how to read "
        "it: [README.md](README.md). Raw figures: [results.json](results.json)."
    )
    add("")
    add("## Machine")
    add("")
    for k, v in res.machine.items():
        add(f"- {k}: {v}")
    phases = res.metrics + res.status
    loads = [m["load_before"] for m in phases] + [m["load_after"] for m in phases]
    if loads:
        add(
            f"- 1-minute load average during the /metrics and status phases: {min(loads):.2f} to "
            f"{max(loads):.2f} (other processes share the machine; wrk and the exporter each "
            "need a core)"
        )
    add("")
    add("## Targets")
    add("")
    add("| target | measured | reference or bound | result |")
    add("|---|---|---|---|")
    for m in res.metrics:
        if m["accounts"] < 1000:
            continue
        for name, v in m["variants"].items():
            add(
                f"| /metrics p50 within 1.5x of the static-bytes reference, "
                f"{m['accounts']:,} accounts, {name} | {v['exporter']['p50_ms']:.2f} ms "
                f"({v['p50_ratio']:.2f}x) | {v['reference']['p50_ms']:.2f} ms | "
                f"{ok(v['p50_ratio'] <= 1.5)} |"
            )
    L.extend(status_targets(res.status, ok))
    for m in res.metrics:
        if m["accounts"] < 10000:
            continue
        rr = m.get("renders", {})
        per = rr.get("accounts_per_render", 0)
        add(
            f"| re-render only what changed, {m['accounts']:,} accounts (polls every few "
            f"seconds and a minute tick meanwhile) | {rr.get('renders', 0)} renders in "
            f"{rr.get('seconds', 0):.0f} s, {per:.0f} accounts re-rendered per render on "
            f"average | {m['accounts']:,} accounts | {ok(per < m['accounts'] / 10)} |"
        )
        lag, wall = m["lag_ms"]["after_ready_busy"], m["lag_ms"]["after_ready"]
        add(
            f"| event loop never held more than 50 ms, {m['accounts']:,} accounts, after "
            f"start-up (scrapes, renders, the minute tick) | longest {lag:.1f} ms (wall clock "
            f"{wall:.1f} ms) | 50 ms | {ok(lag <= 50)} |"
        )
        gz = m["variants"]["gzip"]
        add(
            f"| gzip served from the cached compressed copy, {m['accounts']:,} accounts "
            f"| p50 {gz['exporter']['p50_ms']:.2f} ms | reference (same bytes, precompressed) "
            f"{gz['reference']['p50_ms']:.2f} ms | {ok(gz['p50_ratio'] <= 1.5)} |"
        )
        add(
            f"| RSS under 250 MB, {m['accounts']:,} accounts | peak {m['hwm_mb']:.0f} MiB, "
            f"{m['rss_mb']:.0f} MiB at the end | 250 MB = {250 * MB:.0f} MiB | "
            f"{ok(m['hwm_mb'] < 250 * MB)} |"
        )
        if "history_day_mb" in m:
            day = m["rss_mb"] + m["history_day_mb"] - m["history_now_mb"]
            add(
                f"| ... and after a day of sparkline history (computed: +"
                f"{m['history_day_mb'] - m['history_now_mb']:.0f} MiB for {m['pools']:,} "
                f"pools) | {day:.0f} MiB | {250 * MB:.0f} MiB | {ok(day < 250 * MB)} |"
            )
    for c in res.cycle:
        if c["concurrency"] is None:
            continue  # the default: 512 in flight, bounded by CPU, not latency (see below)
        add(
            f"| poll cycle within 1.5x of ideal, 1,000 accounts, 100 ms latency, "
            f"max_concurrency {c['concurrency']} | {c['cycle_seconds']:.2f} s "
            f"({c['ratio']:.2f}x) | ideal {c['ideal_seconds']:.2f} s | {ok(c['ratio'] <= 1.5)} |"
        )
    if res.startup:
        st = res.startup
        add(
            f"| start-up to /readyz 200 under 3 x latency + 1 s, 1,000 accounts, 100 ms latency "
            f"| {st['median_seconds']:.2f} s (median of {len(st['runs'])}) | "
            f"{st['target_seconds']:.1f} s | {ok(st['median_seconds'] < st['target_seconds'])} |"
        )
    if res.calls:
        c = res.calls
        a, b = c["every 1 s"], c["every 60 s"]
        same = abs(c["ratio"] - 1) <= 0.05 and all(
            abs(v["calls_per_hour"] / c["expected_per_hour"] - 1) <= 0.1 for v in (a, b)
        )
        add(
            f"| upstream calls per hour independent of the scrape rate | "
            f"{a['calls_per_hour']:,.0f}/h scraped every 1 s, {b['calls_per_hour']:,.0f}/h "
            f"every 60 s | accounts x endpoints x 3600 / interval = "
            f"{c['expected_per_hour']:,.0f}/h | {ok(same)} |"
        )
    add("")
    add("## /metrics against the static-bytes reference")
    add("")
    add(
        "wrk -t1 -c4 for each variant, alternately the reference (a plain aiohttp handler "
        "returning the bytes the exporter had just served for that variant, with the same "
        "headers, in a process of its own) and the exporter's /metrics, "
        f"{res.metrics[0].get('rounds', 5) if res.metrics else 5} runs of "
        f"{res.metrics[0]['duration'] if res.metrics else 2:g} s each. The table has the best "
        "run of each side (lowest p50: the one least disturbed by other work on the machine) "
        "and the ratio of the medians as well. While wrk runs, 1/30 "
        "of the accounts poll every 10 s (the update rate of 5-minute polling), so the "
        "exporter renders twice a second throughout."
    )
    add("")
    add(
        "| accounts | series | body | variant | reference p50 | exporter p50 | ratio | "
        "ratio of medians | reference req/s | exporter req/s | exporter p99 |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for m in res.metrics:
        for name, v in m["variants"].items():
            r, e = v["reference"], v["exporter"]
            size = m["gzip_bytes"] if "gzip" in name else m["bytes"]
            add(
                f"| {m['accounts']:,} | {m['series']:,} | {size / 1e6:.2f} MB | {name} "
                f"| {r['p50_ms']:.2f} ms | {e['p50_ms']:.2f} ms | {v['p50_ratio']:.2f}x "
                f"| {v['median_p50_ratio']:.2f}x "
                f"| {r['rps']:,.0f} | {e['rps']:,.0f} | {e['p99_ms']:.2f} ms |"
            )
    add("")
    L.extend(status_section(res.status, res.status_rounds, res.status_duration))
    add("## Event loop, renders, memory")
    add("")
    add(
        "Loop lag is how late a 5 ms ticker on the exporter's event loop woke up (bench/probe.py); "
        '"busy" counts only lag during which the process itself used the CPU (a loaded '
        "machine can also simply not run it). Start-up is process start to /readyz 200, which "
        "includes polling every account once."
    )
    add("")
    add(
        "| accounts | ready after | loop lag at start-up (busy) | during wrk (busy) | after "
        "start-up, whole phase (busy) | renders | accounts per render | segments deflated "
        "per render | longest render (wall) | RSS at end | peak RSS |"
    )
    add("|---|---|---|---|---|---|---|---|---|---|---|")
    for m in res.metrics:
        lag, rr = m["lag_ms"], m.get("renders", {})
        add(
            f"| {m['accounts']:,} | {m['ready_seconds']:.1f} s "
            f"| {lag['start_up']:.0f} ms ({lag['start_up_busy']:.0f} ms) "
            f"| {lag['during_wrk']:.1f} ms ({lag['during_wrk_busy']:.1f} ms) "
            f"| {lag['after_ready']:.1f} ms ({lag['after_ready_busy']:.1f} ms) "
            f"| {rr.get('renders', 0)} in {rr.get('seconds', 0):.0f} s "
            f"| {rr.get('accounts_per_render', 0):.0f} | {rr.get('segments_per_render', 0):.0f} "
            f"| {rr.get('render_seconds_max', 0) * 1000:.0f} ms "
            f"| {m['rss_mb']:.0f} MiB | {m['hwm_mb']:.0f} MiB |"
        )
    add("")
    add("## Poll cycle and start-up")
    add("")
    add("| scenario | measured | ideal or target |")
    add("|---|---|---|")
    for c in res.cycle:
        conc = c["concurrency"] or f"default ({c['max_in_flight']} in flight at most)"
        add(
            f"| first poll cycle, {c['accounts']:,} FullEnrich accounts (one call each), "
            f"{c['latency'] * 1000:.0f} ms latency, max_concurrency {conc}; first request "
            f"to last answer at the simulator | {c['cycle_seconds']:.2f} s "
            f"| {c['ideal_seconds']:.2f} s = {c['accounts']} / "
            f"{c['concurrency'] or c['max_in_flight']} x {c['latency']:g} s |"
        )
    if any(c["concurrency"] is None for c in res.cycle):
        add("")
        add(
            "With the default `max_concurrency` (512 per provider) the ideal is two round "
            "trips; the cycle then takes as long as the exporter's CPU needs for 1,000 "
            "requests (about a quarter of a millisecond each, connection set-up included), so "
            "it is shown for information, not held to the 1.5x target."
        )
    if res.startup:
        st = res.startup
        add("")
        add("| start-up | runs | target |")
        add("|---|---|---|")
        add(
            f"| process start to /readyz 200, {st['accounts']:,} accounts of the three "
            f"providers ({st['calls']:,} calls), {st['latency'] * 1000:.0f} ms latency, "
            "default settings | " + ", ".join(f"{t:.2f} s" for t in st["runs"]) + " | "
            f"< {st['target_seconds']:.1f} s |"
        )
    if res.calls:
        c = res.calls
        add("")
        add("## Upstream calls per hour against the scrape rate")
        add("")
        add(
            f"{c['accounts']} accounts ({c['loops']} polling loops) per exporter, polling "
            f"every {c['interval']:g} s (5 minutes scaled down {SCALE} times, so that an hour's "
            "behaviour shows in a minute). Two exporters side by side, each with its own "
            "simulator: one scraped every second by two clients (a Prometheus HA pair), the "
            f"other every 60 s. Each simulator counted the calls over {c['window']:g} s, after "
            "the start-up wave; calls per hour = calls x 3600 / window. At the real 5-minute "
            f"interval the hourly figures are {SCALE} times smaller (last column)."
        )
        add("")
        add(
            "| scraped | scrapes | calls in the window | calls/hour at a 10 s interval | "
            "calls/hour at 5 m |"
        )
        add("|---|---|---|---|---|")
        for label in ("every 1 s", "every 60 s"):
            v = c[label]
            add(
                f"| {label} | {v['scrapes']} | {v['calls_in_window']:,} | "
                f"{v['calls_per_hour']:,.0f} | {v['calls_per_hour_at_5m']:,.0f} |"
            )
        add(
            f"| formula: loops x 3600 / interval | | | {c['expected_per_hour']:,.0f} | "
            f"{c['expected_per_hour_at_5m']:,.0f} |"
        )
    add("")
    L.extend(gc_section(res.gc))
    add("## Commands")
    add("")
    add("```")
    add("make bench                                  # = .venv/bin/python -m bench.run")
    add("python -m bench.run --sizes 100,1000 --only metrics --output /tmp/r.md   # a subset")
    add("python -m bench.simserver --accounts N --prefix P [--latency 0.1] [--provider NAME]")
    add("BENCH_PROBE_FILE=f.jsonl python -m bench.probe --config.file=C --web.listen-address=A")
    add("python -m bench.static_server --dir DIR")
    duration = res.metrics[0]["duration"] if res.metrics else 5
    add(
        f"wrk -t1 -c4 -d{duration:g}s --latency [-H 'Accept-Encoding: gzip'] "
        "[-H 'Accept: application/openmetrics-text;version=1.0.0,...'] URL"
    )
    add("```")
    add("")
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--duration", type=float, default=2.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=5, help="wrk runs per variant and side")
    p.add_argument("--calls-window", type=float, default=60.0)
    p.add_argument("--calls-accounts", type=int, default=200)
    p.add_argument("--no-churn", action="store_true", help="no polls during /metrics runs")
    p.add_argument("--status-sizes", default="1000,10000")
    p.add_argument("--gc-size", type=int, default=10000, help="accounts of the gc comparison")
    p.add_argument("--gc-runs", type=int, default=2, help="exporter starts per gc policy")
    p.add_argument("--gc-window", type=float, default=30.0, help="seconds watched after ready")
    p.add_argument("--only", default="metrics,status,cycle,startup,calls,gc")
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "RESULTS.md")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the 1-minute load average to fall below 1",
    )
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 1
    only = set(args.only.split(","))
    deadline = time.monotonic() + args.wait_quiet
    while loadavg() >= 1.0 and time.monotonic() < deadline:
        log(f"waiting for a quiet machine (load average {loadavg():.2f})")
        time.sleep(10)
    res = Results(
        machine=machine(),
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        args=" ".join(argv if argv is not None else sys.argv[1:]),
    )
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="credits-bench-") as tmp:
        workdir = Path(tmp)
        if "metrics" in only:
            for n in (int(x) for x in args.sizes.split(",")):
                m = phase_metrics(
                    n, args.duration, workdir, churn=not args.no_churn, rounds=args.rounds
                )
                m["duration"] = args.duration
                m["rounds"] = args.rounds
                res.metrics.append(m)
        if "status" in only:
            res.status_rounds, res.status_duration = args.rounds, args.duration
            for n in (int(x) for x in args.status_sizes.split(",")):
                res.status.append(phase_status(n, args.duration, workdir, args.rounds))
        if "cycle" in only:
            res.cycle.append(phase_cycle(workdir, 50))
            res.cycle.append(phase_cycle(workdir, None))
        if "startup" in only:
            res.startup = phase_startup(workdir)
        if "calls" in only:
            res.calls = phase_calls(workdir, args.calls_accounts, args.calls_window)
        if "gc" in only:
            res.gc = phase_gc(args.gc_size, workdir, runs=args.gc_runs, window=args.gc_window)
    res.seconds = time.monotonic() - began
    args.output.write_text(report(res))
    args.output.with_name("results.json").write_text(
        json.dumps(res.__dict__, indent=2, default=str) + "\n"
    )
    log(f"done in {res.seconds / 60:.1f} min: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
