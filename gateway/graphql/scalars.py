"""The `Decimal` scalar, read as a number is written in JSON and nothing more lenient.

Strawberry's own reads a string with Python's `Decimal()`, which also takes `"1_000"`, `" 12.5"`,
`"+5"`, `"NaN"` and other scripts' digits (`"١٢"`): prices REST refuses (openapi.yaml's
pattern), so the same string would set a price through one API and be refused by the other.
This one takes JSON's number syntax, in a string or as a number, exponents included (`"1E+2"`
is 100, which the gateway then writes plain for db_service, see gateway.operations.catalog).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

import strawberry
from graphql import GraphQLError

# ASCII digits only ([0-9], not \d, which matches every script's digits); no leading "+".
NUMBER_SYNTAX: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def parse_decimal(value: object) -> Decimal:
    """A Decimal from a variable or literal: a JSON number, or a string in its syntax."""
    # bool is an int, and str(True) is no number either.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise GraphQLError("Value cannot represent a Decimal.")
    text = value if isinstance(value, str) else str(value)
    if NUMBER_SYNTAX.fullmatch(text) is None:
        raise GraphQLError("Value cannot represent a Decimal.")
    return Decimal(text)


DECIMAL: Final = strawberry.scalar(
    name="Decimal",
    description="Decimal (fixed-point)",
    serialize=str,
    parse_value=parse_decimal,
)
