"""Shared fixtures of the deployment tests: the real Helm engine (helm-python-sdk), Kubernetes
schemas (kubernetes-validate) and the programs the image recipe needs.

A missing tool skips its tests, unless REQUIRE_INTEGRATION=1 (CI), where it fails them.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "credits-exporter"


def missing(what: str) -> None:
    """Skip, or fail when REQUIRE_INTEGRATION=1: a CI run must not pass by skipping."""
    if os.environ.get("REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"{what} (required because REQUIRE_INTEGRATION=1)")
    pytest.skip(what)


def require_module(name: str, package: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        missing(f"{name} is not importable ({exc}); pip install {package}")
        raise AssertionError("unreachable") from exc


def find_program(name: str) -> str:
    """A program from the running venv's bin/ (pip-installed tools), else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        missing(f"{name} not found next to {sys.executable} or on PATH")
        raise AssertionError("unreachable")
    return found


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
    return find_program("hadolint")


@pytest.fixture(scope="session")
def promtool() -> str:
    return find_program("promtool")


@pytest.fixture(scope="session")
def exporter_cli() -> list[str]:
    """The installed console script of the package under test."""
    script = Path(sys.executable).parent / "credits-exporter"
    if not script.exists():
        pytest.fail(f"{script} missing: pip install -e . first")
    return [str(script)]
