"""The garbage collector policy in the benchmark (``--only gc``): the exporter at 10,000 accounts
with :mod:`exporter.gcpolicy` (automatic collection off during start-up, the survivors frozen)
and without it (``BENCH_GC_POLICY=off``, see bench/probe.py), alternately: start-up to /readyz,
the CPU it took, the longest loop hold and full collection at start-up and over a window after
it, peak RSS. The policy stays only while these figures say it pays. See bench/README.md."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from bench.harness import (
    bench_config,
    cpu_seconds,
    exporter,
    loadavg,
    log,
    probe_lines,
    rss_mb,
    simulator,
    wait_ready,
)

POLICIES = ("on", "off")


def _run(n: int, policy: str, workdir: Path, window: float, i: int) -> dict[str, float]:
    with simulator(n, f"g{n}") as sim:
        probe = workdir / f"probe-gc-{policy}-{i}.jsonl"
        config = bench_config(n, f"g{n}", sim, churn=True)
        t0 = time.time()
        with exporter(config, workdir, probe=probe, env={"BENCH_GC_POLICY": policy}) as exp:
            ready = wait_ready(exp, timeout=300)
            cpu = cpu_seconds(exp.popen.pid)
            ready_at = time.time()
            time.sleep(window)  # 1/30 of the accounts poll every 10 s meanwhile
            rss, hwm = rss_mb(exp.popen.pid)
            end = time.time()
    before = probe_lines(probe, t0, ready_at)
    after = probe_lines(probe, ready_at, end, within=True)

    def longest(recs: list[dict[str, Any]], key: str) -> float:
        return 1000 * max((r[key] for r in recs), default=0.0)

    out = {
        "ready_seconds": ready,
        "cpu_seconds": cpu,
        "start_up_lag_ms": longest(before, "max_busy_lag"),
        "start_up_gc2_ms": longest(before, "gc2_max"),
        "after_lag_ms": longest(after, "max_busy_lag"),
        "after_gc2_ms": longest(after, "gc2_max"),
        "rss_mb": rss,
        "hwm_mb": hwm,
    }
    log(f"  policy {policy}: " + ", ".join(f"{k} {v:.1f}" for k, v in out.items()))
    return out


def phase_gc(n: int, workdir: Path, *, runs: int = 2, window: float = 30.0) -> dict[str, Any]:
    log(f"garbage collector policy at {n} accounts (load average {loadavg():.2f})")
    out: dict[str, Any] = {"accounts": n, "runs": runs, "window": window}
    out["load_before"] = loadavg()
    results: dict[str, list[dict[str, float]]] = {p: [] for p in POLICIES}
    for i in range(runs):
        for policy in POLICIES:  # alternately, so that a busy spell spoils both alike
            results[policy].append(_run(n, policy, workdir, window, i))
    out["load_after"] = loadavg()
    out["policies"] = {
        policy: {key: statistics.median(r[key] for r in rs) for key in rs[0]} | {"all": rs}
        for policy, rs in results.items()
    }
    return out


def gc_section(gc: dict[str, Any]) -> list[str]:
    if not gc:
        return []
    on, off = gc["policies"]["on"], gc["policies"]["off"]
    lines = [
        "## Garbage collector policy",
        "",
        f"{gc['accounts']:,} accounts, the exporter started {gc['runs']} times with "
        "`exporter.gcpolicy` (automatic collection off from the reading of the config until "
        "every account was polled once, then everything alive frozen) and as many times "
        "without it, "
        f"alternately; medians. After start-up: a window of {gc['window']:g} s while 1/30 of "
        "the accounts poll every 10 s. Loop holds are the probe's busy lag; full collections "
        "the longest generation-2 collection it timed. 1-minute load average "
        f"{gc['load_before']:.2f} before, {gc['load_after']:.2f} after.",
        "",
        "| | with the policy | without | without / with |",
        "|---|---|---|---|",
    ]
    rows = (
        ("start-up to /readyz 200", "ready_seconds", "s", 1),
        ("CPU time to /readyz 200", "cpu_seconds", "s", 2),
        ("longest loop hold at start-up", "start_up_lag_ms", "ms", 0),
        ("longest full collection at start-up", "start_up_gc2_ms", "ms", 0),
        ("longest loop hold after start-up", "after_lag_ms", "ms", 0),
        ("longest full collection after start-up", "after_gc2_ms", "ms", 0),
        ("peak RSS", "hwm_mb", "MiB", 0),
        ("RSS at the end", "rss_mb", "MiB", 0),
    )
    for label, key, unit, digits in rows:
        ratio = f"{off[key] / on[key]:.2f}x" if on[key] else "-"
        lines.append(
            f"| {label} | {on[key]:.{digits}f} {unit} | {off[key]:.{digits}f} {unit} | {ratio} |"
        )
    lines.append("")
    return lines
