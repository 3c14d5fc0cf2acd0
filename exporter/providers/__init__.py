"""Providers: one module each, all behind :class:`~exporter.providers.base.Provider`."""

from __future__ import annotations

from typing import Any

from ..config import AccountBase
from .base import Provider
from .fullenrich import FullEnrich
from .http_json import PRESETS, HttpJson
from .theirstack import TheirStack
from .windsurf import Windsurf

PROVIDERS: dict[str, type[Provider]] = {
    TheirStack.name: TheirStack,
    Windsurf.name: Windsurf,
    FullEnrich.name: FullEnrich,
    HttpJson.name: HttpJson,
    # Presets are data (providers/presets/*.yaml) read by the generic provider.
    **dict.fromkeys(PRESETS, HttpJson),
}


def register_provider(provider: str, cls: type[Provider]) -> None:
    PROVIDERS[provider] = cls


def create_provider(account: AccountBase) -> Provider:
    cls: Any = PROVIDERS[account.provider]
    provider: Provider = cls(account)
    return provider


__all__ = ["PROVIDERS", "Provider", "create_provider", "register_provider"]
