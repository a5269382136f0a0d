"""Kubernetes resource quantities (cpu: 1500m, memory: 1Gi): their pattern and their amount."""

from __future__ import annotations

import re
from decimal import Decimal

# A Kubernetes resource quantity: a decimal number and a binary (Ki…Ei), decimal (n…E) or
# exponent suffix.
QUANTITY = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
_FACTORS: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate("kMGTPE")},
    **{f"{s}i": Decimal(1024) ** (i + 1) for i, s in enumerate("KMGTPE")},
}


def quantity(value: str) -> Decimal:
    """The amount a Kubernetes quantity string stands for (cores, bytes, …)."""
    match = re.match(QUANTITY, value)
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    suffix = match.group(3) or ""
    number = value[: len(value) - len(suffix)]
    if suffix not in _FACTORS:  # a decimal exponent, e.g. 1e3
        return Decimal(number) * Decimal(10) ** int(suffix[1:])
    return Decimal(number) * _FACTORS[suffix]
