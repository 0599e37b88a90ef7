"""The one range check behind every "field must be in [low, high], got x" message.

Configs, game settings, solvers and the command line all validate through :func:`check_number`
and :func:`check_bool`, so every error names the field and its allowed range the same way. The
error is a :class:`FieldError` (a ``ValueError``) that keeps the field, the requirement and the
value apart, so that an outer layer (the ``eqx`` command, the server) can name the field its own
way (``--rounds`` for ``max_rounds``) without rewriting the text.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


class FieldError(ValueError):
    """``<field> must be <requirement>, got <value>``, with the three parts as attributes."""

    def __init__(self, field: str, requirement: str, value: Any) -> None:
        self.field, self.requirement, self.value = field, requirement, value
        super().__init__(f"{field} must be {requirement}, got {value!r}")

    def renamed(self, field: str) -> FieldError:
        """The same error for the field as another layer spells it."""
        return FieldError(field, self.requirement, self.value)


def format_bound(x: float) -> str:
    """A bound as a person reads it: ``0``, ``10000``, ``0.95``, ``inf`` (never ``1e+09``)."""
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x.is_integer() and abs(x) < 2.0**53:
        return str(int(x))
    return repr(x)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def requirement(low: float | None = None, high: float | None = None, *, low_open: bool = False,
                integer: bool = False) -> str:
    """The words after "must be": ``in [0, 1]``, ``an integer >= 1``, ``> 0``, ``a finite
    number``. Infinite bounds count as absent."""
    low = None if low is None or math.isinf(low) else low
    high = None if high is None or math.isinf(high) else high
    kind = "an integer " if integer else ""
    if low is not None and high is not None:
        return f"{kind}in {'(' if low_open else '['}{format_bound(low)}, {format_bound(high)}]"
    if low is not None:
        return f"{kind}{'>' if low_open else '>='} {format_bound(low)}"
    if high is not None:
        return f"{kind}<= {format_bound(high)}"
    return "an integer" if integer else "a finite number"


def check_number(name: str, value: Any, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, integer: bool = False, note: str = "") -> Any:
    """``value`` if it is a finite number (an ``int``, with ``integer``) in the range, else
    :class:`FieldError` naming ``name`` and the range. ``low_open``: ``low`` itself is refused.
    ``None`` or infinite bounds are absent. ``note`` follows the range in the message (a unit,
    where the bound comes from). Returns the value unchanged (its own type)."""
    ok = _is_int(value) if integer else _is_real(value) and math.isfinite(value)
    if ok and low is not None:
        ok = bool(value > low if low_open else value >= low)
    if ok and high is not None:
        ok = bool(value <= high)
    if not ok:
        req = requirement(low, high, low_open=low_open, integer=integer)
        raise FieldError(name, f"{req} {note}" if note else req, value)
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool, else :class:`FieldError` naming ``name``."""
    if not isinstance(value, bool | np.bool_):
        raise FieldError(name, "a bool (true/false)", value)
    return bool(value)


def check_choice(name: str, value: Any, allowed: tuple[str, ...] | list[str]) -> Any:
    """``value`` if it is one of ``allowed``, else :class:`FieldError` listing them."""
    if value not in allowed:
        raise FieldError(name, f"one of {list(allowed)}", value)
    return value
