"""Command line: flags, subcommands and exit codes (0 ok, 1 runtime failure, 2 bad flags or
config).

    credits-exporter [--config.file=config.yaml] [--web.listen-address=:9966]
                     [--web.config.file=web.yaml] [--log.level=info] [--log.format=logfmt|json]
                     [--shard=K/N]
    credits-exporter check-config --config.file=...
    credits-exporter once --config.file=...
    credits-exporter demo

``--web.listen-address`` and ``--web.config.file`` default to the environment variables
``CREDITS_EXPORTER_WEB_LISTEN_ADDRESS`` and ``CREDITS_EXPORTER_WEB_CONFIG_FILE``, which
``python -m exporter.healthcheck`` (the image's HEALTHCHECK) reads too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__
from .config import Config, load_config, parse_config
from .configfile import ConfigError
from .daemon import Daemon, new_session
from .http import HttpClient
from .listen import add_web_flags, parse_listen_address
from .log import LOG_FORMATS, LOG_LEVELS, configure, get_logger, redactor
from .metrics import ExpositionCache
from .scheduler import poll_all_once
from .sharding import Shard, resolve_shard
from .store import Store
from .webconfig import WebConfig, load_web_config

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
COMMANDS = ("check-config", "once", "demo")

log = get_logger("exporter.cli")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="credits-exporter",
        description="Prometheus exporter for prepaid SaaS API credit balances.",
        epilog="commands: check-config (validate the config), once (poll every account once "
        "and print the exposition), demo (simulated providers + exporter). Without a command, "
        "run the exporter.",
    )
    p.add_argument("--config.file", dest="config_file", default="config.yaml", metavar="PATH")
    add_web_flags(p)
    p.add_argument("--log.level", dest="log_level", default="info", choices=LOG_LEVELS)
    p.add_argument("--log.format", dest="log_format", default="logfmt", choices=LOG_FORMATS)
    p.add_argument(
        "--shard",
        dest="shard",
        default=None,
        metavar="K/N",
        help="poll only this replica's share of the accounts: replica K of N (0-based); "
        "default from SHARD and SHARD_COUNT, or SHARD_COUNT and the host name's "
        "StatefulSet ordinal",
    )
    p.add_argument("--version", action="version", version=f"credits-exporter {__version__}")
    return p


def split_command(argv: list[str]) -> tuple[str | None, list[str]]:
    for i, arg in enumerate(argv):
        if arg in COMMANDS:
            return arg, argv[:i] + argv[i + 1 :]
    return None, argv


def print_config_errors(exc: ConfigError) -> None:
    print(f"{exc.source}: invalid config ({len(exc.errors)} error(s)):", file=sys.stderr)
    for err in exc.errors:
        print(f"  {redactor.redact(err)}", file=sys.stderr)


def web_config_file_loader(path: str | None) -> Callable[[], WebConfig] | None:
    """A loader for ``--web.config.file`` (None without the flag)."""
    if path is None:
        return None
    return lambda: load_web_config(path)


def load_web(args: argparse.Namespace) -> WebConfig | None:
    """Load ``--web.config.file`` if given; raise ConfigError."""
    return None if args.web_config_file is None else load_web_config(args.web_config_file)


def check_config(args: argparse.Namespace) -> int:
    """Validate the config and, with ``--web.config.file``, the web config; list every error."""
    ok = True
    try:
        config = load_config(args.config_file)
    except ConfigError as exc:
        print_config_errors(exc)
        ok = False
    else:
        print(f"{args.config_file}: ok ({len(config.accounts)} account(s))")
    if args.web_config_file is not None:
        try:
            web_config = load_web_config(args.web_config_file)
        except ConfigError as exc:
            print_config_errors(exc)
            ok = False
        else:
            what = [
                "TLS" if web_config.tls is not None else "no TLS",
                f"{len(web_config.users)} basic auth user(s)",
            ]
            print(f"{args.web_config_file}: ok ({', '.join(what)})")
    return EXIT_OK if ok else EXIT_USAGE


async def _once(config: Config) -> tuple[bytes, list[tuple[str, str, Any]]]:
    store = Store()
    async with new_session() as session:
        failures = await poll_all_once(store, HttpClient(session), config)
    cache = ExpositionCache(store)
    return cache.current.text, failures


def sharded_loader(path: Path, shard: Shard | None) -> Callable[[], Config]:
    """Load the config, keeping only this replica's accounts when sharded."""

    def load() -> Config:
        config = load_config(path)
        return config if shard is None else shard.apply(config)

    return load


def once(args: argparse.Namespace, shard: Shard | None) -> int:
    try:
        config = sharded_loader(Path(args.config_file), shard)()
    except ConfigError as exc:
        print_config_errors(exc)
        return EXIT_USAGE
    redactor.set_secrets(config.secrets())
    text, failures = asyncio.run(_once(config))
    sys.stdout.write(text.decode())
    sys.stdout.flush()
    for name, endpoint, error in failures:
        log.error(
            "poll failed",
            account=name,
            endpoint=endpoint,
            reason=error.reason.value,
            error=error.message,
        )
    return EXIT_FAILURE if failures else EXIT_OK


async def _demo(listen_address: str, web_config: WebConfig | None) -> None:
    from .simulator import DEMO_ACCOUNTS, Simulator

    sim = Simulator(seed_demo=True)
    sim_url = await sim.start("127.0.0.1", 0)
    accounts = [
        {**account, "base_url": sim.base_url(str(account["provider"]))} for account in DEMO_ACCOUNTS
    ]
    import yaml

    text = yaml.safe_dump({"defaults": {"interval": "15s", "timeout": "5s"}, "accounts": accounts})
    config = parse_config(text, source="<demo>")
    daemon = Daemon(config, listen_address=listen_address, web_config=web_config)
    host, port = parse_listen_address(listen_address)
    base = f"{daemon.web.scheme}://{host or 'localhost'}:{port}"
    print(f"simulated provider APIs: {sim_url}/_sim/accounts", flush=True)
    print(f"exporter:                {base}/metrics", flush=True)
    print(f"status page:             {base}/", flush=True)
    try:
        await daemon.run_until_signalled()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command, rest = split_command(argv)
    args = build_parser().parse_args(rest)  # exits 2 on bad flags
    configure(args.log_level, args.log_format)
    try:
        parse_listen_address(args.listen_address)
        shard = resolve_shard(args.shard)
    except ValueError as exc:
        print(f"credits-exporter: {exc}", file=sys.stderr)
        return EXIT_USAGE

    if command == "check-config":
        return check_config(args)
    if command == "once":
        return once(args, shard)
    web_config: WebConfig | None = None
    bad_config = False
    try:
        web_config = load_web(args)
    except ConfigError as exc:
        print_config_errors(exc)
        bad_config = True
    if command == "demo":
        if bad_config:
            return EXIT_USAGE
        try:
            asyncio.run(_demo(args.listen_address, web_config))
        except OSError as exc:
            print(f"credits-exporter: cannot start: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_FAILURE
        return EXIT_OK

    try:
        daemon = Daemon.load(
            sharded_loader(Path(args.config_file), shard),
            listen_address=args.listen_address,
            web_config=web_config,
            web_config_loader=web_config_file_loader(args.web_config_file),
        )
    except ConfigError as exc:
        print_config_errors(exc)
        return EXIT_USAGE
    if bad_config:
        return EXIT_USAGE
    if shard is not None:
        log.info("sharded", shard=str(shard), accounts=len(daemon.config.accounts))
    try:
        asyncio.run(daemon.run_until_signalled())
    except OSError as exc:
        print(f"credits-exporter: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
