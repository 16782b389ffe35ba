"""ecci: e-commerce customer interactions (clustering, primary metric silhouette)."""

from __future__ import annotations

from typing import Any

from coelho_pipelines.schema import FieldSpec as F
from coelho_pipelines.use_cases import model_factories as mf
from coelho_pipelines.use_cases.eta import HOUSTON_LAT, HOUSTON_LON
from coelho_pipelines.use_cases.spec import MetricRule, UseCaseSpec, field_feature, time_feature

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
SEGMENTS = (
    "bargain_hunter", "researcher", "big_spender", "window_shopper", "mobile_impulse_buyer",
)  # fmt: skip

FIELDS = (
    F("event_id", "string"),
    F("customer_id", "string"),
    F("session_id", "string"),
    F("timestamp", "timestamp"),
    F("event_type", "string", choices=EVENT_TYPES),
    F("product_id", "string", nullable=True),
    F("product_category", "string", nullable=True, choices=PRODUCT_CATEGORIES),
    F("price", "float", nullable=True, minimum=5.0, maximum=2500.0),
    F("quantity", "int", nullable=True, minimum=1, maximum=4),
    F("page_url", "string"),
    F("referrer_url", "string", nullable=True),
    F(
        "device_info",
        "struct",
        children=(
            F("device_type", "string", choices=DEVICE_TYPES),
            F("browser", "string"),
            F("os", "string"),
        ),
    ),
    F(
        "location",
        "struct",
        children=(
            F("lat", "float", minimum=HOUSTON_LAT[0], maximum=HOUSTON_LAT[1]),
            F("lon", "float", minimum=HOUSTON_LON[0], maximum=HOUSTON_LON[1]),
        ),
    ),
    F("time_on_page_seconds", "float", minimum=0.0, maximum=3600.0),
    F("search_query", "string", nullable=True),
    F("session_event_sequence", "int", minimum=1, maximum=1000),
)

FEATURES = (
    field_feature("price", "numeric"),
    field_feature("quantity", "numeric"),
    field_feature("time_on_page_seconds", "numeric"),
    field_feature("session_event_sequence", "numeric"),
    field_feature("event_type", "categorical"),
    field_feature("product_category", "categorical"),
    field_feature("referrer_url", "categorical"),
    field_feature("device_type", "categorical", "device_info", "device_type"),
    field_feature("os", "categorical", "device_info", "os"),
    field_feature("browser", "categorical", "device_info", "browser"),
    time_feature("hour_of_day", "hour", "timestamp"),
)


def _generator(seed: int = 42, **options: Any):  # noqa: ANN202
    from coelho_pipelines.generators.interactions import InteractionGenerator

    return InteractionGenerator(seed=seed, **options)


SPEC = UseCaseSpec(
    key="ecci",
    title="E-Commerce Customer Interactions",
    topic="e_commerce_customer_interactions",
    experiment="E-Commerce Customer Interactions",
    task="clustering",
    fields=FIELDS,
    id_field="event_id",
    key_field="customer_id",
    time_field="timestamp",
    label_field=None,
    features=FEATURES,
    never_features=("event_id", "customer_id", "session_id", "search_query", "segment"),
    generator=_generator,
    river_model=mf.dbstream,
    river_metrics=mf.clustering_metrics,
    # River's online Silhouette is a distance ratio (cohesion / second-closest centroid):
    # lower is better, unlike scikit-learn's batch silhouette.
    river_primary=MetricRule("Silhouette", "min"),
    batch_model=mf.kmeans,
    batch_model_params=mf.KMEANS_DEFAULTS,
    batch_metrics=("silhouette", "calinski_harabasz", "davies_bouldin", "inertia", "n_clusters"),
    batch_primary=MetricRule("silhouette", "max"),
    plot_tabs=("clustering", "features", "target", "diagnostics", "text"),
    river_model_name="DBSTREAM",
    batch_model_name="KMeans",
    extras={"segments": SEGMENTS, "text_field": "search_query"},
    # DBSTREAM re-clusters within a few hundred events, so a drift raises the distance to the
    # assigned center only a little, but for good; a single outlier event raises it more, for
    # a few hundred events. Hence a small tolerance that must be exceeded for long.
    drift_tolerance=0.1,
    drift_persistence=2000,
)
