"""Sharding: N replicas, each polling its share of the accounts.

Replica ``K`` of ``N`` (``--shard=K/N``; or ``SHARD=K`` with ``SHARD_COUNT=N``; or, with only
``SHARD_COUNT`` set, the ordinal at the end of the host name, which a Kubernetes StatefulSet
gives its pods: ``credits-exporter-2``) polls the accounts it wins by rendezvous (highest
random weight) hashing of the account name: every replica scores every account with a stable
hash of (replica number, account name) and the highest score owns it. Every replica reads
the whole config and reaches the same verdict without talking to the others; together they
poll every account exactly once; going from N to N+1 replicas moves only the accounts the new
replica wins (about 1/(N+1) of them) and from N+1 back to N only those of the replica removed.

A replica's metrics carry no new label: Prometheus tells the replicas apart by their target.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from .accounts import AccountBase
from .config import Config

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_ORDINAL_RE = re.compile(r"-(\d+)$")
MAX_SHARDS = 1000

A = TypeVar("A", bound=AccountBase)


def weight(shard: int, name: str) -> int:
    """The score of account ``name`` on replica ``shard``: stable across processes, Python
    versions and machines (never Python's randomised ``hash()``)."""
    digest = hashlib.blake2b(f"{shard}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(name: str, count: int) -> int:
    """The replica (0..count-1) that polls account ``name``."""
    return max(range(count), key=lambda shard: weight(shard, name))


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(
                f"the shard count must be between 1 and {MAX_SHARDS}, not {self.count}"
            )
        if not 0 <= self.index < self.count:
            raise ValueError(
                f"shard {self.index} does not exist with {self.count} shard(s) "
                f"(use 0 to {self.count - 1})"
            )

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, name: str) -> bool:
        return self.count == 1 or owner(name, self.count) == self.index

    def select(self, accounts: Iterable[A]) -> list[A]:
        return [a for a in accounts if self.owns(a.name)]

    def apply(self, config: Config) -> Config:
        """The config this replica runs: the same, with only its own accounts."""
        return config.model_copy(update={"accounts": self.select(config.accounts)})


def parse_shard(text: str) -> Shard:
    """``K/N`` -> Shard(K, N); ValueError with a readable message otherwise."""
    m = _SHARD_RE.match(text)
    if m is None:
        raise ValueError(f'invalid shard "{text}" (expected K/N, e.g. 0/3)')
    return Shard(int(m.group(1)), int(m.group(2)))


def resolve_shard(
    flag: str | None, env: Mapping[str, str] | None = None, hostname: str | None = None
) -> Shard | None:
    """The shard this replica is, from ``--shard`` (wins), else ``SHARD``/``SHARD_COUNT``, else
    ``SHARD_COUNT`` and the host name's ordinal; None when not sharded. ValueError (a usage
    error) when the settings are incomplete or inconsistent."""
    env = os.environ if env is None else env
    if flag is not None:
        return parse_shard(flag)
    shard, count = env.get("SHARD", "").strip(), env.get("SHARD_COUNT", "").strip()
    if not count:
        if shard:
            raise ValueError("SHARD is set but SHARD_COUNT is not (set both, or use --shard=K/N)")
        return None
    if not count.isdigit():
        raise ValueError(f'invalid SHARD_COUNT "{count}" (expected a whole number)')
    if shard:
        if not shard.isdigit():
            raise ValueError(f'invalid SHARD "{shard}" (expected a whole number)')
        return Shard(int(shard), int(count))
    host = hostname or env.get("HOSTNAME") or socket.gethostname()
    m = _ORDINAL_RE.search(host)
    if m is None:
        raise ValueError(
            f'SHARD_COUNT is set but SHARD is not, and the host name "{host}" does not end '
            "with a StatefulSet ordinal (-0, -1, ...)"
        )
    return Shard(int(m.group(1)), int(count))
