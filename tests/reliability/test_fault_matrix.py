"""The fault matrix: every provider (the three built-in ones, and openrouter for the generic
http_json provider) x every way an upstream can misbehave, in ONE exporter subprocess polling one
account per (provider, fault) at a 1 s interval, against the simulator and purpose-built servers
over loopback.

The scenario runs once per module (about 25 s) and records everything: upstream call times
(sampled from the simulator), scrapes taken all along, the exposition at the end of each phase,
the log. The tests below then assert, per (provider, fault):

* the right ``reason`` is counted and nothing else, ``credits_up`` is 0 on every endpoint,
* the last good values stay while it fails,
* the failing account never polls faster than its backoff floor allows, Retry-After (seconds
  and HTTP date) is obeyed,
* the healthy accounts keep polling on time and /metrics keeps answering throughout,
* the next success restores everything, and down/recovery are each logged once,
* no key appears in any log line, HTTP response or metric, and the redirect target received
  nothing at all.

Adding a provider (the simulator must serve it): append a :class:`ProviderCase`. Adding a
fault: append a :class:`Fault`.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.model import Reason
from exporter.simulator import Simulator, SimulatorThread
from support import ExporterProcess, http_get, http_post, present, sample_values, value, wait_for
from support.leaks import find_secrets
from support.servers import CallSampler, Recorder, Scraper, logfmt, longest_gaps

INTERVAL = 1.0
TIMEOUT = 1.5
#: The shortest wait the scheduler may leave between two polls of a failing endpoint:
#: min(interval, max(1 s, interval / 32)), less 10 % jitter.
BACKOFF_FLOOR = 0.9 * min(INTERVAL, max(1.0, INTERVAL / 32))
SAMPLE_PERIOD = 0.1
RETRY_AFTER_SECONDS = 4
RETRY_AFTER_DATE_IN = 6

VALUE_METRICS = {
    "credits_remaining",
    "credits_used",
    "credits_limit",
    "credits_expiry_timestamp_seconds",
    "credits_billing_cycle_start_timestamp_seconds",
    "credits_billing_cycle_end_timestamp_seconds",
    "credits_seats",
    "credits_consumed_total",
    "credits_consumption",
    "credits_runway_seconds",
    "credits_low_threshold",
}


# --------------------------------------------------------------------------- the tables


@dataclass(frozen=True)
class ProviderCase:
    """How to run one provider in the matrix."""

    name: str
    paths: dict[str, str]
    """endpoint label -> the simulator path suffix it calls."""
    seed: dict[str, Any]
    """Simulator fields for the baseline."""
    recovered: dict[str, Any]
    """Simulator fields set at recovery (values change, so recovery is visible)."""
    remaining: dict[str, float]
    """pool -> credits_remaining expected at the baseline."""
    remaining_recovered: dict[str, float]
    echo_key_body: Callable[[str], Any]
    """The provider's own error body, echoing the key back (as real APIs sometimes do)."""
    account: dict[str, Any] = field(default_factory=dict)
    not_faults: dict[str, str] = field(default_factory=dict)
    """fault id -> why that answer is valid for this provider (the case is left out)."""


PROVIDERS = [
    ProviderCase(
        name="theirstack",
        paths={"balance": "/v0/billing/credit-balance", "consumption": "/credits_consumption"},
        seed={"api_credits": 900, "ui_credits": 40, "used_api_credits": 100, "used_ui_credits": 9},
        recovered={"api_credits": 850, "used_api_credits": 150},
        remaining={"api": 900, "ui": 40},
        remaining_recovered={"api": 850, "ui": 40},
        echo_key_body=lambda key: {"error": {"title": f"Invalid API key {key}"}},
        account={"low_credit_threshold": {"api": 100}},
    ),
    ProviderCase(
        name="windsurf",
        paths={"balance": "/GetTeamCreditBalance"},
        seed={
            "prompt_credits_per_seat": 500,
            "num_seats": 10,
            "add_on_credits_available": 1000,
            "add_on_credits_used": 250,
        },
        recovered={"add_on_credits_used": 300},
        remaining={"add_on": 750},
        remaining_recovered={"add_on": 700},
        echo_key_body=lambda key: {"error": f"Invalid service key {key}"},
        not_faults={
            "string_for_number": "protobuf JSON may write an int64 as a string",
            "missing_field": "protobuf JSON leaves a zero value out: a missing count is 0",
        },
    ),
    ProviderCase(
        name="fullenrich",
        paths={"balance": "/account/credits"},
        seed={"balance": 1234.5},
        recovered={"balance": 1200},
        remaining={"workspace": 1234.5},
        remaining_recovered={"workspace": 1200},
        echo_key_body=lambda key: {"code": "error.api.key", "message": f"Unknown api key {key}"},
        account={"labels": {"team": "sales"}},
        not_faults={"negative_number": "a balance below 0 is published (overage, refunds)"},
    ),
    # A preset of the generic http_json provider.
    ProviderCase(
        name="openrouter",
        paths={"balance": "/credits"},
        seed={"total_credits": 100.5, "total_usage": 25.75},
        recovered={"total_usage": 30.5},
        remaining={"credits": 74.75},
        remaining_recovered={"credits": 70.0},
        echo_key_body=lambda key: {"error": {"code": 401, "message": f"Invalid key {key}"}},
        not_faults={"string_for_number": "the preset reads numbers written as strings"},
    ),
]


@dataclass(frozen=True)
class Fault:
    id: str
    reason: Reason
    fields: Callable[[Env, ProviderCase, str], dict[str, Any]] | None
    """Simulator fields that inject the fault (None: handled by the scenario itself)."""
    min_spacing: float = BACKOFF_FLOOR
    """No two polls of a failing endpoint closer than this."""


def _status(status: int, **extra: Any) -> Callable[[Env, ProviderCase, str], dict[str, Any]]:
    return lambda env, case, key: {"fail": {"status": status, **extra}}


def _malformed(mode: str) -> Callable[[Env, ProviderCase, str], dict[str, Any]]:
    return lambda env, case, key: {"malformed": mode}


def _retry_date(env: Env, case: ProviderCase, key: str) -> dict[str, Any]:
    when = email.utils.formatdate(env.retry_date, usegmt=True)
    return {"fail": {"status": 429, "retry_after": when}}


FAULTS = [
    Fault("401", Reason.AUTH, _status(401)),
    Fault(
        "401_echoing_key",
        Reason.AUTH,
        lambda env, case, key: {"fail": {"status": 401, "body": case.echo_key_body(key)}},
    ),
    Fault("402", Reason.PAYMENT_REQUIRED, _status(402)),
    Fault("403", Reason.AUTH, _status(403)),
    Fault("404", Reason.CLIENT_ERROR, _status(404)),
    Fault("422", Reason.CLIENT_ERROR, _status(422)),
    Fault(
        "429_retry_after_seconds",
        Reason.RATE_LIMITED,
        _status(429, retry_after=str(RETRY_AFTER_SECONDS)),
        min_spacing=RETRY_AFTER_SECONDS - 0.5,
    ),
    Fault("429_retry_after_date", Reason.RATE_LIMITED, _retry_date),
    Fault("500", Reason.SERVER_ERROR, _status(500)),
    Fault("502", Reason.SERVER_ERROR, _status(502, body="<html>502 Bad Gateway</html>")),
    Fault("503", Reason.SERVER_ERROR, _status(503)),
    Fault("connection_refused", Reason.CONNECTION, None),
    Fault("reset_mid_body", Reason.CONNECTION, _malformed("reset")),
    Fault("slower_than_timeout", Reason.TIMEOUT, lambda env, case, key: {"latency": 4.0}),
    Fault("trickle_forever", Reason.TIMEOUT, _malformed("trickle")),
    Fault("html", Reason.BAD_RESPONSE, _malformed("html")),
    Fault("invalid_json", Reason.BAD_RESPONSE, _malformed("invalid_json")),
    Fault("array_for_object", Reason.BAD_RESPONSE, _malformed("wrong_shape")),
    Fault("string_for_number", Reason.BAD_RESPONSE, _malformed("string_number")),
    Fault("null_required_field", Reason.BAD_RESPONSE, _malformed("null_field")),
    Fault("missing_field", Reason.BAD_RESPONSE, _malformed("missing_field")),
    Fault("negative_number", Reason.BAD_RESPONSE, _malformed("negative")),
    Fault("absurd_number", Reason.BAD_RESPONSE, _malformed("absurd")),
    Fault("body_over_cap", Reason.BAD_RESPONSE, _malformed("huge_body")),
    Fault(
        "redirect_to_other_host",
        Reason.BAD_RESPONSE,
        lambda env, case, key: {
            "fail": {"status": 307, "headers": {"Location": f"{env.recorder.url}/collect"}}
        },
    ),
]

CASES = [(p, f) for p in PROVIDERS for f in FAULTS if f.id not in p.not_faults]
CASE_IDS = [f"{p.name}-{f.id}" for p, f in CASES]


# --------------------------------------------------------------------------- the scenario


@dataclass
class Account:
    name: str
    key: str
    case: ProviderCase
    fault: Fault | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoints(self) -> list[str]:
        return list(self.case.paths)

    def pair(self, endpoint: str) -> tuple[str, str]:
        return (self.key, self.case.paths[endpoint])


@dataclass
class Env:
    sim: SimulatorThread
    refused_sim: SimulatorThread | None
    recorder: Recorder
    accounts: dict[str, Account]
    retry_date: float = 0.0
    retry_date_mono: float = 0.0
    # Filled in as the scenario runs.
    exp: ExporterProcess | None = None
    sampler: CallSampler | None = None
    scraper: Scraper | None = None
    baseline: dict[Any, float] = field(default_factory=dict)
    faulty: dict[Any, float] = field(default_factory=dict)
    recovered: dict[Any, float] = field(default_factory=dict)
    settled: dict[Any, float] = field(default_factory=dict)
    t_baseline: float = 0.0
    t_inject: float = 0.0
    t_faulty: float = 0.0
    t_recover: float = 0.0
    t_recovered: float = 0.0
    responses: dict[str, str] = field(default_factory=dict)
    logs: str = ""
    exit_code: int | None = None

    def account(self, case: ProviderCase, fault: Fault) -> Account:
        return self.accounts[f"{case.name}-{fault.id}"]

    @property
    def secrets(self) -> list[str]:
        return [a.key for a in self.accounts.values()]


def new_key() -> str:
    return "sk_" + secrets.token_hex(16)


def make_accounts() -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    for case in PROVIDERS:
        ok = Account(f"{case.name}-healthy", new_key(), case)
        accounts[ok.name] = ok
        for fault in FAULTS:
            if fault.id in case.not_faults:
                continue
            acc = Account(f"{case.name}-{fault.id}", new_key(), case, fault)
            accounts[acc.name] = acc
    # A raised cap lets a 2 MiB body through: max_response_size is configurable.
    fe = next(c for c in PROVIDERS if c.name == "fullenrich")
    big = Account("fullenrich-cap_raised", new_key(), fe, extra={"max_response_size": "4MiB"})
    accounts[big.name] = big
    return accounts


def exporter_config(env: Env) -> dict[str, Any]:
    accounts = []
    for acc in env.accounts.values():
        refused = acc.fault is not None and acc.fault.id == "connection_refused"
        sim = env.refused_sim if refused else env.sim
        assert sim is not None
        accounts.append(
            {
                "name": acc.name,
                "provider": acc.case.name,
                "api_key": acc.key,
                "base_url": sim.base_url(acc.case.name),
                **acc.case.account,
                **acc.extra,
            }
        )
    return {
        "defaults": {
            "interval": f"{INTERVAL:g}s",
            "timeout": f"{TIMEOUT:g}s",
            "max_staleness": "1h",
        },
        # Plenty of room: this matrix is about faults, not about the per-provider cap (with the
        # default of 4, four hanging endpoints would hold every slot of their provider).
        "providers": {case.name: {"max_concurrency": 64} for case in PROVIDERS},
        "accounts": accounts,
    }


def scrape(env: Env) -> dict[Any, float]:
    assert env.exp is not None
    return sample_values(env.exp.metrics())


def values_of(samples: dict[Any, float], account: str) -> dict[Any, float]:
    return {
        k: v for k, v in samples.items() if k[0] in VALUE_METRICS and ("account", account) in k[1]
    }


def all_up(samples: dict[Any, float], env: Env, recovered: bool) -> bool:
    for acc in env.accounts.values():
        for ep in acc.endpoints:
            if value(samples, "credits_up", account=acc.name, api_endpoint=ep) != 1:
                return False
        expected = acc.case.remaining_recovered if recovered else acc.case.remaining
        for pool, remaining in expected.items():
            if value(samples, "credits_remaining", account=acc.name, pool=pool) != remaining:
                return False
    return True


def all_faults_seen(samples: dict[Any, float], env: Env) -> bool:
    for acc in env.accounts.values():
        if acc.fault is None:
            continue
        for ep in acc.endpoints:
            if value(samples, "credits_up", account=acc.name, api_endpoint=ep) != 0:
                return False
            errors = value(
                samples,
                "credits_poll_errors_total",
                account=acc.name,
                api_endpoint=ep,
                reason=acc.fault.reason.value,
            )
            if not errors:
                return False
    return True


def start_refused_sim(env: Env, port: int, recovered: bool) -> SimulatorThread:
    """The server behind the connection_refused accounts: stopped to refuse, started again
    (same port, new state) to recover."""
    sim = SimulatorThread(Simulator(), port=port)
    sim.start()
    for acc in env.accounts.values():
        if acc.fault is not None and acc.fault.id == "connection_refused":
            fields = acc.case.seed | acc.case.recovered if recovered else acc.case.seed
            sim.add_account(acc.case.name, acc.key, **fields)
    return sim


def run_scenario(tmp: Path) -> Env:
    recorder = Recorder()
    recorder.start()
    sim = SimulatorThread()
    sim.start()
    env = Env(sim=sim, refused_sim=None, recorder=recorder, accounts=make_accounts())
    env.refused_sim = start_refused_sim(env, 0, recovered=False)
    refused_port = int(env.refused_sim.url.rsplit(":", 1)[1])
    for acc in env.accounts.values():
        if acc.fault is None or acc.fault.id != "connection_refused":
            sim.add_account(acc.case.name, acc.key, **acc.case.seed)
    pairs = [acc.pair(ep) for acc in env.accounts.values() for ep in acc.endpoints]
    env.sampler = CallSampler(sim, pairs, SAMPLE_PERIOD)
    exp = env.exp = ExporterProcess(exporter_config(env), tmp, args=["--log.level=debug"])
    try:
        exp.wait_ready(timeout=30)
        wait_for(lambda: all_up(scrape(env), env, recovered=False), timeout=30)
        env.baseline = scrape(env)
        env.t_baseline = time.monotonic()
        env.sampler.start()
        env.scraper = Scraper(f"{exp.url}/metrics", env.secrets)
        env.scraper.start()

        # Inject every fault at once.
        env.t_inject, wall = time.monotonic(), time.time()
        env.retry_date = wall + RETRY_AFTER_DATE_IN
        # An HTTP date has whole seconds: the date sent is the truncated one.
        env.retry_date_mono = env.t_inject + (int(env.retry_date) - wall)
        for acc in env.accounts.values():
            if acc.fault is not None and acc.fault.fields is not None:
                sim.update(acc.key, **acc.fault.fields(env, acc.case, acc.key))
            elif acc.extra.get("max_response_size"):
                sim.update(acc.key, malformed="huge_body")
        env.refused_sim.stop()
        # Every fault seen on every endpoint, and both Retry-After cases given time to show.
        wait_for(lambda: all_faults_seen(scrape(env), env), timeout=30)
        settle_until = env.t_inject + max(RETRY_AFTER_DATE_IN, RETRY_AFTER_SECONDS) + 3
        time.sleep(max(0.0, settle_until - time.monotonic()))
        env.faulty = scrape(env)
        env.t_faulty = time.monotonic()

        # Recovery: every upstream healthy again, with new values.
        env.t_recover = time.monotonic()
        for acc in env.accounts.values():
            if acc.fault is None or acc.fault.id != "connection_refused":
                sim.update(acc.key, fail=None, malformed=None, latency=0.0, **acc.case.recovered)
        env.refused_sim = start_refused_sim(env, refused_port, recovered=True)
        wait_for(lambda: all_up(scrape(env), env, recovered=True), timeout=30)
        env.t_recovered = time.monotonic()
        env.recovered = scrape(env)
        time.sleep(2 * INTERVAL + 0.5)
        env.settled = scrape(env)
        env.scraper.stop()
        env.sampler.stop()

        # Every other HTTP answer, for the leak scan: pages, status, both kinds of reload.
        for path in ("/", "/api/status", "/metrics"):
            env.responses[path] = http_get(f"{exp.url}{path}")[1].decode()
        env.responses["/metrics (OpenMetrics)"] = http_get(
            f"{exp.url}/metrics", {"Accept": "application/openmetrics-text"}
        )[1].decode()
        env.responses["POST /-/reload ok"] = http_post(f"{exp.url}/-/reload")[1].decode()
        good = exp.config_path.read_text()
        broken = yaml.safe_load(good)
        broken["accounts"][0]["interval"] = "soon"
        broken["accounts"][1]["colour"] = "red"
        exp.write_config(yaml.safe_dump(broken))
        env.responses["POST /-/reload refused"] = http_post(f"{exp.url}/-/reload")[1].decode()
        exp.write_config(good)
        exp.signal(signal.SIGHUP)
        wait_for(lambda: value(scrape(env), "credits_exporter_config_last_reload_successful") == 1)
    finally:
        if env.scraper is not None:
            env.scraper.stop()
        env.exit_code = exp.stop()
        env.logs = exp.logs()
        sim.stop()
        if env.refused_sim is not None:
            env.refused_sim.stop()
        recorder.stop()
    return env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    """Runs the whole scenario once; the exporter has stopped when the tests look."""
    return run_scenario(tmp_path_factory.mktemp("matrix"))


# --------------------------------------------------------------------------- per case


@pytest.mark.parametrize(("case", "fault"), CASES, ids=CASE_IDS)
def test_reason_counted_and_down(env: Env, case: ProviderCase, fault: Fault) -> None:
    acc = env.account(case, fault)
    for ep in acc.endpoints:
        labels = {"account": acc.name, "api_endpoint": ep}
        assert value(env.faulty, "credits_up", **labels) == 0
        counted = {
            dict(k[1])["reason"]: v
            for k, v in env.faulty.items()
            if k[0] == "credits_poll_errors_total" and set(labels.items()) <= k[1]
        }
        assert set(counted) == {fault.reason.value}, counted
        assert value(env.baseline, "credits_poll_errors_total", **labels) is None


@pytest.mark.parametrize(("case", "fault"), CASES, ids=CASE_IDS)
def test_last_good_values_stay(env: Env, case: ProviderCase, fault: Fault) -> None:
    acc = env.account(case, fault)
    before = values_of(env.baseline, acc.name)
    assert before, "no values at the baseline"
    assert values_of(env.faulty, acc.name) == before
    for pool, remaining in case.remaining.items():
        assert value(env.faulty, "credits_remaining", account=acc.name, pool=pool) == remaining


@pytest.mark.parametrize(("case", "fault"), CASES, ids=CASE_IDS)
def test_next_success_restores_everything(env: Env, case: ProviderCase, fault: Fault) -> None:
    acc = env.account(case, fault)
    for ep in acc.endpoints:
        labels = {"account": acc.name, "api_endpoint": ep}
        assert value(env.recovered, "credits_up", **labels) == 1
        last = value(env.recovered, "credits_last_success_timestamp_seconds", **labels)
        assert last is not None and last > present(
            env.faulty, "credits_last_success_timestamp_seconds", **labels
        )
        # No error counted once recovered; polls go on.
        reason = fault.reason.value
        errors = value(env.settled, "credits_poll_errors_total", **labels, reason=reason)
        assert errors == value(env.recovered, "credits_poll_errors_total", **labels, reason=reason)
        assert present(env.settled, "credits_polls_total", **labels) > present(
            env.recovered, "credits_polls_total", **labels
        )
    for pool, remaining in case.remaining_recovered.items():
        assert value(env.settled, "credits_remaining", account=acc.name, pool=pool) == remaining
    # Every value series the account had is back.
    assert set(values_of(env.settled, acc.name)) == set(values_of(env.baseline, acc.name))


@pytest.mark.parametrize(("case", "fault"), CASES, ids=CASE_IDS)
def test_backoff_never_faster_than_allowed(env: Env, case: ProviderCase, fault: Fault) -> None:
    acc = env.account(case, fault)
    assert env.sampler is not None
    if fault.id == "connection_refused":
        # Nothing listens, so no server counts the calls: the exporter's own counter does.
        for ep in acc.endpoints:
            labels = {"account": acc.name, "api_endpoint": ep}
            polls = value(env.faulty, "credits_polls_total", **labels)
            before = value(env.baseline, "credits_polls_total", **labels)
            assert polls is not None and before is not None
            allowed = (env.t_faulty - env.t_baseline) / fault.min_spacing + 2
            assert 2 <= polls - before <= allowed, (ep, polls - before, allowed)
        return
    if fault.id == "429_retry_after_seconds" and len(acc.endpoints) > 1:
        # A 429's Retry-After holds the key, not just the endpoint that got it: the endpoints
        # sharing the key take turns, each call at least Retry-After after the previous one.
        # (With the HTTP-date fault the date passes within the window; afterwards each endpoint
        # backs off on its own, checked below.)
        per_endpoint = [
            env.sampler.call_windows(acc.pair(ep), env.t_inject, env.t_recover)
            for ep in acc.endpoints
        ]
        assert all(per_endpoint), f"an endpoint stopped polling: {per_endpoint}"
        windows = [w for ws in per_endpoint for w in ws]
        assert len(windows) >= 2, f"the failing key stopped polling: {windows}"
        gaps = longest_gaps(windows)
        assert min(gaps) >= fault.min_spacing, gaps
        return
    for ep in acc.endpoints:
        windows = env.sampler.call_windows(acc.pair(ep), env.t_inject, env.t_recover)
        assert len(windows) >= 2, f"{ep}: the failing endpoint stopped polling: {windows}"
        # Each call's arrival is known to within its sample's window, however late the
        # sampling thread ran: too short a gap is certain only if even the longest is.
        gaps = longest_gaps(windows)
        assert min(gaps) >= fault.min_spacing, (ep, gaps)


@pytest.mark.parametrize("case", PROVIDERS, ids=[p.name for p in PROVIDERS])
def test_retry_after_http_date_obeyed(env: Env, case: ProviderCase) -> None:
    fault = next(f for f in FAULTS if f.id == "429_retry_after_date")
    acc = env.account(case, fault)
    assert env.sampler is not None
    date_mono = env.retry_date_mono
    for ep in acc.endpoints:
        times = env.sampler.call_times(acc.pair(ep), env.t_inject, env.t_recover)
        early = [t for t in times if times[0] + SAMPLE_PERIOD < t < date_mono - 1.0 - SAMPLE_PERIOD]
        assert times and not early, (ep, times, date_mono)
        # Once the date has passed, polling resumes at the backoff pace.
        assert any(t > date_mono - 1.0 for t in times), (ep, times, date_mono)


# --------------------------------------------------------------------------- whole matrix


def test_healthy_accounts_keep_polling_on_time(env: Env) -> None:
    assert env.sampler is not None
    window = env.t_recover - env.t_inject
    for acc in env.accounts.values():
        if acc.fault is not None:
            continue
        for ep in acc.endpoints:
            times = env.sampler.call_times(acc.pair(ep), env.t_inject, env.t_recover)
            assert len(times) >= window / (1.5 * INTERVAL) - 1, (acc.name, ep, window, times)
            edges = [env.t_inject, *times, env.t_recover]
            gaps = [b - a for a, b in itertools.pairwise(edges)]
            assert max(gaps) <= 3 * INTERVAL, (acc.name, ep, gaps)
        errors = [
            k
            for k in env.settled
            if k[0] == "credits_poll_errors_total" and ("account", acc.name) in k[1]
        ]
        assert not errors, errors


def test_metrics_kept_answering(env: Env) -> None:
    assert env.scraper is not None
    during = [r for r in env.scraper.results if env.t_inject <= r[0] <= env.t_recovered]
    assert len(during) >= 10
    assert all(outcome == 200 for _, outcome in during), [o for _, o in during if o != 200]


def test_raised_cap_accepts_a_large_body(env: Env) -> None:
    acc = env.accounts["fullenrich-cap_raised"]
    labels = {"account": acc.name, "api_endpoint": "balance"}
    assert value(env.faulty, "credits_up", **labels) == 1
    assert value(env.faulty, "credits_poll_errors_total", **labels) is None
    assert value(env.faulty, "credits_remaining", account=acc.name) == 1234.5


def test_redirect_target_received_nothing(env: Env) -> None:
    assert env.recorder.requests == []
    status = json.loads(env.responses["/api/status"])
    for case in PROVIDERS:
        acc = env.account(case, next(f for f in FAULTS if f.id == "redirect_to_other_host"))
        log_lines = [
            logfmt(line)
            for line in env.logs.splitlines()
            if f"account={acc.name} " in line and "account down" in line
        ]
        assert log_lines and "not followed" in log_lines[0]["error"]
        assert env.recorder.url.replace("http://", "") in log_lines[0]["error"]
        assert "/collect" not in log_lines[0]["error"]  # never the target's path
    assert status["accounts"]


def test_down_and_recovery_logged_once(env: Env) -> None:
    events: dict[tuple[str, str, str], int] = {}
    for line in env.logs.splitlines():
        rec = logfmt(line)
        if rec.get("event") in ("account down", "account recovered", "account still down"):
            key = (rec["event"], rec["account"], rec["endpoint"])
            events[key] = events.get(key, 0) + 1
    for acc in env.accounts.values():
        for ep in acc.endpoints:
            down = events.get(("account down", acc.name, ep), 0)
            up = events.get(("account recovered", acc.name, ep), 0)
            still = events.get(("account still down", acc.name, ep), 0)
            if acc.fault is None:
                assert (down, up) == (0, 0), acc.name
            else:
                assert (down, up, still) == (1, 1, 0), (acc.name, ep, down, up, still)


def test_provider_message_echoing_the_key_is_redacted(env: Env) -> None:
    status = json.loads(env.responses["/api/status"])
    fault = next(f for f in FAULTS if f.id == "401_echoing_key")
    lines = env.logs.splitlines()
    for case in PROVIDERS:
        acc = env.account(case, fault)
        down = [logfmt(x) for x in lines if "account down" in x and f"account={acc.name} " in x]
        assert down and "[REDACTED]" in down[0]["error"], down
        assert any(a["account"] == acc.name for a in status["accounts"])


def test_no_key_anywhere(env: Env) -> None:
    assert env.scraper is not None
    assert env.exit_code == 0
    assert env.scraper.leaks == []
    for what, text in env.responses.items():
        assert find_secrets(text, env.secrets) == [], what
    assert "error" in env.responses["POST /-/reload refused"]
    assert find_secrets(env.logs, env.secrets) == []
    # The redactor had nothing to do but the provider messages that echoed a key (those are
    # cut at the source, in the HTTP client): nothing else ever tried to log a key.
    echo = {
        f"account={a.name} "
        for a in env.accounts.values()
        if a.fault and a.fault.id == "401_echoing_key"
    }
    for line in env.logs.splitlines():
        if "[REDACTED]" in line:
            assert any(e in line for e in echo), line
    assert env.recorder.requests == []
