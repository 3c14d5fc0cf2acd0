"""Converters for the fields of a simulated account.

Each one checks a value set with :meth:`~exporter.simulator.Simulator.add_account`,
:meth:`~exporter.simulator.Simulator.update` or the ``/_sim/`` control API and returns it as the
account keeps it, or raises :class:`TypeError` / :class:`ValueError` saying what it expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Converter = Callable[[Any], Any]


def to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def opt_int(value: Any) -> int | None:
    return None if value is None else to_int(value)


def positive_int(value: Any) -> int:
    number = to_int(value)
    if number <= 0:
        raise ValueError(f"expected an integer > 0, got {value!r}")
    return number


def opt_positive_int(value: Any) -> int | None:
    return None if value is None else positive_int(value)


def to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def non_negative(value: Any) -> float:
    number = to_float(value)
    if number < 0 or math.isnan(number):
        raise ValueError(f"expected a number >= 0, got {value!r}")
    return number


def to_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def opt_str(value: Any) -> str | None:
    return None if value is None else to_str(value)


def str_list(value: Any) -> list[str]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return [to_str(v) for v in value]


def choice(value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
    return str(value)
