"""``provider: http_json``: any JSON credit or quota API described in YAML, and its presets.

An account says how to call the API (``request``: method, URL with ``{param}`` placeholders,
headers, JSON body), where the key goes (``auth``: Bearer, a named header with an optional scheme,
a query parameter, a field of the JSON body, or HTTP Basic), and how to read the answer
(``pools``: paths to ``remaining``/``used``/``limit``, optionally one pool per element of a list;
``expiry``, ``cycle_start``, ``cycle_end``; ``error_when``: errors the API reports inside a
successful answer), and what its docs say of it (``documented_rate_limit``, ``required_params``).
See docs/providers.md for the reference and a worked example.

Presets (``provider: openrouter`` ...) are the same declarative form stored as YAML files in
``presets/``: the account's own keys are merged over the preset's (RFC 7396 merge patch: maps
merge key by key, ``null`` removes a key, anything else replaces), then validated like any
``http_json`` account, so errors still name the account's place.

At run time every value is read strictly: a path missing from a response is a ``bad_response``
error naming the path, never a 0. The key never appears in a URL this module holds (query-string
auth travels as a separate parameter), in an error message or in a log line.

One module per job: :mod:`.paths` (the path language), :mod:`.templates` (``{param}``),
:mod:`.spec` (the request, auth and pool models), :mod:`.account` (the account model and preset
merging), :mod:`.bundled` (the preset files), :mod:`.values` (strict readers), :mod:`.provider`.
"""

from .account import HttpJsonAccount, merge_patch, merge_preset, preset_model
from .bundled import PRESETS
from .paths import MissingPath, parse_path, resolve
from .provider import MAX_POOLS, HttpJson
from .values import pool_name, read_number, read_timestamp

__all__ = [
    "MAX_POOLS",
    "PRESETS",
    "HttpJson",
    "HttpJsonAccount",
    "MissingPath",
    "merge_patch",
    "merge_preset",
    "parse_path",
    "pool_name",
    "preset_model",
    "read_number",
    "read_timestamp",
    "resolve",
]
