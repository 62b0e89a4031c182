"""Input rules shared by the use cases: each returns the clean value or raises INVALID_ARGUMENT."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal

from db_service.errors import invalid as invalid
from protos.page_tokens import decode_token

SID_RE = re.compile(r"[A-Za-z0-9]{1,15}")
# ASCII only, as openapi.yaml states: `\w` would take any script's letters and digits, so a
# "bоss" with a Cyrillic о could pass for "boss" in every log line and admin screen.
USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,50}")
EMAIL_RE = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
# A decimal string as openapi.yaml writes it: ASCII digits and at most one point, no sign but a
# minus (told apart below as out of range). Decimal() alone would also take "1_000", " 12.5\n",
# "+5", "1e2" and other scripts' digits, so one price would have many spellings.
DECIMAL_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 20, 100
MONEY_MAX = Decimal("99999999.99")  # numeric(10,2)
QUANTITY_MAX = 3  # orders.quantity CHECK (quantity BETWEEN 1 AND 3)
# The most a product may cost: an order of QUANTITY_MAX must still fit orders.total_price, a
# numeric(10,2) too. Beyond it, placing that order would overflow the column, and since one
# statement places a product's concurrent orders together, fail every order beside it.
PRICE_MAX = (MONEY_MAX / QUANTITY_MAX).quantize(Decimal("0.01"), rounding=ROUND_DOWN)


def _no_nul(field: str, value: str) -> str:
    if "\x00" in value:
        raise invalid(f"{field} must not contain NUL bytes", field=field)
    return value


def sid(value: str) -> str:
    _no_nul("sid", value)
    if not SID_RE.fullmatch(value):
        raise invalid("sid must be 1 to 15 letters or digits", field="sid")
    return value


def is_sid(value: str) -> bool:
    """Whether `value` could be someone's sid: a lookup by anything else finds nobody."""
    return SID_RE.fullmatch(value) is not None


def username(value: str) -> str:
    _no_nul("username", value)
    if not USERNAME_RE.fullmatch(value):
        raise invalid(
            "username must be 3 to 50 ASCII letters, digits, '.', '_' or '-'", field="username"
        )
    return value


def email(value: str) -> str:
    """An address as openapi.yaml's `format: email` (RFC 5321) has it: ASCII, so that its
    case folds the same everywhere (users.email's unique index is on lower(email), which
    PostgreSQL folds for ASCII only here); an internationalized domain goes in its xn-- form."""
    _no_nul("email", value)
    if len(value) > 255 or not value.isascii() or not EMAIL_RE.fullmatch(value):
        raise invalid(
            "email must be a valid ASCII address of at most 255 characters", field="email"
        )
    return value


def password(value: str) -> str:
    _no_nul("password", value)
    if not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise invalid(
            f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters", field="password"
        )
    return value


def text(field: str, value: str, *, max_length: int, min_length: int = 0) -> str:
    """`value` within its lengths; a required one (min_length > 0) must not be blank either."""
    _no_nul(field, value)
    if not min_length <= len(value) <= max_length:
        raise invalid(f"{field} must be {min_length} to {max_length} characters", field=field)
    if min_length and value.isspace():
        raise invalid(f"{field} must not be blank", field=field)
    return value


def money(field: str, value: str, *, maximum: Decimal = MONEY_MAX) -> Decimal:
    """A non-negative amount of at most `maximum`, with at most two decimals, from its decimal
    string."""
    if DECIMAL_RE.fullmatch(value) is None:
        raise invalid(f"{field} must be a decimal number such as 19.99", field=field)
    amount = Decimal(value)
    if amount < 0 or amount > maximum:
        raise invalid(f"{field} must be between 0 and {maximum}", field=field)
    if len(value.partition(".")[2]) > 2:
        raise invalid(f"{field} must have at most two decimals", field=field)
    return amount.quantize(Decimal("0.01")).copy_abs()  # "-0" is 0.00


def price(value: str) -> Decimal:
    """A product's price (see PRICE_MAX)."""
    return money("price", value, maximum=PRICE_MAX)


def page_size(value: int) -> int:
    if value == 0:
        return PAGE_SIZE_DEFAULT
    if not 1 <= value <= PAGE_SIZE_MAX:
        raise invalid(f"page size must be 1 to {PAGE_SIZE_MAX}")
    return value


def offset(value: int) -> int:
    if value < 0:
        raise invalid("offset must not be negative")
    return value


def page_token(kind: str, token: str) -> int:
    try:
        return decode_token(kind, token)
    except ValueError as exc:
        raise invalid(str(exc)) from None
