"""Basic auth under a flood of wrong passwords, against a real exporter: the bcrypt checks are
bounded (two running, a few waiting), the excess is answered 429 at once instead of queueing
behind the others, credentials verified before still pass at once, and the exporter logs the
condition once. Passwords over 72 bytes behave as in exporter-toolkit: the first 72 bytes count.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import aiohttp
import bcrypt
from structlog.testing import capture_logs

from exporter.simulator import SimulatorThread
from exporter.webconfig import BCRYPT_CONCURRENCY, BCRYPT_QUEUE, BasicAuth
from support import ExporterProcess, wait_for

KEY = "sk_auth_flood_0123456789abcdef"
PASSWORD = "correct horse battery staple"
#: Slow enough that 200 requests arrive faster than two threads check them.
COST = 11
FLOOD = 200


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def flood(url: str) -> tuple[list[int], int, list[int]]:
    """FLOOD wrong passwords at once, then one correct login never checked before: the statuses
    of the flood, how many wrong passwords were checked (answered 401) between the moment the
    correct login was sent and its answer, and what it got, then what a login checked before
    got all along."""
    order: list[str] = []
    statuses: list[int] = []
    cached: list[int] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def get(auth: str, tag: str) -> int:
            async with session.get(f"{url}/metrics", headers={"Authorization": auth}) as r:
                await r.read()
                order.append(f"{tag} {r.status}")
                return r.status

        wrong = [
            asyncio.create_task(get(basic("prometheus", f"wrong-{i}"), "wrong"))
            for i in range(FLOOD)
        ]
        await asyncio.sleep(0.2)  # the flood is in
        checked_when_sent = order.count("wrong 401")
        first_login = asyncio.create_task(get(basic("prometheus2", PASSWORD), "first"))
        while not all(t.done() for t in wrong):
            cached.append(await get(basic("prometheus", PASSWORD), "cached"))
        statuses = [await t for t in wrong]
        first = await first_login
    answered = next(i for i, tag in enumerate(order) if tag.startswith("first"))
    waited_for = order[:answered].count("wrong 401") - checked_when_sent
    return statuses, waited_for, [first, *cached]


def test_a_flood_of_wrong_passwords_holds_no_one_back(
    simulator: SimulatorThread, tmp_path: Path
) -> None:
    simulator.add_account("fullenrich", KEY, balance=10)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=COST)).decode()
    (tmp_path / "web.yml").write_text(
        f"basic_auth_users: {{prometheus: '{hashed}', prometheus2: '{hashed}'}}\n"
    )
    config = {
        "accounts": [
            {
                "name": "a",
                "provider": "fullenrich",
                "api_key": KEY,
                "base_url": simulator.base_url("fullenrich"),
            }
        ]
    }
    exp = ExporterProcess(config, tmp_path, args=[f"--web.config.file={tmp_path / 'web.yml'}"])
    try:
        exp.wait_ready()
        auth = {"Authorization": basic("prometheus", PASSWORD)}
        wait_for(lambda: "credits_remaining" in exp.metrics(auth))  # verified once: cached
        statuses, waited_for, logins = asyncio.run(flood(exp.url))
    finally:
        exp.stop()
    assert set(statuses) == {401, 429}, statuses
    # Most of the flood was refused at once; only what fits the queue was checked.
    assert statuses.count(429) >= FLOOD // 2, statuses.count(429)
    # The first login did not wait for the flood to be checked: answered (200, or 429 if the
    # queue was full when it came) after at most the checks running or queued when it came.
    assert waited_for <= BCRYPT_CONCURRENCY + BCRYPT_QUEUE, waited_for
    assert logins[0] in (200, 429)
    assert set(logins[1:]) == {200}, logins  # verified before: never held back
    logs = exp.logs()
    assert logs.count("basic auth checks saturated") == 1, logs
    assert "basic auth checks caught up" in logs


async def test_passwords_over_72_bytes_count_their_first_72_bytes(tmp_path: Path) -> None:
    long = ("p" * 70 + "\u00e9" + "tail").encode()  # 76 bytes, the "é" ends at the 72nd
    hashed = bcrypt.hashpw(long[:72], bcrypt.gensalt(rounds=4))
    auth = BasicAuth({"prometheus": hashed})

    def header(password: bytes) -> str:
        return "Basic " + base64.b64encode(b"prometheus:" + password).decode()

    with capture_logs() as logs:
        assert await auth.check(header(long))
        assert await auth.check(header(long[:72] + b"anything after the 72nd byte"))
        assert not await auth.check(header(long[:69] + b"X" + long[70:]))
        assert await auth.check(header(long[:72]))  # exactly 72 bytes: the whole password
    warned = [e for e in logs if "longer than 72 bytes" in e["event"]]
    assert len(warned) == 1 and warned[0]["user"] == "prometheus", logs  # once per user
