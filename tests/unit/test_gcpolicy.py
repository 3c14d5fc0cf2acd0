"""The cycle collector during the daemon's start-up: off from the start of polling until every
account was polled once, then the survivors frozen and collection on again; the daemon alone
switches it, and leaves it as it found it when it stops."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from exporter.config import Config, parse_config
from exporter.configfile import ConfigError
from exporter.daemon import Daemon
from exporter.gcpolicy import StartupGc
from support import daemon_polling


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_start_stop_pair() -> None:
    gc.enable()
    pause = StartupGc()
    pause.start()
    assert not gc.isenabled()
    pause.stop()
    assert gc.isenabled() and gc.get_freeze_count() > 0
    gc.disable()
    pause.stop()  # a second stop does nothing
    assert not gc.isenabled()


def test_collection_off_before_stays_off() -> None:
    gc.disable()
    pause = StartupGc()
    pause.start()
    pause.stop()
    assert not gc.isenabled()


async def test_daemon_pauses_collection_until_every_account_was_polled() -> None:
    gc.enable()
    gate = asyncio.Event()
    async with daemon_polling(gate) as daemon:
        assert not daemon.store.readiness.polled
        assert not gc.isenabled()  # the first poll is waiting for its answer
        gate.set()
        await asyncio.wait_for(daemon.store.readiness.wait_polled(), 10)
        for _ in range(100):
            if gc.isenabled():
                break
            await asyncio.sleep(0.01)
        assert gc.isenabled() and gc.get_freeze_count() > 0
    assert gc.isenabled()


async def test_daemon_stopped_during_start_up_turns_collection_back_on() -> None:
    gc.enable()
    async with daemon_polling(asyncio.Event()):
        assert not gc.isenabled()
    assert gc.isenabled()


def test_loading_the_config_is_part_of_start_up() -> None:
    """Parsing thousands of accounts with automatic collection on costs more than parsing."""
    gc.enable()
    seen = []

    def loader() -> Config:
        seen.append(gc.isenabled())
        return parse_config("accounts: []", env={})

    daemon = Daemon.load(loader, listen_address="127.0.0.1:0")
    assert seen == [False] and not gc.isenabled()
    assert daemon.config_loader is loader
    daemon._gc.stop()
    assert gc.isenabled()


def test_a_refused_config_turns_collection_back_on() -> None:
    gc.enable()

    def loader() -> Config:
        raise ConfigError("config.yaml", ["accounts[0].provider: unknown"])

    with pytest.raises(ConfigError):
        Daemon.load(loader)
    assert gc.isenabled()
