"""A fourth use case is one new package: the registry and the generic code accept any spec.

`FAKE_CHURN` is a test fake (a minimal classification spec that exists only here): the
registry finds it in a package, the code location builds every asset, job and sensor for it,
the learner learns it and answers with its own prediction key, and the API builds its models.
"""

from __future__ import annotations

import json
import random
import sys
import textwrap
from typing import Any

import dagster as dg

from coelho_pipelines.events.fields import FieldSpec as F
from coelho_pipelines.incremental.learner import Learner, Record
from coelho_pipelines.use_cases import all_specs, specs_in
from coelho_pipelines.use_cases import model_factories as mf
from coelho_pipelines.use_cases.generation import BaseGenerator, EventClock, IsoFormatter
from coelho_pipelines.use_cases.spec import MetricRule, UseCaseSpec, field_feature
from coelho_serving import schemas


class FakeChurnGenerator(BaseGenerator):
    """Test fake: seeded customers who churn more on low tenure (no realism intended)."""

    def __init__(
        self,
        seed: int = 42,
        start: Any = None,
        events_per_second: float = 1.0,
        drift_at: int | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.clock = EventClock(self.rng, start, events_per_second)
        self.iso = IsoFormatter()
        self.drift_at = drift_at
        self.n = 0

    def __next__(self) -> dict[str, Any]:
        self.n += 1
        tenure = self.rng.randint(0, 60)
        return {
            "account_id": f"acct-{self.n}",
            "customer_id": f"cust-{self.rng.randint(1, 50)}",
            "timestamp": self.iso(self.clock.tick()),
            "tenure_months": tenure,
            "plan": self.rng.choice(("basic", "pro")),
            "churned": int(self.rng.random() < (0.6 if tenure < 6 else 0.1)),
        }


FAKE_CHURN = UseCaseSpec(
    key="fakechurn",
    title="Fake Churn (test fake)",
    topic="fake_churn",
    experiment="Fake Churn",
    task="classification",
    fields=(
        F("account_id", "string"),
        F("customer_id", "string"),
        F("timestamp", "timestamp"),
        F("tenure_months", "int", minimum=0, maximum=60),
        F("plan", "string", choices=("basic", "pro")),
        F("churned", "int", minimum=0, maximum=1),
    ),
    id_field="account_id",
    key_field="customer_id",
    time_field="timestamp",
    label_field="churned",
    features=(field_feature("tenure_months", "numeric"), field_feature("plan", "categorical")),
    never_features=("account_id", "customer_id", "churned"),
    generator=FakeChurnGenerator,
    river_model=mf.arf_classifier,
    river_metrics=mf.classification_metrics,
    river_primary=MetricRule("FBeta", "max"),
    batch_model=mf.catboost_classifier,
    batch_model_params=mf.CATBOOST_DEFAULTS,
    batch_metrics=("fbeta", "roc_auc"),
    batch_primary=MetricRule("fbeta", "max"),
    plot_tabs=("classification", "features"),
    river_model_name="ARFClassifier",
    batch_model_name="CatBoostClassifier",
    prediction_key="churn_probability",
)


def test_the_registry_takes_every_package_that_exports_a_spec(tmp_path, monkeypatch) -> None:
    root = tmp_path / "fake_use_cases"
    (root / "fakechurn").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "shared.py").write_text("SPEC = 'a module, not a package: shared code'\n")
    (root / "fakechurn" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from test_fourth_use_case import FAKE_CHURN as SPEC
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "test_fourth_use_case", sys.modules[__name__])
    import fake_use_cases

    assert specs_in(fake_use_cases) == (FAKE_CHURN,)


def test_the_code_location_builds_every_public_name_for_a_fourth_spec() -> None:
    from coelho_pipelines.definitions import USE_CASE_BUILDERS, build_definitions

    defs = dg.Definitions.merge(
        build_definitions(), *(build(FAKE_CHURN) for build in USE_CASE_BUILDERS)
    )
    dg.Definitions.validate_loadable(defs)
    repository = defs.get_repository_def()
    assets = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    for asset in ("events_topic", "raw_events", "features", "batch_model", "incremental_model"):
        assert f"fakechurn/{asset}" in assets
    jobs = {job.name for job in repository.get_all_jobs()}
    assert {"fakechurn_ingestion", "fakechurn_batch_training"} <= jobs
    assert {spec.key for spec in all_specs()}.isdisjoint({"fakechurn"})


def test_the_learner_answers_with_the_fake_specs_prediction_keys() -> None:
    events = FakeChurnGenerator(seed=3, start=0).take(300)
    learner = Learner(FAKE_CHURN)
    learner.learn_many(Record(json.dumps(e).encode(), 0, i) for i, e in enumerate(events))
    assert learner.events_learned == 300
    answer = learner.bundle.predict(events[0])
    assert set(answer) == set(FAKE_CHURN.prediction_keys)
    assert "churn_probability" in answer and "fraud_probability" not in answer
    assert 0.0 <= answer["churn_probability"] <= 1.0


def test_the_api_models_of_a_fourth_spec_use_its_prediction_key() -> None:
    request = schemas.request_model(FAKE_CHURN)
    assert set(request.model_fields) == {"tenure_months", "plan"}
    response = schemas.response_model(FAKE_CHURN)
    assert set(FAKE_CHURN.prediction_keys) <= set(response.model_fields)
    body = schemas.prediction_body(FAKE_CHURN, 0.75, "mlflow", 2)
    assert body["churn_probability"] == 0.75 and body["prediction"] == 1
    response.model_validate(body)
