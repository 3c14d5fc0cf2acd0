"""The listen address (``--web.listen-address``): what it means to bind, and how a process on
the same host reaches it. Standard library only: the healthcheck imports it."""

from __future__ import annotations

import argparse
import os

#: Environment variables that give ``--web.listen-address`` and ``--web.config.file`` their
#: defaults, for the exporter and its healthcheck alike (a container sets them once for both).
LISTEN_ADDRESS_ENV = "CREDITS_EXPORTER_WEB_LISTEN_ADDRESS"
WEB_CONFIG_FILE_ENV = "CREDITS_EXPORTER_WEB_CONFIG_FILE"
DEFAULT_LISTEN_ADDRESS = ":9966"


def add_web_flags(parser: argparse.ArgumentParser) -> None:
    """``--web.listen-address`` and ``--web.config.file``, with their defaults from the
    environment (:data:`LISTEN_ADDRESS_ENV`, :data:`WEB_CONFIG_FILE_ENV`)."""
    flags = (
        (
            "--web.listen-address",
            "listen_address",
            "ADDR",
            LISTEN_ADDRESS_ENV,
            DEFAULT_LISTEN_ADDRESS,
        ),
        ("--web.config.file", "web_config_file", "PATH", WEB_CONFIG_FILE_ENV, None),
    )
    for flag, dest, metavar, env, default in flags:
        parser.add_argument(
            flag,
            dest=dest,
            default=os.environ.get(env) or default,
            metavar=metavar,
            help=f"default: ${env}, else {default or 'none'}",
        )


def parse_listen_address(address: str) -> tuple[str | None, int]:
    """``:9966`` (all interfaces), ``127.0.0.1:9966``, ``[::1]:9966`` -> (host, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f'invalid listen address "{address}" (expected host:port or :port)')
    host = host.strip("[]")
    return (host or None), int(port_text)


def local_url(address: str, scheme: str, path: str) -> str:
    """The URL of ``path`` on an exporter listening on ``address``, from the same host: a
    wildcard address (``:9966``, ``0.0.0.0``, ``[::]``) is reached through the loopback."""
    host, port = parse_listen_address(address)
    if host in (None, "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{path}"
