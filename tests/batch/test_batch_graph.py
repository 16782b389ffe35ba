"""The batch graph end to end on real Delta tables and the session's real MLflow server.

Each test uses its own spec key (unique asset keys, experiment and registered model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pyarrow.compute as pc
import pytest
from sklearn.metrics import adjusted_rand_score, fbeta_score, normalized_mutual_info_score

from coelho_pipelines import naming, plots
from coelho_pipelines.batch import features as feature_sql
from coelho_pipelines.batch import registry
from coelho_pipelines.batch import training_set as ts
from coelho_pipelines.batch.defs import build_batch_defs
from coelho_pipelines.batch.lineage import asset_key
from coelho_pipelines.batch.training import train_and_log

from .conftest import generate, get_spec_key, isolated_spec, range_tags, write_raw_events

pytestmark = pytest.mark.services

N_EVENTS = 2400
DAYS = 8
FIRST, LAST = "2026-01-01", "2026-01-08"
SMALL_CATBOOST = {"iterations": 50, "learning_rate": 0.3}
SMALL_KMEANS = {"k_max": 6, "n_init": 4}
SMALL_PLOTS = {"sample_size": 300, "diagnostics_sample_size": 500, "text_limit": 600}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _small(spec: Any) -> dict:
    return SMALL_KMEANS if spec.task == "clustering" else SMALL_CATBOOST


def _run_config(spec: Any, model: dict | None = None, with_plots: bool = True) -> dict:
    ops = {f"{spec.key}__batch_model": {"config": model or _small(spec)}}
    if with_plots:
        ops[f"{spec.key}__batch_visualizations"] = {"config": SMALL_PLOTS}
    return {"ops": ops}


def _metadata(result: Any, spec: Any, name: str) -> dict[str, Any]:
    key = asset_key(spec, name)
    [materialization] = [m for m in result.get_asset_materialization_events() if m.asset_key == key]
    return {k: v.value for k, v in materialization.materialization.metadata.items()}


def _checks(result: Any) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _test_split(spec: Any, lakehouse: Any, version: int) -> Any:
    uri = lakehouse.table_uri(naming.training_set_table_name(spec))
    return ts.read_splits(uri, version, time_field=spec.time_field)["test"]


def _python_profiles(spec: Any, events: list[dict], last_events: list[dict]) -> Any:
    """The profiles of the customers of `last_events` after all `events`, through the
    learner's python profile store (the other engine of the SQL profiles)."""
    from coelho_pipelines.incremental.profiles import ProfileStore
    from coelho_pipelines.models.encoding import FeatureLayout

    store = ProfileStore(spec.profile)
    for event in events:
        store.update(
            event[spec.profile.key_field], [f.extract(event) for f in spec.profile.features]
        )
    names = spec.profile.feature_names
    rows = [dict(zip(names, store.get(e[spec.profile.key_field]).values(), strict=True))
            for e in last_events]  # fmt: skip
    return FeatureLayout.of(spec.model_features).frame_from_rows(rows)


def _beats_chance(score: Any, truth: np.ndarray, predicted: np.ndarray) -> bool:
    """The score is above every one of 20 label permutations (chance level)."""
    rng = np.random.default_rng(0)
    observed = score(truth, predicted)
    return all(observed > score(rng.permutation(truth), predicted) for _ in range(20))


@pytest.mark.parametrize("key", ["tfd", "eta", "ecci"])
def test_whole_batch_graph_in_one_materialize(
    key: str, lakehouse, mlflow_resource, instance, tmp_path: Path
) -> None:
    spec = isolated_spec(key)
    generator, events = generate(spec, N_EVENTS, days=DAYS)
    write_raw_events(spec, lakehouse.uri, events)
    defs = build_batch_defs(spec)

    result = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        instance=instance,
        resources={"lakehouse": lakehouse, "mlflow": mlflow_resource},
        run_config=_run_config(spec),
        tags=range_tags(FIRST, LAST),
    )

    assert result.success
    features_node = build_batch_defs(spec).get_assets_def(asset_key(spec, "features"))
    assert len(result.asset_materializations_for_node(features_node.node_def.name)) == DAYS
    assert _checks(result) == {"split_is_sound": True, "beats_champion": True}
    model_md = _metadata(result, spec, "batch_model")
    evaluation = _metadata(result, spec, "batch_evaluation")
    assert model_md["run_url"].startswith(mlflow_resource.tracking_uri)
    assert "| metric | value |" in evaluation["metrics"]
    assert set(spec.batch_metrics) <= set(evaluation)
    test = _test_split(spec, lakehouse, int(evaluation["training_set_version"]))

    # Metrics beat trivial baselines.
    if key == "tfd":
        all_legit = fbeta_score(test[spec.label_field], np.zeros(len(test)), beta=2)
        assert evaluation["fbeta"] > all_legit and evaluation["roc_auc"] > 0.7
    elif key == "eta":
        initial = np.abs(test[spec.label_field] - test["initial_estimated_travel_time_seconds"])
        assert evaluation["mae"] < initial.mean()
    else:
        assert evaluation["silhouette"] > 0
        model = registry.load_model(mlflow_resource.tracking_uri, model_md["model_uri"])
        # Rows are customers (their profiles): the truth is each customer's latent segment.
        assert test[spec.profile.key_field].is_unique
        assert (test["n_events"] >= spec.profile.min_events).all()
        truth = test[spec.profile.key_field].map(generator.segment_of).to_numpy()
        predicted = model.predict_frame(test)["prediction"].to_numpy()
        assert _beats_chance(adjusted_rand_score, truth, predicted)
        assert _beats_chance(normalized_mutual_info_score, truth, predicted)

    # One MLflow run, named after the model, tagged, with every metric and plot.
    client = mlflow_resource.client()
    run = client.get_run(model_md["run_id"])
    assert run.info.run_name == spec.batch_model_name
    assert run.data.tags[naming.MLFLOW_PARADIGM_TAG] == "batch"
    assert run.data.tags[naming.MLFLOW_USE_CASE_TAG] == spec.key
    assert run.data.tags[naming.MLFLOW_DAGSTER_RUN_TAG] == result.run_id
    assert set(spec.batch_metrics) <= set(run.data.metrics)
    assert int(run.data.params["n_test"]) == len(test)
    import mlflow

    local = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id,
            artifact_path="visualizations",
            dst_path=str(tmp_path),
            tracking_uri=mlflow_resource.tracking_uri,
        )  # fmt: skip
    )
    for tab, names in plots.catalogue(spec.plot_tabs).items():
        for name in names:
            png = (local / tab / f"{name}.png").read_bytes()
            assert png.startswith(PNG_MAGIC) and len(png) > 2000, f"{tab}/{name}"
    assert _metadata(result, spec, "batch_visualizations")["failed_plots"] == 0

    # The model became the champion and the runs list says so.
    champion = registry.champion_version(client, spec)
    assert champion is not None and champion.run_id == run.info.run_id
    runs = registry.list_runs_best_first(mlflow_resource.tracking_uri, spec)
    assert [r["champion"] for r in runs] == [True]


@pytest.mark.parametrize("key", ["tfd", "eta", "ecci"])
def test_registry_served_model_predicts_like_the_in_memory_model(
    key: str, lakehouse, mlflow_resource
) -> None:
    spec = isolated_spec(key)
    _, events = generate(spec, 1500, days=5)
    raw_uri = write_raw_events(spec, lakehouse.uri, events)
    con = feature_sql.connect()
    feature_sql.register_delta(con, "raw", raw_uri)
    from datetime import date

    con.register("features", feature_sql.compute_features(spec, con, date(2026, 1, 1),
                                                          date(2026, 1, 31)))  # fmt: skip
    if spec.profile is not None:  # ecci: rows are customers, profiled from the raw events
        table = ts.select_customer_training_set(spec, con, ts.Selection())
    else:
        table = ts.select_training_set(spec, con, ts.Selection())
    splits = {s: table.filter(pc.equal(table["split"], s)).to_pandas() for s in ts.SPLITS}
    params = SMALL_KMEANS if spec.task == "clustering" else SMALL_CATBOOST
    logged = train_and_log(spec, splits, params, mlflow_resource, None, 0)
    registry.register_champion(
        mlflow_resource.tracking_uri, spec, logged.run_id, logged.model_uri, {}
    )

    champion = registry.load_champion(mlflow_resource.tracking_uri, spec)
    assert champion is not None and champion.run_id == logged.run_id
    in_memory = logged.model.predict_frame(splits["test"])  # SQL feature path
    if spec.profile is not None:  # the python profile path: each customer's last event
        last = {event[spec.profile.key_field]: event for event in events}
        test_events = [last[c] for c in splits["test"][spec.profile.key_field]]
        served = champion.model.predict_frame(_python_profiles(spec, events, test_events))
    else:
        by_id = {event[spec.id_field]: event for event in events}
        test_events = [by_id[i] for i in splits["test"][spec.id_field]]
        served = registry.predict_frame(champion.model, spec, test_events)  # python extract
    np.testing.assert_array_equal(served["prediction"], in_memory["prediction"])
    if spec.task == "classification":
        np.testing.assert_allclose(served["probability"], in_memory["probability"], rtol=1e-12)
    import mlflow

    pyfunc = mlflow.pyfunc.load_model(champion.model_uri)  # the generic MLflow way
    if spec.profile is not None:
        through_pyfunc = pyfunc.predict(_python_profiles(spec, events, test_events))
    else:
        through_pyfunc = pyfunc.predict(registry.feature_frame(spec, test_events))
    np.testing.assert_array_equal(through_pyfunc["prediction"], in_memory["prediction"])
    by_run = registry.load_run_model(mlflow_resource.tracking_uri, logged.run_id)
    np.testing.assert_array_equal(
        by_run.predict_frame(splits["test"])["prediction"], in_memory["prediction"]
    )
    # Leakage guard on what was actually trained: no id, label or generating factor.
    trained_on = set(mlflow_resource.client().get_run(logged.run_id).data.params["features"]
                     .split(","))  # fmt: skip
    assert trained_on == {f.name for f in spec.model_features}
    assert not trained_on & {*spec.never_features, spec.id_field, spec.key_field}
    assert get_spec_key(spec) == key


def test_champion_check_refuses_a_worse_model(lakehouse, mlflow_resource, instance) -> None:
    spec = isolated_spec("eta")
    _, events = generate(spec, 1500, days=6)
    write_raw_events(spec, lakehouse.uri, events)
    defs = build_batch_defs(spec)
    no_plots = [a for a in defs.assets if a.key != asset_key(spec, "batch_visualizations")]
    resources = {"lakehouse": lakehouse, "mlflow": mlflow_resource}
    good = dg.materialize(
        [*no_plots, *defs.asset_checks], instance=instance, resources=resources,
        run_config=_run_config(spec, with_plots=False),
        tags=range_tags(FIRST, "2026-01-06"),
    )  # fmt: skip
    assert good.success
    client = mlflow_resource.client()
    champion = registry.champion_version(client, spec)
    assert champion is not None

    training = [a for a in no_plots if a.key != asset_key(spec, "features")]
    worse = {"iterations": 3, "learning_rate": 0.01}
    refused = dg.materialize(
        [*training, *defs.asset_checks], instance=instance, resources=resources,
        run_config=_run_config(spec, worse, with_plots=False), raise_on_error=False,
    )  # fmt: skip

    assert not refused.success
    assert _checks(refused)["beats_champion"] is False
    promoted = [
        m for m in refused.get_asset_materialization_events()
        if m.asset_key == asset_key(spec, "champion_model")
    ]  # fmt: skip
    assert promoted == []
    still = registry.champion_version(client, spec)
    assert still.version == champion.version and still.run_id == champion.run_id
    versions = client.search_model_versions(f"name = '{spec.registered_model}'")
    assert len(versions) == 1
    worse_run = _metadata(refused, spec, "batch_evaluation")
    assert worse_run["mae"] > float(client.get_run(champion.run_id).data.metrics["mae"])
