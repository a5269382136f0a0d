"""Small helpers that spell PromQL the same way everywhere."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable


def eq(label: str, value: str) -> str:
    """An equality matcher; the value is quoted and escaped (Go string syntax)."""
    return f"{label}={json.dumps(value)}"


def regex(label: str, pattern: str) -> str:
    """A regular-expression matcher, written as given (dashboards pass "$variable")."""
    return f'{label}=~"{pattern}"'


def selector(metric: str, *matchers: str) -> str:
    """`metric{m1, m2}`, or the bare name when there is nothing to match."""
    present = [m for m in matchers if m]
    return f"{metric}{{{', '.join(present)}}}" if present else metric


def by(labels: Iterable[str]) -> str:
    """The label list of a `by (...)` or `on (...)` clause."""
    return ", ".join(labels)


def number(value: float) -> str:
    """A float literal without binary noise: 1 - 0.999 → "0.001"."""
    rounded = round(value, 12)
    return f"{rounded:g}" if rounded == round(rounded, 6) else repr(rounded)


def indent(expr: str, spaces: int = 2) -> str:
    pad = " " * spaces
    return "\n".join(pad + line for line in expr.splitlines())


_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"offset", "bool", "inf", "nan", "atan2"}
)


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects, found by removing everything else.

    Strings, label matchers, ranges and grouping label lists go first; what remains are
    functions and aggregations (followed by a parenthesis), keywords, numbers and metric names.
    """
    text = _STRING.sub('""', expr)
    for pattern in (_MATCHERS, _RANGES, _LABEL_LISTS):
        text = pattern.sub(" ", text)
    return {
        match.group(1)
        for match in _IDENTIFIER.finditer(text)
        if not match.group(2) and match.group(1).lower() not in _KEYWORDS
    }
