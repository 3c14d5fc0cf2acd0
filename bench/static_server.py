"""The reference: a plain aiohttp handler returning fixed bytes, the limit of serving /metrics
from Python. Serves every file of ``--dir`` named ``<variant>.body`` at ``/<variant>``, with the
headers the exporter sends for that variant (from ``<variant>.headers``, JSON).

    python -m bench.static_server --dir /tmp/x --port 0    # prints its URL
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web


def make_handler(
    body: bytes, headers: dict[str, str]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, headers=headers)

    return handler


def load(directory: Path) -> dict[str, tuple[bytes, dict[str, str]]]:
    return {
        path.stem: (path.read_bytes(), json.loads(path.with_suffix(".headers").read_text()))
        for path in sorted(directory.glob("*.body"))
    }


async def serve(files: dict[str, tuple[bytes, dict[str, str]]], port: int) -> None:
    app = web.Application()
    for name, (body, headers) in files.items():
        app.router.add_get(f"/{name}", make_handler(body, headers))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await runner.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.static_server")
    p.add_argument("--dir", type=Path, required=True)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(load(args.dir), args.port))


if __name__ == "__main__":
    main()
