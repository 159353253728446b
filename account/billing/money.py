"""Money as integers only: micro-USD inside OneKey, cents at the payment provider."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICRO_USD_PER_CENT = 10_000


def cents_to_micro(cents: int) -> int:
    """Cents paid -> micro-USD of credit, exactly."""
    return cents * MICRO_USD_PER_CENT


def parse_usd(text: str) -> int:
    """'12', '12.5' or '12.34' (dollars, at most two decimals) -> 1234 cents; ValueError otherwise."""
    cleaned = text.strip().removeprefix("$").replace(",", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError("not a positive amount")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError("more than two decimals")
    return int(cents)
