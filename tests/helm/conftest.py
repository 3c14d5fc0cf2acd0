"""Shared fixtures of the deployment tests: the real Helm engine (helm-python-sdk), Kubernetes
schemas (kubernetes-validate) and the programs the image recipe needs.

A missing tool skips its tests, unless REQUIRE_INTEGRATION=1 (CI), where it fails them
(support.require_tool, support.require_module).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support import ROOT, require_module, require_tool

CHART_DIR = ROOT / "helm" / "credits-exporter"


@pytest.fixture(scope="session")
def helm() -> ModuleType:
    module = require_module("helm_python", "helm-python-sdk")
    module.disable_logging()  # the loader logs every symlink it follows
    return module


@pytest.fixture(scope="session")
def kubernetes_validate() -> ModuleType:
    return require_module("kubernetes_validate", "kubernetes-validate")


@pytest.fixture(scope="session")
def chart(helm: ModuleType) -> Iterator[Any]:
    with helm.Chart.load(str(CHART_DIR)) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def hadolint() -> str:
    return require_tool("hadolint")


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool")


@pytest.fixture(scope="session")
def exporter_cli() -> list[str]:
    """The installed console script of the package under test."""
    script = Path(sys.executable).parent / "credits-exporter"
    if not script.exists():
        pytest.fail(f"{script} missing: pip install -e . first")
    return [str(script)]
