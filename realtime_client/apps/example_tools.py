"""Example tools for ``realtime-chat --tools``: a (simulated) weather report and a calculator.

``realtime-chat`` loads this module by default. Point ``--tools`` at your own module (a
dotted name or a ``.py`` file) to give the model other functions: the module's ``TOOLS``
list if it has one, else every public function defined in it, becomes a tool. A tool's
name, description and argument schema come from its signature and docstring (see
:mod:`realtime_client.tools`).
"""

from __future__ import annotations

import ast
import math
import operator
import zlib
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["MAX_EXPRESSION_CHARS", "TOOLS", "calculate", "get_weather"]

_CONDITIONS = ("sunny", "partly cloudy", "overcast", "light rain", "windy", "foggy")


async def get_weather(
    city: str, unit: Literal["celsius", "fahrenheit"] = "celsius"
) -> dict[str, Any]:
    """Current weather for a city (simulated: the same city always gets the same weather).

    Args:
        city: The city, e.g. "Paris".
        unit: Temperature unit.
    """
    # Derived from the name, not fetched: the example must work offline and stay
    # deterministic so tests can check it.
    seed = zlib.crc32(city.strip().lower().encode())
    temp_c = -5 + seed % 36
    temp = temp_c if unit == "celsius" else round(temp_c * 9 / 5 + 32)
    return {
        "city": city,
        "temperature": temp,
        "unit": unit,
        "conditions": _CONDITIONS[(seed >> 8) % len(_CONDITIONS)],
        "simulated": True,
    }


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _round(value: float, ndigits: float | None = None) -> float:
    # Arguments arrive as floats; round() wants an int number of digits.
    if ndigits is None:
        return float(round(value))
    if not ndigits.is_integer():
        raise ValueError(f"round() needs a whole number of digits, got {ndigits:g}")
    return round(value, int(ndigits))


_FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": _round,
}
#: Longest expression accepted, in characters (deep nesting would exhaust the stack).
MAX_EXPRESSION_CHARS = 1000
# Every number is a float, so ** cannot build a huge integer: a result too large for a
# float raises OverflowError at once (9 ** 9 ** 9), and no exponent cap is needed.


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise ValueError("booleans are not numbers here")
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        value = _BINARY[type(node.op)](left, right)
        if isinstance(value, complex):  # e.g. (-8) ** (1/3)
            raise ValueError("the result is not a real number")
        return float(value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return float(_UNARY[type(node.op)](_evaluate(node.operand)))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return float(_FUNCTIONS[node.func.id](*(_evaluate(a) for a in node.args)))
    raise ValueError(f"unsupported expression: {ast.unparse(node)!r}")


def calculate(expression: str) -> float:
    """Evaluate an arithmetic expression, e.g. "17 * 23" or "sqrt(2) / 2".

    Supports + - * / // % **, parentheses, and sqrt(), abs(), round(x) and
    round(x, digits).

    Args:
        expression: The expression to evaluate, at most ``MAX_EXPRESSION_CHARS`` long.

    Raises:
        ValueError: Not a plain arithmetic expression, too long or too deeply nested, or
            it cannot be computed (division by zero, overflow, not a real number).
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(
            f"expression too long ({len(expression)} characters, at most {MAX_EXPRESSION_CHARS})"
        )
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from exc
    except (RecursionError, MemoryError) as exc:
        raise ValueError("expression too deeply nested") from exc
    try:
        result = _evaluate(tree)
    except (ZeroDivisionError, OverflowError, TypeError) as exc:
        raise ValueError(f"cannot compute {expression!r}: {exc}") from exc
    except (RecursionError, MemoryError) as exc:
        raise ValueError("expression too deeply nested") from exc
    if not math.isfinite(result):
        raise ValueError(f"{expression!r} is not a finite number")
    return result


#: What ``realtime-chat`` registers from this module.
TOOLS: list[Callable[..., Any]] = [get_weather, calculate]
