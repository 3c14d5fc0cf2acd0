"""The presets shipped with the exporter: YAML files in ``presets/`` (package data), one per
preset, each the keys of an http_json account that ``provider: <preset>`` merges the account's
own keys over. Read once, at import, through the config's own YAML loader."""

from __future__ import annotations

from importlib import resources
from typing import Any

from ...yamldoc import DocumentError, load_mapping


def load_presets() -> dict[str, dict[str, Any]]:
    """Preset name -> its account keys; RuntimeError for a broken install (no files, or a file
    that is not a strict YAML mapping)."""
    out: dict[str, dict[str, Any]] = {}
    folder = resources.files(__package__ or __name__).joinpath("presets")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        try:
            data, problems = load_mapping(entry.read_text(encoding="utf-8"), "a preset")
        except DocumentError as exc:
            problems = exc.errors
        if problems:
            raise RuntimeError(f"preset {entry.name}: {'; '.join(problems)}")
        out[entry.name.removesuffix(".yaml")] = data
    if not out:  # package data missing: a broken install, not "no presets"
        raise RuntimeError(f"no preset files in {folder}")
    return out


PRESETS: dict[str, dict[str, Any]] = load_presets()
"""Preset name -> its account keys (what ``provider: <name>`` merges the account over)."""
