"""Providers: one module each, all behind :class:`~exporter.providers.base.Provider`."""

from __future__ import annotations

from typing import Any

from ..config import AccountBase
from .base import Provider
from .fullenrich import FullEnrich
from .theirstack import TheirStack
from .windsurf import Windsurf

PROVIDERS: dict[str, type[Provider]] = {
    TheirStack.name: TheirStack,
    Windsurf.name: Windsurf,
    FullEnrich.name: FullEnrich,
}


def register_provider(provider: str, cls: type[Provider]) -> None:
    PROVIDERS[provider] = cls


def create_provider(account: AccountBase) -> Provider:
    cls: Any = PROVIDERS[account.provider]
    provider: Provider = cls(account)
    return provider


__all__ = ["PROVIDERS", "Provider", "create_provider", "register_provider"]
