"""The path language of http_json: where a value is in a JSON document.

``data.items[0].value``, ``["key.with.dots"]``, ``[-1]`` (last element), ``$`` (the whole
document, or the whole element under ``for_each``); a leading ``$.`` is allowed and ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator

from ...model import PollError, Reason
from ..base import bad, json_type

_PATH_TOKEN = re.compile(r'(\.)?([^.\[\]"\s]+)|\[(-?\d+)\]|\["([^"\]]+)"\]')
_BARE_KEY = re.compile(r'[^.\[\]"\s]+')

PathPart = str | int


class MissingPath(PollError):
    """A path absent from a response: ``bad_response``, unless the pool or field is optional."""

    def __init__(self, message: str) -> None:
        super().__init__(Reason.BAD_RESPONSE, message)


def parse_path(text: str) -> tuple[PathPart, ...]:
    """Split a path into keys and list indexes; ``ValueError`` naming the path if invalid."""
    if text == "$":
        return ()
    parts: list[PathPart] = []
    pos = 0
    if text.startswith(("$.", "$[")):  # JSONPath habit: "$.data.x" is "data.x"
        text = text[2:] if text[1] == "." else text[1:]
        if not text or text[0] == ".":
            raise ValueError(f'invalid path "${text}"')
    while pos < len(text):
        match = _PATH_TOKEN.match(text, pos)
        if match is None:
            break
        dot, key, index, quoted = match.groups()
        if key is not None:
            # A bare key needs a dot before it, except at the very start.
            if (pos == 0) == (dot is not None):
                break
            parts.append(key)
        elif index is not None:
            parts.append(int(index))
        else:
            parts.append(quoted)
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(
            f'invalid path "{text}" (use e.g. data.total, items[0].value, ["odd.key"], or $)'
        )
    return tuple(parts)


def check_path(text: str) -> str:
    """``text`` if it is a valid path; ``ValueError`` otherwise."""
    parse_path(text)
    return text


PathStr = Annotated[str, AfterValidator(check_path)]


def join_path(prefix: str, path: str) -> str:
    """Display name of ``path`` read inside the element at ``prefix`` (for messages)."""
    if path == "$":
        return prefix
    if not prefix:
        return path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def _part_text(parts: tuple[PathPart, ...]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _BARE_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out or "$"


def resolve(data: Any, path: str, where: str = "") -> Any:
    """The value at ``path`` in ``data``. ``MissingPath`` when a key or index is absent,
    ``PollError(BAD_RESPONSE)`` when the document has another shape (e.g. a string where an
    object belongs). Messages name the full path, prefixed by ``where``."""
    parts = parse_path(path)
    shown = join_path(where, path) if where else path
    current = data
    for i, part in enumerate(parts):
        at = _part_text(parts[:i]) if i else "$"
        if isinstance(part, int):
            if not isinstance(current, list):
                raise bad(f"{shown}: expected an array at {at}, got {json_type(current)}")
            if not -len(current) <= part < len(current):
                raise MissingPath(f"{shown} is missing (the array at {at} has {len(current)})")
            current = current[part]
        else:
            if not isinstance(current, dict):
                raise bad(f"{shown}: expected an object at {at}, got {json_type(current)}")
            if part not in current:
                raise MissingPath(f"{shown} is missing")
            current = current[part]
    return current
