"""ecci customer profiles, one definition and two engines: DuckDB SQL over the raw Delta table
(batch) against the learner's python profile store (incremental), on the same events."""

from __future__ import annotations

from datetime import date

import pyarrow.compute as pc
import pytest

from coelho_pipelines.batch import features as feature_sql
from coelho_pipelines.batch import profiles as batch_profiles
from coelho_pipelines.batch import training_set as ts
from coelho_pipelines.batch.checks import leaked_features, split_problems
from coelho_pipelines.incremental.profiles import ProfilePipeline, ProfileStore
from coelho_pipelines.use_cases import get_spec

from .conftest import generate, write_raw_events

ECCI = get_spec("ecci")
ALL = (date(2020, 1, 1), date(2030, 12, 31))


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> tuple:
    """2,500 seeded events over 3 days in a raw Delta table, and a DuckDB view of it."""
    generator, events = generate(ECCI, 2500, days=3, seed=11)
    uri = write_raw_events(ECCI, str(tmp_path_factory.mktemp("lakehouse")), events)
    return generator, events, uri


def _con(uri: str):
    con = feature_sql.connect()
    feature_sql.register_delta(con, "raw", uri)
    return con


def _python_store(events: list[dict]) -> ProfileStore:
    store = ProfileStore(ECCI.profile)
    for event in events:
        store.update(event["customer_id"], [f.extract(event) for f in ECCI.profile.features])
    return store


def _assert_same_profile(sql_row: dict, python_values: list) -> None:
    for name, value in zip(ECCI.profile.feature_names, python_values, strict=True):
        if value is None:
            assert sql_row[name] is None, name
        else:
            assert sql_row[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_sql_customer_profiles_equal_the_learner_profiles(stream) -> None:
    _, events, uri = stream
    table = batch_profiles.compute_profiles(ECCI, _con(uri), *ALL).to_pylist()
    store = _python_store(events)
    assert {row["customer_id"] for row in table} == set(store.customers)
    nulls = 0
    for row in table:
        state = store.get(row["customer_id"])
        assert row["n_events"] == state.events
        _assert_same_profile(row, state.values())
        nulls += sum(v is None for v in state.values())
    assert nulls > 0  # some customers never saw a price / referrer: both engines say None
    assert any(row["n_events"] >= 10 for row in table)  # long histories decay the same


def test_profiles_of_a_date_window_use_only_its_events(stream) -> None:
    _, events, uri = stream
    day = date(2026, 1, 2)
    table = batch_profiles.compute_profiles(ECCI, _con(uri), day, day).to_pylist()
    in_window = [e for e in events if e["timestamp"].startswith("2026-01-02")]
    store = _python_store(in_window)
    assert len(table) == len(store) > 0
    for row in table:
        _assert_same_profile(row, store.get(row["customer_id"]).values())


def test_customer_training_set_has_one_row_per_customer_split_by_time(stream) -> None:
    generator, events, uri = stream
    table = ts.select_customer_training_set(ECCI, _con(uri), ts.Selection())
    frame = table.to_pandas()
    assert frame["customer_id"].is_unique
    assert (frame["n_events"] >= ECCI.profile.min_events).all()
    counts: dict[str, int] = {}
    for event in events:
        counts[event["customer_id"]] = counts.get(event["customer_id"], 0) + 1
    assert len(frame) == sum(n >= ECCI.profile.min_events for n in counts.values())
    splits = {s: table.filter(pc.equal(table["split"], s)).to_pandas() for s in ts.SPLITS}
    assert split_problems(ECCI, splits) == []
    assert {f.name for f in ECCI.model_features} <= set(frame.columns)
    assert "segment" not in frame.columns and not leaked_features(ECCI)
    # the analytics columns: each customer's most frequent device type
    assert set(frame["device_type"]) <= {"Mobile", "Desktop", "Tablet"}
    capped = ts.select_customer_training_set(ECCI, _con(uri), ts.Selection(max_rows=40))
    assert capped.num_rows == 40
    newest = frame.nlargest(40, "timestamp")["customer_id"]
    assert set(capped.column("customer_id").to_pylist()) == set(newest)


def test_serving_rows_are_the_history_plus_the_event_as_the_learner_would(stream) -> None:
    _, events, uri = stream
    learner_side = ProfilePipeline(ECCI)
    for event in events:
        learner_side.learn_transform(event)
    new = {**events[-1], "event_id": "not-ingested-yet", "price": 1999.0}
    [row] = batch_profiles.serving_rows(ECCI, [new], uri)
    expected = learner_side.store.peek(new["customer_id"], learner_side.event_values(new))
    _assert_same_profile(row, expected.values())
    # An event already in the raw table is not counted twice.
    ingested = events[-1]
    [again] = batch_profiles.serving_rows(ECCI, [ingested], uri)
    _assert_same_profile(again, learner_side.store.get(ingested["customer_id"]).values())
    # A customer with no history: the event alone.
    stranger = {**new, "customer_id": "customer_999999"}
    [alone] = batch_profiles.serving_rows(ECCI, [stranger], uri)
    assert alone["log_price"] == pytest.approx(learner_side.event_values(stranger)[0])
    # No raw table yet: no history, no error.
    [empty] = batch_profiles.serving_rows(ECCI, [new], uri + "-missing")
    assert empty == alone | {}


def test_scoring_events_together_answers_as_one_by_one(stream) -> None:
    """A micro-batch: each event is left out of its own customer's history only."""
    _, events, uri = stream
    counts: dict[str, int] = {}
    for event in events:
        counts[event["customer_id"]] = counts.get(event["customer_id"], 0) + 1
    busiest = max(counts, key=counts.get)
    same = [e for e in events if e["customer_id"] == busiest][-3:]  # ingested already
    batch = [*same, {**same[-1], "event_id": None}, events[5]]
    together = batch_profiles.serving_rows(ECCI, batch, uri)
    alone = [batch_profiles.serving_rows(ECCI, [event], uri)[0] for event in batch]
    assert together == alone
    assert together[0] != together[1]  # different events of one customer


def test_repeated_event_ids_count_once(stream, tmp_path) -> None:
    _, events, _ = stream
    uri = write_raw_events(ECCI, str(tmp_path), events[:600])
    write_raw_events(ECCI, str(tmp_path), events[300:400])  # re-delivered events
    table = batch_profiles.compute_profiles(ECCI, _con(uri), *ALL).to_pylist()
    store = _python_store(events[:600])
    assert len(table) == len(store)
    for row in table:
        assert row["n_events"] == store.get(row["customer_id"]).events
        _assert_same_profile(row, store.get(row["customer_id"]).values())


def test_kmeans_on_profiles_is_served_by_the_compiled_fast_path(stream) -> None:
    """The all-numeric profile layout (no categorical group) trains, describes its encoders
    and compiles to the fast row predictor, which equals `predict_frame` (missing values
    included)."""
    from coelho_pipelines.accel import fast_predict
    from coelho_pipelines.models import batch_model
    from coelho_pipelines.models.encoding import FeatureLayout

    _, events, uri = stream
    table = ts.select_customer_training_set(ECCI, _con(uri), ts.Selection())
    splits = {s: table.filter(pc.equal(table["split"], s)).to_pandas() for s in ts.SPLITS}
    layout = FeatureLayout.of(ECCI.model_features)
    assert layout.categorical == ()
    params = {"k_min": 3, "k_max": 5, "n_init": 2, "random_state": 1}
    trained = batch_model.train(ECCI.task, ECCI.key, layout, splits["train"],
                                splits["validation"], None, params, ECCI.batch_model)  # fmt: skip
    description = batch_model.encoders_description(trained, splits["train"])
    assert description["one_hot_categories"] == {}
    assert description["encoded_columns"] == [f"numeric__{n}" for n in layout.order]
    predictor = fast_predict.compile_predictor(trained.model)
    assert fast_predict.is_compiled(predictor)
    rows = batch_profiles.serving_rows(ECCI, events[-60:], uri)
    assert any(v is None for row in rows for v in row.values())
    expected = trained.model.predict_frame(layout.frame_from_rows(rows))["prediction"].tolist()
    assert predictor(rows) == expected
