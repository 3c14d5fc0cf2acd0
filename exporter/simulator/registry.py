"""Every simulated API, by name: the one list a :class:`~exporter.simulator.Simulator` mounts.

A new simulated API is one module (its account type, handlers and ``SimulatedApi``) and one
line below.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from . import fullenrich, theirstack, windsurf
from .api import SimulatedApi
from .presets import (
    anticaptcha,
    boldsign,
    crustdata,
    deepl,
    deepseek,
    dropcontact,
    elevenlabs,
    firecrawl,
    hunter,
    lusha,
    moonshot,
    openrouter,
    plivo,
    sendgrid,
    serpapi,
    telnyx,
    twilio,
    vonage,
    zerobounce,
)


def _by_name(*apis: SimulatedApi) -> Mapping[str, SimulatedApi]:
    out: dict[str, SimulatedApi] = {}
    mounts: set[str] = set()
    for api in apis:
        if api.name in out or api.mount in mounts:
            raise ValueError(f"simulated API name {api.name!r} or mount {api.mount!r} taken twice")
        out[api.name] = api
        mounts.add(api.mount)
    return MappingProxyType(out)


SIMULATED_APIS: Mapping[str, SimulatedApi] = _by_name(
    theirstack.API,
    windsurf.API,
    fullenrich.API,
    openrouter.API,
    deepl.API,
    deepl.FREE_API,
    elevenlabs.API,
    hunter.API,
    twilio.API,
    deepseek.API,
    serpapi.API,
    telnyx.API,
    firecrawl.API,
    sendgrid.API,
    vonage.API,
    plivo.API,
    moonshot.API,
    zerobounce.API,
    crustdata.API,
    lusha.API,
    boldsign.API,
    dropcontact.API,
    anticaptcha.API,
)
