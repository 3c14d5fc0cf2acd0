"""Providers: one module each, all behind :class:`~exporter.providers.base.Provider`, and the
one registry of them.

A provider's module declares its account model (what its accounts take in the config) beside
its behaviour. :data:`PROVIDERS` maps each ``provider:`` value a config may use to that model
and that class; it is written out here, in full, and nothing adds to it. Presets are data
(``http_json/presets/*.yaml``) read by the generic provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ..accounts import AccountBase
from .base import Provider
from .fullenrich import FullEnrich, FullEnrichAccount
from .http_json import PRESETS, HttpJson, HttpJsonAccount, preset_model
from .theirstack import TheirStack, TheirStackAccount
from .windsurf import Windsurf, WindsurfAccount


class Registered(NamedTuple):
    """A ``provider:`` value's account model and provider class."""

    account: type[AccountBase]
    provider: type[Provider]


PROVIDERS: Mapping[str, Registered] = MappingProxyType(
    {
        TheirStack.name: Registered(TheirStackAccount, TheirStack),
        Windsurf.name: Registered(WindsurfAccount, Windsurf),
        FullEnrich.name: Registered(FullEnrichAccount, FullEnrich),
        HttpJson.name: Registered(HttpJsonAccount, HttpJson),
        **{name: Registered(preset_model(name, data), HttpJson) for name, data in PRESETS.items()},
    }
)


def create_provider(account: AccountBase) -> Provider:
    cls: Any = PROVIDERS[account.provider].provider
    provider: Provider = cls(account)
    return provider


__all__ = ["PROVIDERS", "Provider", "Registered", "create_provider"]
