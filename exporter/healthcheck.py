"""``python -m exporter.healthcheck``: is the exporter on this host alive? It asks /healthz and
exits 0 (healthy) or 1 (unhealthy), as a container HEALTHCHECK must.

It finds the exporter the way the exporter finds its own address: ``--web.listen-address`` and
``--web.config.file``, whose defaults come from ``CREDITS_EXPORTER_WEB_LISTEN_ADDRESS`` and
``CREDITS_EXPORTER_WEB_CONFIG_FILE``. A container that sets those variables (rather than the
flags) moves the exporter and its healthcheck together: another port, another interface, TLS
on (``tls_server_config`` in the web config). /healthz needs no basic auth.

Standard library and PyYAML only: it runs every 30 s, so it does not load the exporter.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import urllib.error
import urllib.request
from typing import Any

import yaml

from .listen import add_web_flags, local_url

HEALTHY, UNHEALTHY = 0, 1  # Docker: 0 healthy, 1 unhealthy (2 is reserved)
TIMEOUT = 4.0


def uses_tls(web_config_file: str | None) -> bool:
    """Whether the web config turns TLS on (a non-empty ``tls_server_config``)."""
    if not web_config_file:
        return False
    with open(web_config_file, encoding="utf-8") as f:
        doc: Any = yaml.safe_load(f)
    return isinstance(doc, dict) and bool(doc.get("tls_server_config"))


def _tls_context() -> ssl.SSLContext:
    # The check talks over the loopback to the process it checks: the server's certificate
    # names what clients call it, not 127.0.0.1, and there is no peer to authenticate here.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def check(url: str, timeout: float = TIMEOUT) -> str | None:
    """None when ``url`` answers 200, else why not."""
    context = _tls_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url}: HTTP {status}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m exporter.healthcheck",
        description="Exit 0 if the credits-exporter on this host answers /healthz, else 1.",
    )
    add_web_flags(p)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help: 0; bad flags: unhealthy, never Docker's reserved 2
        return HEALTHY if exc.code == 0 else UNHEALTHY
    try:
        scheme = "https" if uses_tls(args.web_config_file) else "http"
        problem = check(local_url(args.listen_address, scheme, "/healthz"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        problem = str(exc)
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return UNHEALTHY
    return HEALTHY


if __name__ == "__main__":
    sys.exit(main())
