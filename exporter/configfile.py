"""What the two config files (``--config.file`` and ``--web.config.file``) share: the error that
refuses one with every problem listed, and reading the file itself."""

from __future__ import annotations

from pathlib import Path

from .safefile import FileProblem, read_file


class ConfigError(Exception):
    """A config that cannot be used; ``errors`` lists every problem as ``location: message``."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} error(s):\n" + "\n".join(errors))


def read_config_text(path: Path, limit: int) -> str:
    """The text of the config file at ``path`` (a regular UTF-8 file of at most ``limit``
    bytes); else a :class:`ConfigError` naming the file."""
    try:
        return read_file(path, limit).decode("utf-8")
    except FileProblem as exc:
        raise ConfigError(str(path), [f"(file): {exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"(file): cannot be read: {type(exc).__name__}"]) from None
