"""Pure logic of the batch domain: feature SQL vs python extract, training-set selection and
split, metrics, the best-model rule, the leakage guard. No services."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from coelho_pipelines.batch import features as feature_sql
from coelho_pipelines.batch import registry
from coelho_pipelines.batch import training_set as ts
from coelho_pipelines.batch.checks import leaked_features, split_problems
from coelho_pipelines.batch.evaluation import geometric_mean, regression_metrics, smape
from coelho_pipelines.lakehouse.tables import events_to_arrow
from coelho_pipelines.models.encoding import MISSING, FeatureLayout, category_value
from coelho_pipelines.use_cases import all_specs, get_spec
from coelho_pipelines.use_cases.eta.vocabulary import GENERATING_FACTORS

from .conftest import generate


def _features_of(spec, events) -> pa.Table:
    con = feature_sql.connect()
    con.register("raw", events_to_arrow(spec, events))
    return feature_sql.compute_features(spec, con, date(2026, 1, 1), date(2026, 12, 31))


@pytest.mark.parametrize("key", ["tfd", "eta", "ecci"])
def test_feature_sql_and_python_extract_give_the_same_model_input(key: str) -> None:
    spec = get_spec(key)
    _, events = generate(spec, 400, days=2)
    table = _features_of(spec, events)
    assert table.schema == feature_sql.features_schema(spec)
    assert table.num_rows == len(events)
    layout = FeatureLayout.of(spec.features)
    from_sql = layout.normalize(table.to_pandas()[spec.feature_names])
    by_id = {event[spec.id_field]: event for event in events}
    ids = table.column(spec.id_field).to_pylist()
    from_python = registry.feature_frame(spec, [by_id[i] for i in ids])
    pd.testing.assert_frame_equal(from_sql, from_python)


def test_feature_sql_keeps_one_row_per_event_id() -> None:
    spec = get_spec("tfd")
    _, events = generate(spec, 50, days=1)
    table = _features_of(spec, events + events[:10])
    assert table.num_rows == 50
    assert len(set(table.column(spec.id_field).to_pylist())) == 50


def test_category_encoding_matches_duckdb_casts() -> None:
    assert category_value(True) == "true" and category_value(np.bool_(False)) == "false"
    assert category_value(None) == MISSING and category_value(float("nan")) == MISSING
    assert category_value("Electronics") == "Electronics"
    layout = FeatureLayout(("x",), ("c",), ("x", "c"))
    frame = layout.normalize(pd.DataFrame({"x": [1, None], "c": [None, True], "extra": [0, 1]}))
    assert list(frame.columns) == ["x", "c"]
    assert math.isnan(frame["x"][1]) and frame["c"].tolist() == [MISSING, "true"]
    with pytest.raises(ValueError, match="missing feature columns: c"):
        layout.normalize(pd.DataFrame({"x": [1.0]}))


@pytest.mark.parametrize(
    "rows",
    [
        [{"x": 1, "c": True}, {"x": None, "c": None}, {"c": "a"}],  # direct construction
        [{"x": True, "c": False}, {"x": 2.5, "c": "b"}],
        [{"x": "3", "c": 1}, {"x": "oops", "c": None}],  # pandas fallback (str number, int)
        [],
    ],
)
def test_frame_from_rows_is_normalize_of_the_records_and_is_not_normalized_again(rows) -> None:
    layout = FeatureLayout(("x",), ("c",), ("x", "c"))
    frame = layout.frame_from_rows(rows)
    expected = layout.normalize(pd.DataFrame.from_records(rows, columns=["x", "c"]))
    pd.testing.assert_frame_equal(frame, expected)
    assert layout.is_normalized(frame) and layout.ensure_normalized(frame) is frame
    raw = pd.DataFrame({"x": [1, 2], "c": ["a", None]})
    assert not layout.is_normalized(raw) and not layout.is_normalized(frame[["c", "x"]])
    assert layout.ensure_normalized(raw)["c"].tolist() == ["a", MISSING]


def _split(spec, table: pa.Table, selection: ts.Selection) -> pa.Table:
    con = feature_sql.connect()
    con.register("features", table)
    return ts.select_training_set(spec, con, selection)


def test_training_set_split_is_time_ordered_disjoint_and_sized() -> None:
    spec = get_spec("eta")
    _, events = generate(spec, 1000, days=4)
    table = _split(spec, _features_of(spec, events), ts.Selection())
    frames = {s: table.filter(pc.equal(table["split"], s)).to_pandas() for s in ts.SPLITS}
    assert {s: len(f) for s, f in frames.items()} == {"train": 700, "validation": 150, "test": 150}
    assert split_problems(spec, frames) == []
    assert frames["train"][spec.time_field].max() <= frames["validation"][spec.time_field].min()
    assert frames["validation"][spec.time_field].max() <= frames["test"][spec.time_field].min()


def test_training_set_max_rows_keeps_the_newest_and_window_filters_dates() -> None:
    spec = get_spec("tfd")
    _, events = generate(spec, 800, days=4)
    features = _features_of(spec, events)
    newest = _split(spec, features, ts.Selection(max_rows=100))
    assert newest.num_rows == 100
    all_times = sorted(features.column(spec.time_field).to_pylist())
    assert min(newest.column(spec.time_field).to_pylist()) == all_times[-100]
    windowed = _split(spec, features, ts.Selection(start=date(2026, 1, 2), end=date(2026, 1, 3)))
    days = set(windowed.column("event_date").to_pylist())
    assert days == {date(2026, 1, 2), date(2026, 1, 3)}


def test_training_set_percentage_is_a_reproducible_sample() -> None:
    spec = get_spec("tfd")
    _, events = generate(spec, 2000, days=2)
    features = _features_of(spec, events)
    first = _split(spec, features, ts.Selection(percentage=25))
    again = _split(spec, features, ts.Selection(percentage=25))
    other_seed = _split(spec, features, ts.Selection(percentage=25, seed=1))
    assert 400 <= first.num_rows <= 600
    ids = first.column(spec.id_field).to_pylist()
    assert ids == again.column(spec.id_field).to_pylist()
    assert set(ids) != set(other_seed.column(spec.id_field).to_pylist())


@pytest.mark.parametrize(
    "kwargs",
    [{"max_rows": 0}, {"percentage": 0}, {"percentage": 150}, {"test_fraction": 0.5,
     "validation_fraction": 0.45}, {"start": date(2026, 2, 1), "end": date(2026, 1, 1)}],
)  # fmt: skip
def test_training_set_selection_rejects_nonsense(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ts.Selection(**kwargs)


def test_metrics_computed_by_hand() -> None:
    assert geometric_mean([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(math.sqrt(0.5))
    assert smape([100, 0], [50, 0]) == pytest.approx((2 * 50 / 150) / 2 * 100)
    values = regression_metrics([100.0, 200.0, 300.0], [110.0, 190.0, 330.0])
    assert values["mae"] == pytest.approx(50 / 3)
    assert values["max_error"] == pytest.approx(30)


def test_the_best_model_rule_orders_runs_and_refuses_ties() -> None:
    eta, tfd = get_spec("eta"), get_spec("tfd")
    assert registry.is_better(eta, 10.0, 12.0) and not registry.is_better(eta, 12.0, 12.0)
    assert registry.is_better(tfd, 0.6, 0.5) and not registry.is_better(tfd, 0.5, 0.6)
    assert registry.is_better(tfd, 0.1, None) and not registry.is_better(tfd, None, 0.1)
    runs = [{"metrics": {"mae": 5.0}}, {"metrics": {}}, {"metrics": {"mae": 3.0}}]
    rule = eta.batch_primary
    ordered = sorted(
        runs, key=lambda r: rule.best_first_key(registry.primary_value(eta, r["metrics"]))
    )
    assert [r["metrics"].get("mae") for r in ordered] == [3.0, 5.0, None]


def test_leakage_guard_no_id_label_or_generating_factor_is_a_feature() -> None:
    for spec in all_specs():
        forbidden = {*spec.never_features, spec.id_field, spec.key_field, *GENERATING_FACTORS}
        forbidden |= {spec.label_field} if spec.label_field else set()
        assert not forbidden & set(spec.feature_names), spec.key
        assert leaked_features(spec) == []
    eta = get_spec("eta")
    assert set(GENERATING_FACTORS) <= set(eta.never_features)


def test_leakage_guard_catches_a_leaky_spec_fake() -> None:
    """A fake spec that uses the label as a feature is reported by the split check."""
    import dataclasses

    from coelho_pipelines.use_cases.spec import field_feature

    eta = get_spec("eta")
    leaky = dataclasses.replace(
        eta, features=(*eta.features, field_feature("traffic_factor", "numeric"))
    )
    assert leaked_features(leaky) == ["traffic_factor"]
    empty = pd.DataFrame({eta.id_field: [], eta.time_field: []})
    problems = split_problems(leaky, dict.fromkeys(ts.SPLITS, empty))
    assert any("never-features" in problem for problem in problems)
