"""``{param}`` templates of http_json: in the URL, the headers, the JSON body, the Basic auth
username and the base URLs, filled from the account's ``params`` (``{{`` and ``}}`` are literal
braces), and the check that every placeholder an account uses is defined, with its place."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

_TEMPLATE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ABSOLUTE = re.compile(r"^https?://[^/\s]+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

Loc = tuple[str, ...]


def placeholders(text: str) -> list[str]:
    """Names of the ``{param}`` placeholders in ``text`` (``{{`` and ``}}`` are literal braces;
    any other brace is literal too)."""
    return [m.group(1) for m in _TEMPLATE.finditer(text) if m.group(1) is not None]


def render(text: str, params: Mapping[str, str], encode: Callable[[str], str] = str) -> str:
    def sub(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return encode(params[match.group(1)])

    return _TEMPLATE.sub(sub, text)


def url_encode(value: str) -> str:
    return quote(value, safe="")


def render_json(node: Any, params: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return render(node, params)
    if isinstance(node, dict):
        return {render(k, params): render_json(v, params) for k, v in node.items()}
    if isinstance(node, list):
        return [render_json(v, params) for v in node]
    return node


def absolute(url: str) -> bool:
    return _ABSOLUTE.match(url) is not None


def url_problem(url: str) -> str | None:
    """Why ``url`` can be no request URL (one of its own, or a path under ``base_url``)."""
    if any(c.isspace() for c in url):
        return f'invalid URL "{url}" (contains whitespace)'
    if not absolute(url) and (url.startswith("//") or _SCHEME.match(url)):
        return f'invalid URL "{url}" (use http:// or https://, or a path)'
    return None


def json_strings(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string (keys included) of a YAML-loaded JSON value, with its place; ValueError
    for anything that is not JSON."""
    here = where or "$"
    if isinstance(node, str):
        yield here, node
    elif isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise ValueError(f"{here}: keys must be strings, got {key!r}")
            yield f"{here} (key {key!r})", key
            yield from json_strings(value, f"{where}.{key}" if where else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from json_strings(value, f"{where}[{i}]")
    elif node is not None and not isinstance(node, bool | int | float):
        raise ValueError(f"{here}: {type(node).__name__} is not a JSON value")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ValueError(f"{here}: {node} is not a JSON number")


def _undefined(text: Any, params: Mapping[str, Any]) -> str | None:
    """Why ``text`` cannot be filled from ``params`` (None: it can, or it is no string)."""
    if not isinstance(text, str):
        return None  # its own field reports a value of the wrong type
    missing = [name for name in placeholders(text) if name not in params]
    if not missing:
        return None
    names = ", ".join(f"{{{n}}}" for n in dict.fromkeys(missing))
    defined = ", ".join(sorted(params)) or "none"
    return f"placeholder {names} is not defined: add it to params (defined: {defined})"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def template_problems(account: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
    """(place, problem) for every template of an http_json account (its keys as loaded, preset
    merged) that uses a placeholder its ``params`` lack, and for a relative request URL without
    a ``base_url``. Values of the wrong type are left to their own fields."""
    params = account.get("params", {})
    if not isinstance(params, dict):
        return  # params themselves are invalid; that error is reported on its own
    base_url = account.get("base_url")
    templates: list[tuple[Loc, Any]] = [(("base_url",), base_url)]
    for suffix, url in _mapping(account.get("base_url_if_key_suffix")).items():
        templates.append((("base_url_if_key_suffix", str(suffix)), url))
    request = _mapping(account.get("request"))
    templates.append((("request", "url"), request.get("url")))
    for name, value in _mapping(request.get("headers")).items():
        templates.append((("request", "headers", str(name)), value))
    templates.append((("auth", "username"), _mapping(account.get("auth")).get("username")))
    for loc, text in templates:
        if (problem := _undefined(text, params)) is not None:
            yield loc, problem
    try:
        body = list(json_strings(request.get("body"), ""))
    except ValueError:
        body = []  # not JSON: request.body says so
    for where, text in body:
        if (problem := _undefined(text, params)) is not None:
            yield ("request", "body"), f"{where}: {problem}"
    url = request.get("url")
    if isinstance(url, str) and not (base_url or absolute(url) or url_problem(url)):
        yield (
            ("request", "url"),
            f'"{url}" is relative, so base_url must be set (or give a full URL)',
        )
