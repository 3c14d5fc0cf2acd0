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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    """A param's value as the account will hold it (numbers become strings); None for a value
    of another type, which ``params`` reports on its own."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _value_problem(value: str, where: str) -> str | None:
    """Why a param's ``value`` cannot fill a placeholder of a URL's path or of the Basic auth
    username (None: it can)."""
    if not value.strip():
        return f"is empty, but fills a placeholder in {where}"
    if where != "auth.username" and value in (".", ".."):
        return f'"{value}" would change the path of {where}'
    if where == "auth.username" and ":" in value:
        return "cannot contain ':', as it fills the Basic auth username"
    return None


def _checked_names(loc: Loc, text: str) -> list[str]:
    """The placeholders of ``text`` whose values :func:`_value_problem` checks: those of a URL's
    path (not its query string) and of the Basic auth username."""
    if loc[0] in ("base_url", "base_url_if_key_suffix") or loc == ("request", "url"):
        return placeholders(text.split("?", 1)[0])
    return placeholders(text) if loc == ("auth", "username") else []


def template_problems(account: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
    """(place, problem) for every template of an http_json account (its keys as loaded, preset
    merged) that uses a placeholder its ``params`` lack or cannot fill, for a param in
    ``required_params`` that ``params`` lack (at ``params.<name>``, saying what it is), and for
    a relative request URL without a ``base_url``. Values of the wrong type are left to their
    own fields."""
    params = account.get("params", {})
    if not isinstance(params, dict):
        return  # params themselves are invalid; that error is reported on its own
    required = _mapping(account.get("required_params"))
    for name, what in required.items():
        if name not in params:
            yield ("params", str(name)), f"is required: {what}"
    base_url = account.get("base_url")
    templates: list[tuple[Loc, Any]] = [(("base_url",), base_url)]
    for suffix, url in _mapping(account.get("base_url_if_key_suffix")).items():
        templates.append((("base_url_if_key_suffix", str(suffix)), url))
    request = _mapping(account.get("request"))
    templates.append((("request", "url"), request.get("url")))
    for name, value in _mapping(request.get("headers")).items():
        templates.append((("request", "headers", str(name)), value))
    templates.append((("auth", "username"), _mapping(account.get("auth")).get("username")))
    try:
        body = list(json_strings(request.get("body"), ""))
    except ValueError:
        body = []  # not JSON: request.body says so
    templates += [(("request", "body"), text) for _, text in body]
    where_body = {text: where for where, text in body}
    reported: set[str] = set()  # one problem per param is enough
    for loc, text in templates:
        if not isinstance(text, str):
            continue  # its own field reports a value of the wrong type
        missing = [
            n for n in dict.fromkeys(placeholders(text)) if n not in params and n not in required
        ]
        if missing:
            shown = ", ".join(f"{{{n}}}" for n in missing)
            defined = ", ".join(sorted(params)) or "none"
            problem = f"placeholder {shown} is not defined: add it to params (defined: {defined})"
            if loc == ("request", "body"):
                problem = f"{where_body[text]}: {problem}"
            yield loc, problem
        where = "base_url" if loc[0].startswith("base_url") else ".".join(loc)
        for name in _checked_names(loc, text):
            value = _text(params.get(name))
            trouble = None if value is None else _value_problem(value, where)
            if trouble is not None and name not in reported:
                reported.add(name)
                yield ("params", name), trouble
    url = request.get("url")
    if isinstance(url, str) and not (base_url or absolute(url) or url_problem(url)):
        yield (
            ("request", "url"),
            f'"{url}" is relative, so base_url must be set (or give a full URL)',
        )
