"""The status page and /api/status in the benchmark (``--only status``): each against a static
server sending the same bytes, and what two clients that keep refreshing them do to scrapes.
See bench/README.md."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any

from bench.harness import (
    OM_ACCEPT,
    bench_config,
    best_run,
    exporter,
    get,
    loadavg,
    log,
    median_run,
    per_render,
    probe_lines,
    reference_server,
    simulator,
    wait_ready,
    wrk,
)

#: (name, path, headers): what a browser and a script ask for.
STATUS_VARIANTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("page", "/", {"Accept-Encoding": "identity"}),
    ("page+gzip", "/", {"Accept-Encoding": "gzip"}),
    ("api", "/api/status", {"Accept-Encoding": "identity"}),
    ("api+gzip", "/api/status", {"Accept-Encoding": "gzip"}),
)
#: The scrape measured alone and with the refreshing clients: what Prometheus sends.
SCRAPE_HEADERS = {"Accept": OM_ACCEPT, "Accept-Encoding": "gzip"}
#: A refreshing client's pause between two requests (a person holding F5, a script in a loop).
REFRESH_PAUSE = 0.05
_KEEP_HEADERS = {"Content-Length", "Date", "Server", "Transfer-Encoding"}


class Refreshers:
    """Two clients, one on ``/`` and one on ``/api/status``, each asking again and again (with
    gzip, as browsers do; never a conditional request, so that every answer is a full one)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.requests = 0
        self.errors = 0
        self.threads = [
            threading.Thread(target=self._loop, args=(path,), daemon=True)
            for path in ("/", "/api/status")
        ]

    def _loop(self, path: str) -> None:
        while not self.stop.is_set():
            status, _ = get(f"{self.url}{path}", {"Accept-Encoding": "gzip"})
            self.requests += 1
            self.errors += status != 200
            self.stop.wait(REFRESH_PAUSE)

    def __enter__(self) -> Refreshers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def phase_status(n: int, duration: float, workdir: Path, rounds: int) -> dict[str, Any]:
    log(f"status page and /api/status at {n} accounts (load average {loadavg():.2f})")
    out: dict[str, Any] = {"accounts": n, "variants": {}, "load_before": loadavg()}
    with simulator(n, f"s{n}") as sim:
        probe = workdir / f"probe-status-{n}.jsonl"
        with exporter(bench_config(n, f"s{n}", sim, churn=True), workdir, probe=probe) as exp:
            out["ready_seconds"] = wait_ready(exp, timeout=300)
            time.sleep(5)  # the status cache renders every account after the poll wave
            began = time.time()
            ref_dir = workdir / f"status-ref-{n}"
            ref_dir.mkdir()
            for name, path, headers in STATUS_VARIANTS:
                code, (body, resp_headers) = get(f"{exp.url}{path}", headers)
                assert code == 200, code
                keep = {k: v for k, v in resp_headers.items() if k not in _KEEP_HEADERS}
                (ref_dir / f"{name}.body").write_bytes(body)
                (ref_dir / f"{name}.headers").write_text(json.dumps(keep))
                out["variants"][name] = {"bytes": len(body)}
            with reference_server(ref_dir) as ref:
                for name, path, headers in STATUS_VARIANTS:
                    refs, exps = [], []
                    for _ in range(rounds):
                        refs.append(wrk(f"{ref.url}/{name}", headers, duration))
                        exps.append(wrk(f"{exp.url}{path}", headers, duration))
                    r, e = best_run(refs), best_run(exps)
                    rm, em = median_run(refs), median_run(exps)
                    out["variants"][name] |= {
                        "reference": r.as_json(),
                        "exporter": e.as_json(),
                        "p50_ratio": e.p50_ms / r.p50_ms,
                        "median_p50_ratio": em.p50_ms / rm.p50_ms,
                    }
                    log(
                        f"  {name:9} ref p50 {r.p50_ms:7.2f} ms | exporter p50 {e.p50_ms:7.2f} ms"
                        f" | ratio {e.p50_ms / r.p50_ms:.2f}"
                    )
            out["scrape"] = scrape_with_refreshers(exp.url, duration, rounds)
            end = time.time()
        recs = probe_lines(probe, began, end, within=True)
        if recs:
            out["renders"] = per_render(
                recs,
                "status_renders",
                accounts_per_render="status_accounts_rendered",
                blocks_per_render="status_blocks_deflated",
            )
            out["lag_ms"] = 1000 * max(r["max_busy_lag"] for r in recs)
    out["load_after"] = loadavg()
    return out


def scrape_with_refreshers(url: str, duration: float, rounds: int) -> dict[str, Any]:
    """/metrics (as Prometheus asks) alone and while two clients keep refreshing the status
    page and /api/status, alternately."""
    alone, busy = [], []
    served = errors = 0
    for _ in range(rounds):
        alone.append(wrk(f"{url}/metrics", SCRAPE_HEADERS, duration))
        with Refreshers(url) as clients:
            time.sleep(0.2)
            busy.append(wrk(f"{url}/metrics", SCRAPE_HEADERS, duration))
        served += clients.requests
        errors += clients.errors
    a, b = best_run(alone), best_run(busy)
    am, bm = median_run(alone), median_run(busy)
    out = {
        "alone": a.as_json(),
        "with_refreshers": b.as_json(),
        "p99_ratio": b.p99_ms / a.p99_ms,
        "median_p99_ratio": bm.p99_ms / am.p99_ms,
        "p50_ratio": b.p50_ms / a.p50_ms,
        "refresh_requests": served,
        "refresh_errors": errors,
        "refreshes_per_second": served / (rounds * (duration + 0.2)),
    }
    log(
        f"  scrape p99 alone {a.p99_ms:.2f} ms, with two refreshing clients {b.p99_ms:.2f} ms"
        f" (ratio {out['p99_ratio']:.2f}; {served} refreshes, {errors} errors)"
    )
    return out


def status_targets(phases: list[dict[str, Any]], ok: Any) -> list[str]:
    rows = []
    for s in phases:
        n = f"{s['accounts']:,} accounts"
        for name, v in s["variants"].items():
            what = "/" if name.startswith("page") else "/api/status"
            gz = ", gzip" if name.endswith("gzip") else ""
            rows.append(
                f"| {what} p50 within 2x of a static server sending the same bytes, {n}{gz} "
                f"| {v['exporter']['p50_ms']:.2f} ms ({v['p50_ratio']:.2f}x) "
                f"| {v['reference']['p50_ms']:.2f} ms | {ok(v['p50_ratio'] <= 2)} |"
            )
        sc = s["scrape"]
        rows.append(
            f"| scrape p99 with two clients refreshing / and /api/status within 1.5x of alone, "
            f"{n} | {sc['with_refreshers']['p99_ms']:.2f} ms ({sc['p99_ratio']:.2f}x) "
            f"| alone {sc['alone']['p99_ms']:.2f} ms | {ok(sc['p99_ratio'] <= 1.5)} |"
        )
    return rows


def status_section(phases: list[dict[str, Any]], rounds: int, duration: float) -> list[str]:
    if not phases:
        return []
    lines = [
        "## Status page and /api/status",
        "",
        f"wrk -t1 -c4, {rounds} runs of {duration:g} s of each side alternately: the exporter, "
        "and a static server (the same handler as for /metrics) sending the bytes the "
        "exporter had just served, with the same headers. 1/30 of the accounts poll every "
        "10 s meanwhile, so the status cache renders throughout. Best run of each side, and "
        "the ratio of the medians.",
        "",
        "| accounts | view | body | reference p50 | exporter p50 | ratio | ratio of medians "
        "| exporter req/s | exporter p99 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in phases:
        for name, v in s["variants"].items():
            e, r = v["exporter"], v["reference"]
            lines.append(
                f"| {s['accounts']:,} | {name} | {v['bytes'] / 1e6:.3f} MB | {r['p50_ms']:.2f} ms "
                f"| {e['p50_ms']:.2f} ms | {v['p50_ratio']:.2f}x | {v['median_p50_ratio']:.2f}x "
                f"| {e['rps']:,.0f} | {e['p99_ms']:.2f} ms |"
            )
    lines += [
        "",
        "Scrapes (/metrics as Prometheus asks: OpenMetrics, gzip; wrk -t1 -c4) alone and while "
        f"two clients keep refreshing, one `/`, one `/api/status` (gzip, no ETag, "
        f"{REFRESH_PAUSE * 1000:.0f} ms between requests), alternately.",
        "",
        "| accounts | scrape p50 alone | p50 with refreshers | p99 alone | p99 with refreshers "
        "| p99 ratio | ratio of medians | refreshes served | status renders | accounts per "
        "render | JSON blocks deflated per render | loop lag (busy) | load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in phases:
        sc, rr = s["scrape"], s.get("renders", {})
        a, b = sc["alone"], sc["with_refreshers"]
        lines.append(
            f"| {s['accounts']:,} | {a['p50_ms']:.2f} ms | {b['p50_ms']:.2f} ms "
            f"| {a['p99_ms']:.2f} ms | {b['p99_ms']:.2f} ms | {sc['p99_ratio']:.2f}x "
            f"| {sc['median_p99_ratio']:.2f}x | {sc['refresh_requests']:,} "
            f"({sc['refreshes_per_second']:.0f}/s, {sc['refresh_errors']} errors) "
            f"| {rr.get('renders', 0)} in {rr.get('seconds', 0):.0f} s "
            f"| {rr.get('accounts_per_render', 0):.0f} | {rr.get('blocks_per_render', 0):.1f} "
            f"| {s.get('lag_ms', math.nan):.1f} ms "
            f"| {s['load_before']:.2f} / {s['load_after']:.2f} |"
        )
    lines.append("")
    return lines
