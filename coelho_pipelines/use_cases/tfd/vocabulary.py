"""tfd's vocabulary: the category lists both the spec (schema enums) and the generator use."""

from __future__ import annotations

CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CAD", "AUD", "BRL")
PRODUCT_CATEGORIES = (
    "electronics", "clothing", "groceries", "travel", "services",
    "digital_goods", "luxury_items", "gambling", "other",
)  # fmt: skip
RISKY_CATEGORIES = ("electronics", "luxury_items", "digital_goods", "gambling")
TRANSACTION_TYPES = ("purchase", "withdrawal", "transfer", "payment", "deposit")
PAYMENT_METHODS = ("credit_card", "debit_card", "paypal", "bank_transfer", "crypto")
OPERATING_SYSTEMS = ("Windows", "macOS", "Linux", "Android", "iOS")
BROWSERS = ("Chrome", "Firefox", "Safari", "Edge", "Opera")
