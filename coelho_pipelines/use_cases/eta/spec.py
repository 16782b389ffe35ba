"""eta: estimated time of arrival (regression, primary metric MAE)."""

from __future__ import annotations

from functools import partial

from coelho_pipelines.events.fields import FieldSpec as F
from coelho_pipelines.use_cases import model_factories as mf
from coelho_pipelines.use_cases.eta.generator import TripGenerator
from coelho_pipelines.use_cases.eta.vocabulary import GENERATING_FACTORS, VEHICLE_TYPES, WEATHER
from coelho_pipelines.use_cases.geography import HOUSTON
from coelho_pipelines.use_cases.spec import Candidate, MetricRule, UseCaseSpec, field_feature

FIELDS = (
    F("trip_id", "string"),
    F("driver_id", "string"),
    F("vehicle_id", "string"),
    F("timestamp", "timestamp"),
    HOUSTON.point("origin"),
    HOUSTON.point("destination"),
    F("estimated_distance_km", "float", minimum=0.0, maximum=200.0),
    F("weather", "string", choices=WEATHER),
    F("temperature_celsius", "float", minimum=-20.0, maximum=50.0),
    F("day_of_week", "int", minimum=0, maximum=6, description="0 = Monday, Houston local time"),
    F("hour_of_day", "int", minimum=0, maximum=23, description="Houston local time"),
    F("driver_rating", "float", minimum=3.5, maximum=5.0),
    F("vehicle_type", "string", choices=VEHICLE_TYPES),
    F("initial_estimated_travel_time_seconds", "float", minimum=0.0),
    F("simulated_actual_travel_time_seconds", "float", minimum=60.0),
)

FEATURES = (
    field_feature("estimated_distance_km", "numeric"),
    field_feature("initial_estimated_travel_time_seconds", "numeric"),
    field_feature("hour_of_day", "numeric"),
    field_feature("day_of_week", "numeric"),
    field_feature("weather", "categorical"),
    field_feature("temperature_celsius", "numeric"),
    field_feature("driver_rating", "numeric"),
    field_feature("vehicle_type", "categorical"),
    field_feature("origin_lat", "numeric", "origin", "lat"),
    field_feature("origin_lon", "numeric", "origin", "lon"),
    field_feature("destination_lat", "numeric", "destination", "lat"),
    field_feature("destination_lon", "numeric", "destination", "lon"),
)


CHALLENGERS = (
    Candidate(
        "PaceTreeRegressor",
        partial(mf.pace_tree_regressor, unit="estimated_distance_km"),
        native_features=True,
    ),
)


SPEC = UseCaseSpec(
    key="eta",
    title="Estimated Time of Arrival",
    topic="estimated_time_of_arrival",
    experiment="Estimated Time of Arrival",
    task="regression",
    fields=FIELDS,
    id_field="trip_id",
    key_field="driver_id",
    time_field="timestamp",
    label_field="simulated_actual_travel_time_seconds",
    features=FEATURES,
    never_features=(
        "trip_id",
        "driver_id",
        "vehicle_id",
        "simulated_actual_travel_time_seconds",
        *GENERATING_FACTORS,
    ),  # fmt: skip
    generator=TripGenerator,
    river_model=mf.arf_regressor,
    river_metrics=mf.regression_metrics,
    river_primary=MetricRule("MAE", "min"),
    batch_model=mf.catboost_regressor,
    batch_model_params=mf.CATBOOST_DEFAULTS,
    batch_metrics=(
        "mae",
        "rmse",
        "mse",
        "mape",
        "smape",
        "r2",
        "explained_variance",
        "median_absolute_error",
        "max_error",
        "d2_absolute_error",
        "d2_pinball",
        "d2_tweedie",
    ),  # fmt: skip
    batch_primary=MetricRule("mae", "min"),
    plot_tabs=("regression", "features", "target", "diagnostics"),
    river_model_name="ARFRegressor",
    batch_model_name="CatBoostRegressor",
    prediction_key="estimated_travel_time_seconds",
    river_challengers=CHALLENGERS,
    river_leaderboard=MetricRule("RollingMAE", "min"),  # the last 1,000 events
    geo=HOUSTON,
)
