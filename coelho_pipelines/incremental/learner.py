"""The prequential learner: for each event predict, update the metrics, then learn.

Independent of Kafka, Redis and MLflow (they live in `consumer`, `live_store`, `snapshot`,
`runner`), so it can be tested against `river.evaluate.progressive_val_score` and
benchmarked against a bare River loop. Its whole state is two picklable parts:
- `LiveModel`, the bundle serving needs: the served River model + feature pipeline (+ its
  decision threshold);
- `Progress`, everything else: metrics, drift detector, cluster analytics, offsets, counters,
  and every online candidate (`challengers`) with the leaderboard.

Every candidate of the spec (`river_candidates`) predicts, is scored and learns on each event
(the features are computed once); `progress.metrics` is the served candidate's. A classifier's
label is its online threshold's decision (`threshold`), chosen from past events only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from coelho_pipelines.accel.forest_vote import ForestVote
from coelho_pipelines.events.validate import EventValidator
from coelho_pipelines.incremental.challengers import CandidateState, Challengers
from coelho_pipelines.incremental.drift import DEFAULT_WARMUP_EVENTS, Drift, DriftMonitor
from coelho_pipelines.incremental.features import FeaturePipeline
from coelho_pipelines.incremental.leaderboard import Promotion
from coelho_pipelines.incremental.metrics import (
    ClusterAnalytics,
    DistanceSilhouette,
    MetricSet,
    argmax,
)
from coelho_pipelines.use_cases import get_spec
from coelho_pipelines.use_cases.spec import CLASS_KEY, THRESHOLD_KEY, UseCaseSpec

RECENT_SAMPLES = 50
ALREADY_LEARNED = "already learned"


@dataclass(frozen=True, slots=True)
class Record:
    """One message: raw JSON (bytes/str) or an already decoded event, and where it came from."""

    value: bytes | str | Mapping[str, Any]
    partition: int = 0
    offset: int = -1
    timestamp_ms: int | None = None


class LiveModel:
    """What serving needs: the River model and the feature stage it was trained with (for
    ecci, the customer profiles: the answer is the customer's segment after the event)."""

    def __init__(self, spec: UseCaseSpec, model: Any, features: Any) -> None:
        """`features`: the learner's feature stage (`FeaturePipeline`, or `ProfilePipeline`
        when the spec clusters customers)."""
        self.use_case = spec.key
        self.task = spec.task
        self.prediction_key = spec.prediction_key  # the API's answer key (the spec's)
        self.model = model
        self.features = features
        self.events_learned = 0
        self.candidate = spec.river_model_name  # which of the spec's candidates `model` is
        self.decision_threshold: float | None = None  # classifiers: None means argmax

    def predict(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The API response fields for one event (without learning from it): the spec's
        `prediction_keys` (for tfd {fraud_probability, prediction, decision_threshold}).

        A model that has learned nothing yet predicts the neutral value. A classifier's
        prediction is its probability against the learner's online threshold (argmax for
        bundles from before thresholds).
        """
        key = self._prediction_key()
        x = self.features.transform(event)
        if self.task == "classification":
            proba = self.model.predict_proba_one(x)
            probability = float(proba.get(1, 0.0))
            threshold = getattr(self, "decision_threshold", None)
            if threshold is None:
                label = argmax(proba)
                prediction = int(label) if label is not None else 0
            else:
                prediction = int(bool(proba) and probability >= threshold)
            return {key: probability, CLASS_KEY: prediction, THRESHOLD_KEY: threshold}
        if self.task == "regression":
            # A travel time is never negative (young linear leaves can extrapolate below 0).
            return {key: max(0.0, float(self.model.predict_one(x) or 0.0))}
        return {key: int(self.model.predict_one(x))}

    def _prediction_key(self) -> str:
        """The answer key; bundles pickled before specs declared it look it up by use case."""
        key = getattr(self, "prediction_key", None)
        if key is None:
            key = self.prediction_key = get_spec(self.use_case).prediction_key
        return key


@dataclass
class Progress:
    """The learner's state besides the model: snapshotted together with it."""

    metrics: MetricSet
    drift: DriftMonitor
    analytics: ClusterAnalytics | None = None
    events_learned: int = 0
    bad_events: int = 0
    offsets: dict[int, int] = field(default_factory=dict)  # next offset to read, per partition
    model_version: int = 0  # last live-model version published to Redis
    last_event_time: str | None = None
    recent: deque = field(default_factory=lambda: deque(maxlen=RECENT_SAMPLES))
    challengers: Challengers | None = None  # every candidate + the leaderboard


@dataclass(frozen=True, slots=True)
class Step:
    """What happened to one record (for hooks and tests)."""

    event: dict[str, Any] | None
    prediction: Any = None
    drift: Drift | None = None
    error: str | None = None
    promotion: Promotion | None = None  # the served candidate changed after this event
    decision: Any = None  # classification: the served label (its threshold's decision)


def predicts_nearest_center(model: Any) -> bool:
    """DBSTREAM and OnlineKMeans predict the nearest center (first one on ties, 0 without
    centers), measured with the same Euclidean distance Silhouette uses: one pass gives both
    the prediction and the metric's distances."""
    from river import cluster

    from coelho_pipelines.river_models.online_kmeans import OnlineKMeans

    return type(model) in (cluster.DBSTREAM, OnlineKMeans)


def feature_pipeline(spec: UseCaseSpec) -> Any:
    """The learner's feature stage: the customer's running profile when the spec clusters
    customers (`spec.profile`), else the event's own features."""
    if spec.profile is not None:
        from coelho_pipelines.incremental.profiles import ProfilePipeline

        return ProfilePipeline(spec)
    return FeaturePipeline(spec)


def cluster_counts(model: Any) -> tuple[int, int]:
    """(clusters, micro-clusters) of a River clusterer: DBSTREAM's macro and micro clusters;
    a centroid model's centers for both."""
    centers = len(getattr(model, "centers", None) or {})
    micro = getattr(model, "micro_clusters", None)
    return centers, centers if micro is None else len(micro)


def _naive_utc(value: datetime) -> datetime:
    """Event time as naive UTC: River's TimeRolling compares against a naive datetime."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


class Learner:
    """Prequential learning of one use case over records, with its metrics and drift."""

    def __init__(
        self,
        spec: UseCaseSpec,
        bundle: LiveModel | None = None,
        progress: Progress | None = None,
        drift_warmup_events: int = DEFAULT_WARMUP_EVENTS,
        threshold_every: int | None = None,
    ) -> None:
        self.spec = spec
        self.bundle = bundle or LiveModel(spec, spec.river_model(), feature_pipeline(spec))
        self.progress = progress or Progress(
            metrics=MetricSet(spec),
            drift=DriftMonitor.for_spec(spec, drift_warmup_events),
            analytics=ClusterAnalytics(spec.categorical_features)
            if spec.task == "clustering"
            else None,
        )
        if getattr(self.progress, "challengers", None) is None:  # new, or an older snapshot
            self.progress.challengers = Challengers.fresh(
                spec,
                self.bundle.model,
                self.progress.metrics,
                self.bundle.features,
                threshold_every,
            )
            self.bundle.candidate = self.progress.challengers.leaderboard.served
        else:
            self.progress.challengers.attach(self.bundle)
            self.progress.challengers.reconcile(spec, threshold_every)
        self.challengers: Challengers = self.progress.challengers
        self._validator = EventValidator(spec)  # the ingestion's rules, compiled
        self._time_field = spec.time_field
        # The cheapest exact predict function of each candidate (see forest_vote.py).
        self._predictors = {
            name: ForestVote.for_model(c.model) if spec.task == "classification" else None
            for name, c in self.challengers.candidates.items()
        }
        candidates = self.challengers.candidates
        self._nearest = {name: predicts_nearest_center(c.model) for name, c in candidates.items()}
        self._board = self.challengers.leaderboard
        self._decision: Any = None
        self._sync_served()
        self._step = {
            "classification": self._classify,
            "regression": self._regress,
            "clustering": self._cluster,
        }[spec.task]

    @property
    def model(self) -> Any:
        return self.bundle.model

    @property
    def leaderboard(self) -> Any:
        """The `Leaderboard` of the online candidates."""
        return self._board

    def _sync_served(self) -> None:
        """Point the bundle and the served metrics at the leaderboard's served candidate."""
        served = self.challengers.served
        self.bundle.model = served.model
        self.bundle.features = self.challengers.features[served.numeric_only]
        self.bundle.candidate = served.name
        self.progress.metrics = served.metrics
        tuner = served.threshold
        self.bundle.decision_threshold = None if tuner is None else tuner.value

    @property
    def events_learned(self) -> int:
        return self.progress.events_learned

    def decode(self, value: bytes | str | Mapping[str, Any]) -> tuple[dict[str, Any], datetime]:
        """Parse and validate one event (the ingestion's rules: types, choices, ranges,
        nullability, no unknown fields, ISO-8601 times with an offset); ValueError if invalid.
        """
        if type(value) is bytes:  # the Kafka case, checked first (ABC checks cost more)
            event, reason = self._validator.decode(value)
        elif isinstance(value, Mapping):
            event = dict(value)
            reason = self._validator.validate(event)
        else:
            raw = value.encode() if isinstance(value, str) else value
            event, reason = self._validator.decode(raw)
        if reason is not None or event is None:
            raise ValueError(reason or "invalid event")
        return event, _naive_utc(datetime.fromisoformat(event[self._time_field]))

    def learn(self, record: Record) -> Step:
        """Predict, update metrics, learn one record; a bad record is counted and skipped."""
        progress = self.progress
        known = progress.offsets.get(record.partition)
        if record.offset >= 0 and known is not None and record.offset < known:
            return Step(None, error=ALREADY_LEARNED)  # never learn an offset twice
        try:
            event, t = self.decode(record.value)
        except ValueError as exc:
            progress.bad_events += 1
            self._advance(record)
            return Step(None, error=f"invalid event: {str(exc).splitlines()[0]}")
        try:
            prediction, error = self._step(event, t)
        except (ArithmeticError, KeyError, TypeError, ValueError) as exc:
            progress.bad_events += 1
            self._advance(record)
            return Step(None, error=f"model rejected event: {exc!r}")
        progress.events_learned += 1
        self.bundle.events_learned = progress.events_learned
        progress.last_event_time = event.get(self._time_field)
        progress.recent.append(event)
        self._advance(record)
        drift = None
        if error is not None:
            # Classification errors are monitored per true class (a rare class's misses must
            # not drown in the common class's errors).
            group = event[self.spec.label_field] if self.spec.task == "classification" else None
            drift = progress.drift.update(
                error, progress.events_learned, t.isoformat() + "Z", group
            )
        promotion = None
        if self._board.due(progress.events_learned):
            promotion = self._board.observe(progress.events_learned, self.challengers.values())
            if promotion is not None:
                self._sync_served()
                progress.drift.new_served_model(progress.events_learned)
        return Step(event, prediction, drift, promotion=promotion, decision=self._decision)

    def learn_many(self, records: Iterable[Record]) -> list[Step]:
        return [self.learn(r) for r in records]

    def _refresh_model_stats(self) -> None:
        if self.spec.task == "clustering":
            self.progress.metrics.set_cluster_counts(*cluster_counts(self.bundle.model))

    def metric_values(self) -> dict[str, Any]:
        """Every metric of the served candidate, JSON-serialisable, as of the last event
        learned, and (classifiers) the decision threshold its label metrics use."""
        self._refresh_model_stats()
        values = self.progress.metrics.values()
        if self.bundle.decision_threshold is not None:
            values["decision_threshold"] = self.bundle.decision_threshold
        return values

    def metric_scalars(self) -> dict[str, float]:
        """Finite scalar metrics of the served candidate (MLflow, Prometheus, asset metadata),
        its decision threshold, and each candidate's leaderboard metric as
        `candidate.<name>.<metric>`."""
        self._refresh_model_stats()
        out = self.progress.metrics.scalars()
        if self.bundle.decision_threshold is not None:
            out["decision_threshold"] = float(self.bundle.decision_threshold)
        out.update(self.candidate_scalars())
        return out

    def candidate_scalars(self) -> dict[str, float]:
        """`candidate.<name>.<leaderboard metric>` of every candidate with a value."""
        metric = self._board.rule.name
        return {
            f"candidate.{name}.{metric}": value
            for name, value in self.challengers.values().items()
            if value is not None
        }

    def _advance(self, record: Record) -> None:
        if record.offset >= 0:
            self.progress.offsets[record.partition] = record.offset + 1

    def _encode(
        self, event: dict[str, Any], raw: dict[str, Any] | None = None
    ) -> dict[bool, dict[str, Any]]:
        """The event in each encoding the candidates use (each pipeline learns it once)."""
        return {
            mode: pipeline.learn_transform(event, raw)
            for mode, pipeline in self.challengers.features.items()
        }

    def _classify(self, event: dict[str, Any], t: datetime) -> tuple[Any, float | None]:
        xs = self._encode(event)
        y = event[self.spec.label_field]
        served = self._board.served
        served_proba: dict = {}
        served_label = None
        for name, candidate in self.challengers.candidates.items():
            x = xs[candidate.numeric_only]
            proba = self._predictors[name](x)  # River's vote, exactly (see forest_vote.py)
            label = self._decide(candidate, proba, y)
            candidate.metrics.update_classification(y, proba, t, label)
            candidate.model.learn_one(x, y)
            if name == served:
                served_proba, served_label = proba, label
        threshold = self.challengers.served.threshold
        if threshold is not None:
            self.bundle.decision_threshold = threshold.value
        self._decision = served_label
        if not served_proba:
            return served_proba, None
        return served_proba, float(served_label != y)

    @staticmethod
    def _decide(candidate: CandidateState, proba: dict, y: Any) -> Any:
        """The label of one scored event: the candidate's threshold in force (chosen from
        earlier events only), then the event is recorded for later thresholds."""
        tuner = candidate.threshold
        if not proba or tuner is None:
            return argmax(proba)
        probability = float(proba.get(1, 0.0))
        label = tuner.decide(probability)
        tuner.record(probability, y == 1)
        return label

    def _regress(self, event: dict[str, Any], t: datetime) -> tuple[Any, float | None]:
        xs = self._encode(event)
        y = event[self.spec.label_field]
        served = self._board.served
        served_pred = None
        for name, candidate in self.challengers.candidates.items():
            x = xs[candidate.numeric_only]
            y_pred = candidate.model.predict_one(x)
            candidate.metrics.update_regression(y, y_pred, t)
            candidate.model.learn_one(x, y)
            if name == served:
                served_pred = y_pred
        return served_pred, None if served_pred is None else abs(y - served_pred)

    def _cluster(self, event: dict[str, Any], t: datetime) -> tuple[Any, float | None]:
        raw: dict[str, Any] = {}
        xs = self._encode(event, raw)
        served = self._board.served
        served_cluster, served_distances = None, None
        for name, candidate in self.challengers.candidates.items():
            x = xs[candidate.numeric_only]
            model = candidate.model
            if self._nearest[name]:
                cluster, distances = DistanceSilhouette.predict_nearest(x, model.centers)
            else:
                cluster = model.predict_one(x)
                distances = DistanceSilhouette.distances(x, cluster, model.centers)
            candidate.metrics.update_clustering(distances, t)
            model.learn_one(x)
            if name == served:
                served_cluster, served_distances = cluster, distances
        progress = self.progress
        if progress.analytics is not None:
            progress.analytics.update(served_cluster, raw)
        return served_cluster, None if served_distances is None else served_distances[0]
