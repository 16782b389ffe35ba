"""tfd: transaction fraud detection (binary classification, primary metric FBeta with beta=2)."""

from __future__ import annotations

from functools import partial

from coelho_pipelines.events.fields import FieldSpec as F
from coelho_pipelines.use_cases import model_factories as mf
from coelho_pipelines.use_cases.spec import (
    Candidate,
    MetricRule,
    PromotionPolicy,
    UseCaseSpec,
    field_feature,
    time_feature,
)
from coelho_pipelines.use_cases.tfd.generator import TransactionGenerator
from coelho_pipelines.use_cases.tfd.vocabulary import (
    CURRENCIES,
    PAYMENT_METHODS,
    PRODUCT_CATEGORIES,
    TRANSACTION_TYPES,
)

FIELDS = (
    F("transaction_id", "string"),
    F("user_id", "string"),
    F("timestamp", "timestamp"),
    F("amount", "float", minimum=0.0, maximum=1_000_000.0),
    F("currency", "string", choices=CURRENCIES),
    F("merchant_id", "string"),
    F("product_category", "string", choices=PRODUCT_CATEGORIES),
    F("transaction_type", "string", choices=TRANSACTION_TYPES),
    F("payment_method", "string", choices=PAYMENT_METHODS),
    F(
        "location",
        "struct",
        children=(
            F("lat", "float", minimum=-90, maximum=90),
            F("lon", "float", minimum=-180, maximum=180),
        ),
    ),
    F("ip_address", "string"),
    F("device_info", "struct", children=(F("os", "string"), F("browser", "string"))),
    F("user_agent", "string"),
    F("account_age_days", "int", minimum=0, maximum=1825),
    F("cvv_provided", "bool"),
    F("billing_address_match", "bool"),
    F("is_fraud", "int", minimum=0, maximum=1),
)

FEATURES = (
    field_feature("amount", "numeric"),
    field_feature("account_age_days", "numeric"),
    field_feature("cvv_provided", "categorical"),
    field_feature("billing_address_match", "categorical"),
    field_feature("currency", "categorical"),
    field_feature("merchant_id", "categorical"),
    field_feature("product_category", "categorical"),
    field_feature("transaction_type", "categorical"),
    field_feature("payment_method", "categorical"),
    field_feature("os", "categorical", "device_info", "os"),
    field_feature("browser", "categorical", "device_info", "browser"),
    time_feature("hour_of_day", "hour", "timestamp"),
    time_feature("day_of_week", "dayofweek", "timestamp"),
)


NUMERIC = tuple(f.name for f in FEATURES if f.kind == "numeric")
CATEGORICAL = tuple(f.name for f in FEATURES if f.kind == "categorical")
CHALLENGERS = (
    Candidate(
        "LogisticRegression",
        partial(mf.logistic_regression, numeric=NUMERIC, categorical=CATEGORICAL),
    ),
)


SPEC = UseCaseSpec(
    key="tfd",
    title="Transaction Fraud Detection",
    topic="transaction_fraud_detection",
    experiment="Transaction Fraud Detection",
    task="classification",
    fields=FIELDS,
    id_field="transaction_id",
    key_field="user_id",
    time_field="timestamp",
    label_field="is_fraud",
    features=FEATURES,
    never_features=("transaction_id", "user_id", "ip_address", "user_agent", "is_fraud"),
    generator=TransactionGenerator,
    river_model=mf.arf_classifier,
    river_metrics=mf.classification_metrics,
    river_primary=MetricRule("FBeta", "max"),
    batch_model=mf.catboost_classifier,
    batch_model_params=mf.CATBOOST_DEFAULTS,
    batch_metrics=(
        "recall",
        "precision",
        "f1",
        "fbeta",
        "roc_auc",
        "average_precision",
        "accuracy",
        "balanced_accuracy",
        "matthews_corrcoef",
        "cohen_kappa",
        "jaccard",
        "geometric_mean",
        "log_loss",
        "brier_score",
        "d2_log_loss",
        "d2_brier",
    ),  # fmt: skip
    batch_primary=MetricRule("fbeta", "max"),
    plot_tabs=("classification", "features", "target", "diagnostics"),
    river_model_name="ARFClassifier",
    batch_model_name="CatBoostClassifier",
    prediction_key="fraud_probability",
    river_challengers=CHALLENGERS,
    # Ranked on the last 5,000 events (F2 with each candidate's own online threshold).
    river_leaderboard=MetricRule("RollingFBeta", "max"),
    river_promotion=PromotionPolicy(margin=0.0, min_gap=0.02, sustain_events=1000),
)
