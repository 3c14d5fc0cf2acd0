"""The simulator as a process of its own: ``python -m exporter.simulator``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .registry import SIMULATED_APIS
from .server import Simulator


def _parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


async def _serve(simulator: Simulator, host: str, port: int) -> None:
    url = await simulator.start(host, port)
    print(url, flush=True)
    for provider in SIMULATED_APIS:
        print(f"{provider}: {simulator.base_url(provider)}", file=sys.stderr, flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, done.set)
    try:
        await done.wait()
    finally:
        await simulator.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m exporter.simulator --listen 127.0.0.1:9967 [--demo]``."""
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator",
        description="Serve simulated TheirStack, Windsurf, FullEnrich and preset provider APIs.",
    )
    parser.add_argument(
        "--listen",
        type=_parse_listen,
        default=("127.0.0.1", 9967),
        metavar="HOST:PORT",
        help="address to listen on (port 0 picks a free one; default 127.0.0.1:9967)",
    )
    parser.add_argument("--demo", action="store_true", help="seed the demo accounts")
    args = parser.parse_args(argv)
    host, port = args.listen
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(Simulator(seed_demo=args.demo), host, port))
