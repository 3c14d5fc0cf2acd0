"""Run the real exporter (``exporter.cli.main`` with the given flags) with a probe inside:

- a ticker task on the exporter's event loop that sleeps 5 ms at a time and records how late
  it wakes up: the longest time the loop was held by anything (rendering, serving, polling).
  On a busy machine a late wake-up can also mean that the OS did not run the process at all,
  so each lag is also recorded as ``busy_lag``: the lag, but no more than the CPU time the
  process used meanwhile (work of its own, not the machine's);
- the exposition cache's and the status cache's render counters.

``BENCH_GC_POLICY=off`` runs the exporter without its garbage collector policy
(:mod:`exporter.gcpolicy`: the daemon's start-up then leaves automatic collection on and freezes
nothing), for the comparison of bench/gcpolicy.py.

Every 0.5 s one JSON line goes to ``$BENCH_PROBE_FILE``:
``{"t": unix time, "max_lag": longest lag in the last period (s), "max_busy_lag": s, "renders": n,
"accounts_rendered": n, "segments_deflated": n, "render_seconds_max": s, "status_renders": n,
"status_accounts_rendered": n, "status_blocks_deflated": n}``.

    BENCH_PROBE_FILE=/tmp/p.jsonl python -m bench.probe --config.file=C --web.listen-address=A
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from typing import Any

from exporter import cli, gcpolicy
from exporter.daemon import Daemon

TICK = 0.005
PERIOD = 0.5
_daemons: list[Daemon] = []


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


_gc_max = [0.0]
_gc_started = [0.0]


def _gc_callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    elif info.get("generation") == 2:
        _gc_max[0] = max(_gc_max[0], time.perf_counter() - _gc_started[0])


async def _probe(path: str) -> None:
    loop = asyncio.get_running_loop()
    max_lag = max_busy = 0.0
    render_max = 0.0
    last_write = loop.time()
    last_renders = -1
    with open(path, "a", buffering=1) as out:  # noqa: ASYNC230 (a line every 0.5 s)
        while True:
            before, cpu = loop.time(), time.process_time()
            await asyncio.sleep(TICK)
            lag = loop.time() - before - TICK
            max_lag = max(max_lag, lag)
            max_busy = max(max_busy, min(lag, time.process_time() - cpu))
            stats: Any = _daemons[0].cache.renderer.stats if _daemons else None
            if stats is not None and stats.renders != last_renders:
                last_renders = stats.renders
                render_max = max(render_max, stats.last_seconds)
            if loop.time() - last_write >= PERIOD:
                line = {
                    "t": time.time(),
                    "max_lag": round(max_lag, 6),
                    "max_busy_lag": round(max_busy, 6),
                    "rss_mb": round(_rss_mb(), 1),
                    "gc2_max": round(_gc_max[0], 6),
                }
                _gc_max[0] = 0.0
                if stats is not None:
                    line |= {
                        "renders": stats.renders,
                        "accounts_rendered": stats.accounts_rendered,
                        "segments_deflated": stats.segments_deflated,
                        "render_seconds_max": round(render_max, 6),
                    }
                    status = _daemons[0].status.stats
                    line |= {
                        "status_renders": status.renders,
                        "status_accounts_rendered": status.accounts_rendered,
                        "status_blocks_deflated": status.blocks_deflated,
                    }
                out.write(json.dumps(line) + "\n")
                max_lag = max_busy = render_max = 0.0
                last_write = loop.time()


class _Policy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        path = os.environ.get("BENCH_PROBE_FILE")
        if path:
            tasks: list[asyncio.Task[None]] = []
            loop.call_soon(lambda: tasks.append(loop.create_task(_probe(path))))
        return loop


def main() -> int:
    original = Daemon.start

    async def start(self: Daemon) -> None:
        _daemons.append(self)
        await original(self)

    Daemon.start = start  # type: ignore[method-assign]
    if os.environ.get("BENCH_GC_POLICY") == "off":
        gcpolicy.StartupGc.start = lambda self: None  # type: ignore[method-assign]
    gc.callbacks.append(_gc_callback)
    asyncio.set_event_loop_policy(_Policy())
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
