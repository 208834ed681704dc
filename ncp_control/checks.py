"""Argument checks shared by the library (``ncp_control``), the environments (``ncp_control.envs``) and the agents.

Every check has the signature ``check(name, value, ...)``: first the argument's name (as the caller wants it shown:
``"episodes"``, ``"--episodes"``, ``"study.cpus"``), then the value, then the check's own options. It returns the
checked value, converted to a plain Python ``int`` / ``float`` for the numeric checks (so a ``numpy.int64`` or a
``numpy.float32`` comes back as a JSON-friendly number), and raises otherwise.

Checks: :func:`int_in_range`, :func:`positive_int`, :func:`non_negative_int`, :func:`seed` (integers);
:func:`real_in_range`, :func:`positive_real`, :func:`non_negative_real`, :func:`probability` (finite reals);
:func:`choice` (one of a ``Literal`` or a collection), :func:`boolean`, :func:`indices` (distinct ints in
``[0, size)``).

Exception policy
    * A value of the wrong type raises :class:`ArgumentTypeError`, which is a ``TypeError`` *and* a ``ValueError``:
      ``except TypeError`` catches it, and so does code (such as the command line, which prints a ``ValueError`` as
      one line) that treats every bad argument as a bad value. ``bool`` is never a number here (``True`` is
      almost always a swapped argument), and neither is ``numpy.bool_``.
    * A value of the right type that is not allowed (out of range, NaN or infinite, not among the choices, ...)
      raises ``ValueError``.
    * The message names the argument, says what it must be (the rule to follow, plus the caller's ``hint`` in
      parentheses, e.g. ``"seconds"``) and what was given (with its type, for a type error); for a choice it lists
      the allowed values and suggests the closest ones.

The CLI wraps these checks for its flags (``ncp_control.agents.commands.checks``) and re-raises their errors as
``UsageError``.

May import: the standard library only: the command line imports this module for ``--help``, which works without
numpy installed, and ``ncp_control.envs`` imports it (never torch). numpy values are recognised all the same
(numpy registers its scalar types with :mod:`numbers`; a ``numpy.bool_`` is found through ``sys.modules``).
"""

from __future__ import annotations

import difflib
import math
import numbers
import operator
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args, get_origin

__all__ = [
    "ArgumentTypeError",
    "int_in_range",
    "positive_int",
    "non_negative_int",
    "real_in_range",
    "positive_real",
    "non_negative_real",
    "probability",
    "choice",
    "named_reals",
    "boolean",
    "seed",
    "indices",
]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a ``TypeError``, and a ``ValueError`` for code that reports bad values)."""


def _is_bool(value: Any) -> bool:
    """``bool`` or ``numpy.bool_`` (without importing numpy: if it is not imported, no value is a numpy bool)."""
    numpy = sys.modules.get("numpy")
    return isinstance(value, bool) or (numpy is not None and isinstance(value, numpy.bool_))


def _got(value: Any) -> str:
    """``float 2.5``, ``bool True``: the given value with its type, for a type error."""
    if _is_bool(value):
        return f"{type(value).__name__} {value!r} (True / False is not accepted as a number)"
    return f"{type(value).__name__} {value!r}"


def _suffix(hint: str) -> str:
    return f" ({hint})" if hint else ""


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not _is_bool(value)


# --------------------------------------------------------------------------------------------------------------
# Integers
# --------------------------------------------------------------------------------------------------------------


def _int_range_text(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"in [{low}, {high}]"
    if low is not None:
        return f">= {low}"
    if high is not None:
        return f"<= {high}"
    return ""


def int_in_range(name: str, value: Any, low: int | None = None, high: int | None = None, *, hint: str = "") -> int:
    """``value`` as an ``int`` after checking it is an integer in ``[low, high]`` (a bound of None: no bound).

    ``hint`` is added to the message in parentheses (e.g. ``"the number of inter neurons"``).
    """
    allowed = " ".join(filter(None, ("an integer", _int_range_text(low, high))))
    if not _is_integer(value):
        raise ArgumentTypeError(f"{name} must be {allowed}{_suffix(hint)}, got {_got(value)}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}{_suffix(hint)}, got {value}")
    return value


def _int_at_least(name: str, value: Any, low: int, what: str, hint: str) -> int:
    if not _is_integer(value):
        raise ArgumentTypeError(f"{name} must be {what}{_suffix(hint)}, got {_got(value)}")
    value = int(value)
    if value < low:
        raise ValueError(f"{name} must be {what}{_suffix(hint)}, got {value}")
    return value


def positive_int(name: str, value: Any, *, hint: str = "") -> int:
    """``value`` as an ``int`` after checking it is an integer >= 1."""
    return _int_at_least(name, value, 1, "a positive int", hint)


def non_negative_int(name: str, value: Any, *, hint: str = "") -> int:
    """``value`` as an ``int`` after checking it is an integer >= 0."""
    return _int_at_least(name, value, 0, "a non-negative int", hint)


def seed(name: str, value: Any, *, optional: bool = False, high: int | None = None) -> int | None:
    """A random seed: an integer >= 0 (and <= ``high`` when given); None passes through when ``optional``."""
    if value is None and optional:
        return None
    if high is not None:
        return int_in_range(name, value, 0, high)
    return _int_at_least(name, value, 0, "a non-negative int" + ("" if not optional else " or None"), "")


def indices(name: str, value: Any, size: int, *, what: str = "entry") -> tuple[int, ...]:
    """``value`` as a tuple of ints in ``[0, size)``: a non-empty sequence of integers without repeats.

    ``what`` names one indexed thing in the message (``"observation entry"``).
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ArgumentTypeError(f"{name} must be a sequence of ints, got {_got(value)}")
    items = list(value)
    bad = [i for i in items if not _is_integer(i)]
    if bad:
        raise ArgumentTypeError(f"{name} must be a sequence of ints, got {items!r} ({_got(bad[0])} is not an int)")
    kept = tuple(operator.index(i) for i in items)
    if not kept:
        raise ValueError(f"{name} must name at least one {what}, got an empty sequence")
    if any(i < 0 or i >= size for i in kept):
        raise ValueError(f"{name} must lie in [0, {size}), got {kept}")
    if len(set(kept)) != len(kept):
        raise ValueError(f"{name} must not repeat, got {kept}")
    return kept


# --------------------------------------------------------------------------------------------------------------
# Reals
# --------------------------------------------------------------------------------------------------------------


def _interval_text(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if math.isinf(low) and math.isinf(high):
        return ""
    if math.isinf(high):
        return f"{'>' if low_open else '>='} {low}"
    if math.isinf(low):
        return f"{'<' if high_open else '<='} {high}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def _real(
    name: str,
    value: Any,
    low: float,
    high: float,
    low_open: bool,
    high_open: bool,
    what: str,
    type_what: str,
    hint: str,
) -> float:
    if not _is_real(value):
        raise ArgumentTypeError(f"{name} must be {type_what}{_suffix(hint)}, got {_got(value)}")
    value = float(value)
    if not math.isfinite(value):
        why = "" if "finite" in what else ", which is not a finite number"
        raise ValueError(f"{name} must be {what}{_suffix(hint)}, got {value!r}{why}")
    above = value >= high if high_open else value > high
    below = value <= low if low_open else value < low
    if above or below:
        raise ValueError(f"{name} must be {what}{_suffix(hint)}, got {value!r}")
    return value


def real_in_range(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> float:
    """``value`` as a ``float`` after checking it is a finite real number in ``[low, high]``.

    ``low_open`` / ``high_open`` exclude the bound (``(0, 1)``: ``low_open=True, high_open=True``); an infinite
    bound is no bound. NaN and +-inf are always refused.
    """
    interval = _interval_text(low, high, low_open, high_open)
    return _real(
        name,
        value,
        low,
        high,
        low_open,
        high_open,
        interval or "a finite number",
        " ".join(filter(None, ("a real number", interval))),
        hint,
    )


def positive_real(name: str, value: Any, *, hint: str = "") -> float:
    """``value`` as a ``float`` after checking it is a finite real number > 0."""
    return _real(name, value, 0.0, math.inf, True, False, "a positive number", "a positive number", hint)


def non_negative_real(name: str, value: Any, *, hint: str = "") -> float:
    """``value`` as a ``float`` after checking it is a finite real number >= 0."""
    return _real(name, value, 0.0, math.inf, False, False, "a non-negative number", "a non-negative number", hint)


def probability(name: str, value: Any, *, open_interval: bool = False, hint: str = "") -> float:
    """``value`` as a ``float`` in ``[0, 1]`` (in ``(0, 1)`` with ``open_interval``)."""
    what = "a probability in (0, 1)" if open_interval else "a probability in [0, 1]"
    return _real(name, value, 0.0, 1.0, open_interval, open_interval, what, what, hint)


# --------------------------------------------------------------------------------------------------------------
# Choices
# --------------------------------------------------------------------------------------------------------------


def _allowed_values(allowed: Any) -> tuple:
    if get_origin(allowed) is Literal:
        return get_args(allowed)
    if isinstance(allowed, (str, bytes)) or not isinstance(allowed, Iterable):
        raise TypeError(f"allowed must be a typing.Literal or a collection of values, got {allowed!r}")
    return tuple(allowed)  # a mapping gives its keys


def _is_one_of(value: Any, allowed: tuple) -> bool:
    try:
        return value in allowed
    except (TypeError, ValueError):  # e.g. an array, whose == is elementwise
        return False


def choice(name: str, value: Any, allowed: Any, *, hint: str = "") -> Any:
    """``value`` after checking it is one of ``allowed``: a ``typing.Literal``, a mapping (its keys) or a collection.

    The message lists the allowed values and, for a string, suggests the closest ones (``difflib``).
    """
    options = _allowed_values(allowed)
    if _is_one_of(value, options):
        return value
    message = f"{name} must be one of {options!r}{_suffix(hint)}, got {value!r}"
    if isinstance(value, str):
        names = {str(option): option for option in options}
        close = difflib.get_close_matches(value, list(names), n=3, cutoff=0.6)
        if close:
            message += f"; did you mean {' or '.join(repr(names[c]) for c in close)}?"
    raise ValueError(message)


def named_reals(
    what: str, values: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]], *, owner: str = ""
) -> dict[str, float]:
    """``values`` (name -> value) as floats after checking each name is a key of ``ranges`` (else ``ValueError``:
    "unknown WHAT 'name' of OWNER; valid: ...") and each value a finite real in its inclusive ``(low, high)``
    (:func:`real_in_range`). For keyword settings such as an env's ``set_params(**params)``."""
    checked = {}
    for name, value in values.items():
        if name not in ranges:
            raise ValueError(f"unknown {what} {name!r}{f' of {owner}' if owner else ''}; valid: {', '.join(ranges)}")
        checked[name] = real_in_range(name, value, *ranges[name])
    return checked


def boolean(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` after checking it is ``True`` or ``False`` (a ``numpy.bool_`` too); integers such as
    0 / 1 are refused, to catch swapped arguments."""
    if not _is_bool(value):
        raise ArgumentTypeError(f"{name} must be True or False, got {_got(value)}")
    return bool(value)
