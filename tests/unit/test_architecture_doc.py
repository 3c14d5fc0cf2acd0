"""docs/architecture.md against the package: every module of exporter/ named (and no other),
its floors the same as the import contracts `make imports` checks, and each top-level module's
"Imports" the modules it really imports."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "exporter"
DOC = ROOT / "docs" / "architecture.md"


def section(title: str) -> str:
    text = DOC.read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def modules() -> set[str]:
    """Every module of the package, as its path in exporter/."""
    return {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}


def test_every_module_is_on_the_map() -> None:
    named = set(re.findall(r"`([\w/]+\.py)`", section("The modules")))
    assert sorted(modules() - named) == [], "modules missing from docs/architecture.md"
    assert sorted(named - modules()) == [], "docs/architecture.md names modules that do not exist"


def contract_layers() -> list[set[str]]:
    """The floors of the package's layers contract in pyproject.toml, from the ground up."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (floors,) = [
        c for c in config["contracts"] if c["type"] == "layers" and c["containers"] == ["exporter"]
    ]
    assert floors["exhaustive"] is True  # a module on no floor fails `make imports`
    return [{m.strip() for m in layer.split("|")} for layer in reversed(floors["layers"])]


def test_the_floors_are_the_import_contract() -> None:
    rows = [line for line in section("The floors").splitlines() if re.match(r"\| \d+\. ", line)]
    doc_floors = [set(re.findall(r"`(\w+)`", row.split("|")[2])) for row in rows]
    assert doc_floors == contract_layers()


@cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("exporter")


def imported_by(module: str) -> set[str]:
    """The package's modules ``exporter.<module>`` imports, subpackages counted as one."""
    out = set()
    dotted = "exporter" if module == "__init__" else f"exporter.{module}"
    for imported in graph().find_modules_directly_imported_by(dotted):
        parts = imported.split(".")
        if parts[0] == "exporter" and parts[1:2] != [module]:
            out.add(parts[1] if len(parts) > 1 else "exporter")
    return out


def documented_imports() -> dict[str, set[str]]:
    """Top-level module -> the modules its line says it imports."""
    out = {}
    for item in re.split(r"\n- ", section("The modules"))[1:]:
        head = re.match(r"`(\w+)\.py`: ", item)
        if head is None:  # a subpackage's modules, held by their own contracts
            continue
        said = re.search(r"\bImports\s+(.*?)\.(?:\s|$)", item, re.S)
        out[head.group(1)] = set(re.findall(r"`(\w+)`", said.group(1))) if said else set()
    return out


def test_the_doc_says_what_each_module_imports() -> None:
    documented = documented_imports()
    top_level = {p.stem for p in PACKAGE.glob("*.py")}
    assert set(documented) == top_level
    wrong = [
        f"{name}.py imports {sorted(code - said)} (not in the doc), not {sorted(said - code)}"
        for name, said in sorted(documented.items())
        if said != (code := imported_by(name))
    ]
    assert wrong == []
