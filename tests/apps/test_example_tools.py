"""The calculator of ``realtime_client.apps.example_tools``: what it accepts and refuses."""

from __future__ import annotations

import pytest

from realtime_client.apps.example_tools import MAX_EXPRESSION_CHARS, calculate


def test_round_takes_a_number_of_digits() -> None:
    assert calculate("round(3.14159, 2)") == 3.14
    assert calculate("round(1234.5, -2)") == 1200
    assert calculate("round(2.675)") == 3
    with pytest.raises(ValueError, match="whole number of digits"):
        calculate("round(1.5, 0.5)")


def test_harmless_powers_are_computed() -> None:
    assert calculate("1.0001 ** 10000") == pytest.approx(2.71814592682)
    assert calculate("2 ** -1001") == pytest.approx(2.0**-1001)
    assert calculate("10 ** 300") == pytest.approx(1e300)


@pytest.mark.parametrize(
    "expression",
    ["9 ** 9 ** 9", "10 ** 400", "(-8) ** (1 / 3)", "2 ** 2 ** 2 ** 2 ** 2 ** 2"],
)
def test_huge_or_complex_powers_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        calculate(expression)


def test_long_or_deep_expressions_are_refused_cleanly() -> None:
    with pytest.raises(ValueError, match="too long"):
        calculate("1 + " * MAX_EXPRESSION_CHARS + "1")
    # Short enough, but nested deeper than the parser or the evaluator can recurse.
    with pytest.raises(ValueError, match="nested|not an arithmetic"):
        calculate("-" * (MAX_EXPRESSION_CHARS - 1) + "1")
    with pytest.raises(ValueError, match="nested|not an arithmetic"):
        calculate("(" * 490 + "1" + ")" * 490)
    # Long but flat expressions within the limit still work.
    assert calculate(" + ".join(["1"] * 200)) == 200
