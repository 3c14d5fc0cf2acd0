from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from exporter.simulator import SimulatorThread
from support import ExporterProcess

# HYPOTHESIS_PROFILE=ci (.ci/run): the property tests draw the same examples on every run, so
# that CI's verdict on a commit does not depend on its luck; a local run draws new ones each
# time (and replays any failure it found from .hypothesis/).
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


@pytest.fixture
def simulator() -> Iterator[SimulatorThread]:
    sim = SimulatorThread()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[object]:
    """Factory: ``start_exporter(config, args=[...])`` -> a running ExporterProcess."""
    procs: list[ExporterProcess] = []

    def start(config: dict[str, object] | str, **kwargs: object) -> ExporterProcess:
        proc = ExporterProcess(config, tmp_path, **kwargs)  # type: ignore[arg-type]
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()
