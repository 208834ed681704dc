"""The shared argument checks (ncp_control.checks): types, bools, NaN/inf, bounds, choices, messages."""

import math
import subprocess
import sys
from fractions import Fraction
from typing import Literal

import numpy as np
import pytest

from ncp_control import checks
from ncp_control.checks import ArgumentTypeError


def test_importing_the_checks_imports_neither_torch_nor_numpy():
    """The envs import them (never torch), and so does the command line's --help (which runs without numpy)."""
    code = (
        "import sys, ncp_control.checks; "
        "assert not {'torch', 'numpy'} & set(sys.modules), sorted({'torch', 'numpy'} & set(sys.modules))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_type_error_is_a_type_error_and_a_value_error():
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ValueError)


# --------------------------------------------------------------------------------------------------------------
# Integers
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(2), 10**30])
def test_positive_int_returns_a_plain_int(value):
    out = checks.positive_int("n", value)
    assert out == value and type(out) is int


@pytest.mark.parametrize(
    "value, error",
    [
        (0, ValueError),
        (-3, ValueError),
        (np.int32(0), ValueError),
        (2.0, ArgumentTypeError),
        (True, ArgumentTypeError),
        (np.bool_(True), ArgumentTypeError),
        ("3", ArgumentTypeError),
        (None, ArgumentTypeError),
        (float("nan"), ArgumentTypeError),
    ],
)
def test_positive_int_refuses(value, error):
    with pytest.raises(error, match="^episodes must be a positive int, got ") as info:
        checks.positive_int("episodes", value)
    if error is ValueError:
        assert not isinstance(info.value, TypeError)


def test_type_messages_name_the_type_and_explain_bools():
    with pytest.raises(TypeError, match=r"n must be a positive int, got float 2\.5$"):
        checks.positive_int("n", 2.5)
    with pytest.raises(TypeError, match=r"got bool True \(True / False is not accepted as a number\)"):
        checks.positive_int("n", True)
    with pytest.raises(TypeError, match="got bool False"):
        checks.positive_real("x", False)


def test_value_messages_show_numpy_values_as_plain_numbers():
    with pytest.raises(ValueError, match=r"n must be a positive int, got -1$"):
        checks.positive_int("n", np.int64(-1))


def test_non_negative_int():
    assert checks.non_negative_int("k", 0) == 0
    with pytest.raises(ValueError, match="k must be a non-negative int, got -1"):
        checks.non_negative_int("k", -1)
    with pytest.raises(TypeError, match="k must be a non-negative int"):
        checks.non_negative_int("k", 1.0)


def test_hints_go_in_parentheses():
    with pytest.raises(ValueError, match=r"^c must be a non-negative int \(0 turns it off\), got -2$"):
        checks.non_negative_int("c", -2, hint="0 turns it off")


@pytest.mark.parametrize(
    "low, high, value, message",
    [
        (1, None, 0, r"units must be an integer >= 1, got 0"),
        (None, 3, 4, r"units must be an integer <= 3, got 4"),
        (1, 3, 4, r"units must be an integer in \[1, 3\], got 4"),
        (0, 2, -1, r"units must be an integer in \[0, 2\], got -1"),
    ],
)
def test_int_in_range_bounds(low, high, value, message):
    with pytest.raises(ValueError, match=message):
        checks.int_in_range("units", value, low, high)


def test_int_in_range_is_inclusive_and_unbounded_by_default():
    assert checks.int_in_range("i", 1, 1, 3) == 1 and checks.int_in_range("i", 3, 1, 3) == 3
    assert checks.int_in_range("i", -(10**20)) == -(10**20)
    with pytest.raises(TypeError, match=r"i must be an integer in \[1, 3\] \(a neuron id\), got str '2'"):
        checks.int_in_range("i", "2", 1, 3, hint="a neuron id")


def test_seed():
    assert checks.seed("seed", 0) == 0 and type(checks.seed("seed", np.int64(5))) is int
    assert checks.seed("seed", 2**40) == 2**40
    assert checks.seed("seed", None, optional=True) is None
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        checks.seed("seed", -1)
    with pytest.raises(TypeError, match="seed must be a non-negative int, got NoneType None"):
        checks.seed("seed", None)
    with pytest.raises(ValueError, match="non-negative int or None"):
        checks.seed("seed", -1, optional=True)
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 4294967295\], got 4294967296"):
        checks.seed("seed", 2**32, high=2**32 - 1)
    with pytest.raises(TypeError):
        checks.seed("seed", 1.0)


# --------------------------------------------------------------------------------------------------------------
# Reals
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 0.5, np.float32(0.25), np.int64(2), Fraction(1, 3), 1e-300])
def test_positive_real_returns_a_plain_float(value):
    out = checks.positive_real("x", value)
    assert out == pytest.approx(float(value)) and type(out) is float


@pytest.mark.parametrize("value", [0, 0.0, -1e-9, float("nan"), float("inf"), -math.inf, np.float64("nan")])
def test_positive_real_refuses_zero_negatives_and_non_finite_values(value):
    with pytest.raises(ValueError, match="^lr_scale must be a positive number") as info:
        checks.positive_real("lr_scale", value)
    assert not isinstance(info.value, TypeError)


def test_non_finite_values_are_named_as_such():
    with pytest.raises(ValueError, match="got nan, which is not a finite number"):
        checks.positive_real("x", float("nan"))
    with pytest.raises(ValueError, match="got inf, which is not a finite number"):
        checks.real_in_range("x", math.inf, 0.0)
    with pytest.raises(ValueError, match=r"^fill must be a finite number, got -inf$"):
        checks.real_in_range("fill", -math.inf)


@pytest.mark.parametrize("value", ["1", None, True, [1.0], 1j, np.array([1.0])])
def test_reals_refuse_other_types(value):
    with pytest.raises(ArgumentTypeError, match="x must be a non-negative number"):
        checks.non_negative_real("x", value)


def test_non_negative_real_accepts_zero():
    assert checks.non_negative_real("x", 0) == 0.0
    with pytest.raises(ValueError, match="x must be a non-negative number, got -0.5"):
        checks.non_negative_real("x", -0.5)


@pytest.mark.parametrize(
    "kwargs, ok, bad, text",
    [
        (dict(low=0.0, high=1.0), [0.0, 1.0, 0.5], [-0.1, 1.1], r"in \[0.0, 1.0\]"),
        (dict(low=0.0, high=1.0, high_open=True), [0.0, 0.99], [1.0], r"in \[0.0, 1.0\)"),
        (dict(low=0.0, high=1.0, low_open=True, high_open=True), [0.5], [0.0, 1.0], r"in \(0.0, 1.0\)"),
        (dict(low=-1.0), [-1.0, 1e9], [-1.5], r">= -1.0"),
        (dict(low=0.0, low_open=True), [1e-9], [0.0], r"> 0.0"),
        (dict(high=2.0), [-1e9, 2.0], [2.5], r"<= 2.0"),
    ],
)
def test_real_in_range_bounds(kwargs, ok, bad, text):
    for value in ok:
        assert checks.real_in_range("s", value, **kwargs) == value
    for value in bad:
        with pytest.raises(ValueError, match=rf"^s must be {text}, got {value}"):
            checks.real_in_range("s", value, **kwargs)
    with pytest.raises(TypeError, match=rf"^s must be a real number {text}, got str"):
        checks.real_in_range("s", "0.5", **kwargs)
    with pytest.raises(ValueError, match="not a finite number"):
        checks.real_in_range("s", float("nan"), **kwargs)


def test_probability():
    assert checks.probability("p", 0) == 0.0 and checks.probability("p", 1) == 1.0
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        checks.probability("p", 1.5)
    with pytest.raises(ValueError, match=r"confidence must be a probability in \(0, 1\) \(e.g. 0.95, not 95\), got 95"):
        checks.probability("confidence", 95, open_interval=True, hint="e.g. 0.95, not 95")
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        checks.probability("c", 1.0, open_interval=True)
    with pytest.raises(ValueError, match="not a finite number"):
        checks.probability("p", float("nan"))


# --------------------------------------------------------------------------------------------------------------
# Choices, booleans, indices
# --------------------------------------------------------------------------------------------------------------

Mode = Literal["default", "pure", "no_gate"]


@pytest.mark.parametrize(
    "allowed",
    [Mode, ("default", "pure", "no_gate"), ["default", "pure", "no_gate"], {"default": 1, "pure": 2, "no_gate": 3}],
)
def test_choice_accepts_literals_and_collections(allowed):
    assert checks.choice("mode", "pure", allowed) == "pure"
    with pytest.raises(ValueError, match=r"^mode must be one of \('default', 'pure', 'no_gate'\), got 'fast'$"):
        checks.choice("mode", "fast", allowed)


def test_choice_suggests_the_closest_values():
    with pytest.raises(ValueError, match=r"got 'pur'; did you mean 'pure'\?$"):
        checks.choice("mode", "pur", Mode)
    with pytest.raises(ValueError, match=r"did you mean 'no_gate'\?"):
        checks.choice("mode", "nogate", Mode)
    with pytest.raises(ValueError, match=r"got 'lts'; did you mean 'ltc'\?$"):
        checks.choice("policy", "lts", ("ltc", "cfc", "lstm", "mlp"))
    with pytest.raises(ValueError, match=r"did you mean 'abe' or 'abc'\?$"):
        checks.choice("x", "abd", ("abc", "abe", "zzz"))


def test_choice_without_a_close_match_or_with_an_odd_value_only_lists():
    with pytest.raises(ValueError) as info:
        checks.choice("mode", "zzzzzz", Mode)
    assert "did you mean" not in str(info.value)
    for odd in (3, None, np.array(["pure", "pure"]), ["pure"]):
        with pytest.raises(ValueError, match="mode must be one of"):
            checks.choice("mode", odd, Mode)


def test_choice_of_non_strings():
    assert checks.choice("k", 2, (1, 2, 3)) == 2
    with pytest.raises(ValueError, match=r"k must be one of \(1, 2, 3\), got 4"):
        checks.choice("k", 4, (1, 2, 3))


def test_choice_needs_a_collection():
    with pytest.raises(TypeError, match="allowed must be a typing.Literal or a collection"):
        checks.choice("mode", "a", "abc")


def test_boolean():
    assert checks.boolean("flag", True) is True and checks.boolean("flag", np.bool_(False)) is False
    for value in (1, 0, "True", None):
        with pytest.raises(ArgumentTypeError, match="flag must be True or False, got"):
            checks.boolean("flag", value)


def test_indices():
    assert checks.indices("indices", [2, np.int64(0)], 4) == (2, 0)
    assert checks.indices("indices", range(3), 3) == (0, 1, 2)
    with pytest.raises(ValueError, match="indices must name at least one observation entry, got an empty"):
        checks.indices("indices", [], 4, what="observation entry")
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\), got \(4,\)"):
        checks.indices("indices", [4], 4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        checks.indices("indices", [-1], 4)
    with pytest.raises(ValueError, match=r"indices must not repeat, got \(1, 1\)"):
        checks.indices("indices", [1, 1], 4)
    for bad in ([0.5], [True], "01", 3, None):
        with pytest.raises(ArgumentTypeError, match="indices must be a sequence of ints"):
            checks.indices("indices", bad, 4)


def test_named_reals():
    ranges = {"gain": (0.0, 5.0), "bias": (-0.1, 0.1)}
    assert checks.named_reals("parameter", {"gain": 2, "bias": np.float32(0.05)}, ranges) == {
        "gain": 2.0,
        "bias": pytest.approx(0.05),
    }
    with pytest.raises(ValueError, match="unknown parameter 'mass' of the car; valid: gain, bias"):
        checks.named_reals("parameter", {"mass": 1.0}, ranges, owner="the car")
    with pytest.raises(ValueError, match=r"gain must be .*\[0.0, 5.0\]|gain must be .*0.*5"):
        checks.named_reals("parameter", {"gain": 6.0}, ranges)
    with pytest.raises(TypeError):
        checks.named_reals("parameter", {"gain": "fast"}, ranges)
