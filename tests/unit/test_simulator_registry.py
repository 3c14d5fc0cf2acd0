"""The simulator's one registry: every simulated API the package defines is listed, and every
provider and preset the exporter ships has a simulated API to be tested against."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import exporter
import exporter.simulator
from exporter.providers import PROVIDERS
from exporter.simulator import SIMULATED_APIS, SimulatedApi
from exporter.simulator.account import SimAccount
from exporter.simulator.registry import _by_name


def _package_modules() -> list[ModuleType]:
    prefix = exporter.simulator.__name__ + "."
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(exporter.simulator.__path__, prefix)
        if not info.name.endswith(".__main__")
    ]


def test_every_simulated_api_in_the_package_is_registered() -> None:
    defined = {
        f"{module.__name__}.{name}": value
        for module in _package_modules()
        for name, value in vars(module).items()
        if isinstance(value, SimulatedApi)
    }
    assert defined, "no module-level SimulatedApi found"
    registered = list(SIMULATED_APIS.values())
    unlisted = sorted(where for where, api in defined.items() if api not in registered)
    assert not unlisted, f"defined but not in registry.SIMULATED_APIS: {unlisted}"


def test_every_account_type_belongs_to_a_registered_api() -> None:
    types = {
        value
        for module in _package_modules()
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, SimAccount) and value is not SimAccount
    }
    served = {api.account for api in SIMULATED_APIS.values()}
    assert types <= served, sorted(t.__name__ for t in types - served)


def test_every_exporter_provider_and_preset_is_simulated() -> None:
    package = Path(exporter.__file__).parent
    presets = {path.stem for path in package.rglob("presets/*.yaml")}
    assert {"deepl", "openrouter", "twilio"} <= presets  # the glob finds the shipped presets
    built_in = set(PROVIDERS) - {"http_json"}
    missing = sorted((presets | built_in) - set(SIMULATED_APIS))
    assert not missing, f"no simulated API for {missing}"


def test_registry_names_and_mounts_are_unique() -> None:
    assert len({api.mount for api in SIMULATED_APIS.values()}) == len(SIMULATED_APIS)
    for name, api in SIMULATED_APIS.items():
        assert api.name == name
    first = next(iter(SIMULATED_APIS.values()))
    with pytest.raises(ValueError, match="taken twice"):
        _by_name(first, first)
