"""The one range check: its messages, what it accepts and refuses, and renaming a field."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from eqx_jax.checks import FieldError, check_bool, check_choice, check_number, format_bound


@pytest.mark.parametrize("kwargs, value, message", [
    ({"low": 0.0, "high": 1.0}, 1.5, "x must be in [0, 1], got 1.5"),
    ({"low": 0.0, "high": 1.0, "low_open": True}, 0.0, "x must be in (0, 1], got 0.0"),
    ({"low": 0.0, "low_open": True}, float("nan"), "x must be > 0, got nan"),
    ({"low": 1, "integer": True}, 2.5, "x must be an integer >= 1, got 2.5"),
    ({"low": 1, "integer": True}, True, "x must be an integer >= 1, got True"),
    ({"low": 1, "high": 1000, "integer": True}, 0, "x must be an integer in [1, 1000], got 0"),
    ({"high": 5.0}, 6.0, "x must be <= 5, got 6.0"),
    ({"low": -math.inf, "high": math.inf}, math.inf, "x must be a finite number, got inf"),
    ({"low": 1, "high": 86400, "note": "seconds"}, 0, "x must be in [1, 86400] seconds, got 0"),
    ({"low": 0.0, "high": 0.95}, "a", "x must be in [0, 0.95], got 'a'"),
])
def test_refusals_name_the_field_and_its_range(kwargs, value, message):
    with pytest.raises(FieldError) as e:
        check_number("x", value, **kwargs)
    assert str(e.value) == message
    assert (e.value.field, e.value.value) == ("x", value) or math.isnan(value)


@pytest.mark.parametrize("value", [0, 1, 0.5, np.float32(0.25), np.int64(1), Fraction(1, 3)])
def test_numbers_in_range_pass_unchanged(value):
    assert check_number("x", value, 0, 1) is value


def test_bool_choice_and_renaming():
    assert check_bool("flag", np.True_) is True
    with pytest.raises(FieldError, match=r"flag must be a bool \(true/false\), got 1"):
        check_bool("flag", 1)
    assert check_choice("head", "beta", ("beta", "tanh_normal")) == "beta"
    with pytest.raises(FieldError, match=r"head must be one of \['beta'\], got 'x'"):
        check_choice("head", "x", ("beta",))
    err = FieldError("max_rounds", "an integer in [1, 1000]", 0).renamed("--rounds")
    assert str(err) == "--rounds must be an integer in [1, 1000], got 0"
    assert isinstance(err, ValueError)


def test_bounds_read_as_people_write_them():
    assert [format_bound(x) for x in (0.0, 1e9, 0.95, -math.inf, 2**60)] == [
        "0", "1000000000", "0.95", "-inf", "1.152921504606847e+18"]
