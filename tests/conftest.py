from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.simulator import SimulatorThread
from support import ExporterProcess


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
