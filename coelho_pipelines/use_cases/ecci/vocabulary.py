"""ecci's vocabulary: the category lists and latent segments both the spec and the generator use."""

from __future__ import annotations

EVENT_TYPES = ("page_view", "add_to_cart", "purchase", "search", "leave_review")
PRODUCT_CATEGORIES = (
    "Electronics", "Fashion & Apparel", "Home & Garden", "Beauty & Personal Care",
    "Sports & Outdoors", "Books", "Grocery & Gourmet Food", "Automotive", "Toys & Games",
    "Computers", "Pet Supplies", "Health & Household",
)  # fmt: skip
REFERRERS = (
    "direct", "google.com", "bing.com", "facebook.com", "instagram.com", "amazon.com",
    "email_campaign", "affiliate_link",
)  # fmt: skip
DEVICE_TYPES = ("Mobile", "Desktop", "Tablet")
# The latent customer segments the generator draws from (evaluation only, never a feature).
SEGMENTS = (
    "bargain_hunter", "researcher", "big_spender", "window_shopper", "mobile_impulse_buyer",
)  # fmt: skip
