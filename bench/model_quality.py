"""Model quality of the live (online) models: today's model beside the served leader.

    .venv/bin/python bench/model_quality.py [--events 20000] [--window 5000] [--seed 7]
        [--use-cases tfd,eta,ecci] [--catboost-iterations 500]

One default stream per use case (the spec's generator, seed 7), learned prequentially:
- "today": the original model alone (`river_model`, predict -> metric -> learn, argmax
  decisions), as before online challengers;
- "served": the learner (`incremental.learner.Learner`) with every candidate, its leaderboard
  and online decision threshold; the quality is the model it serves, event by event (the
  promotions it made are listed).
Quality is measured over the newest `--window` events:
- tfd: ROC AUC and F2 (targets >= 0.97 and >= 0.63): River's RollingROCAUC and a rolling FBeta;
- eta: MAE beside the batch champion's on the same window: CatBoost trained with the project's
  batch code (`models.batch_model.train`, small config) on the older events (the last 20% of
  them for early stopping), features from the spec's definitions (the same values the batch
  SQL computes; tests check they agree). Target: live MAE <= 1.15x batch MAE;
- ecci: the adjusted Rand index vs the generator's latent segment over customers with >= 3
  events when `ecci_ari` can compute it (the ecci customer-segment work fills it in).
Throughput is the learner's (all candidates, features, metrics, thresholds) in events/s;
target >= 100 ev/s (10x the default produce rate). Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coelho_pipelines.incremental.learner import Learner, Record  # noqa: E402
from coelho_pipelines.use_cases import get_spec  # noqa: E402
from coelho_pipelines.use_cases.spec import UseCaseSpec  # noqa: E402

TARGETS = {"tfd_roc_auc": 0.97, "tfd_f2": 0.63, "eta_ratio": 1.15, "throughput": 100.0}


@dataclass
class Row:
    use_case: str
    model: str
    quality: dict[str, float | None]
    speed: float | None = None
    notes: list[str] = field(default_factory=list)


def _events(spec: UseCaseSpec, n: int, seed: int) -> list[dict[str, Any]]:
    return list(itertools.islice(spec.generator(seed=seed), n))


def _window_metrics(spec: UseCaseSpec, window: int) -> dict[str, Any]:
    from river import metrics, utils

    if spec.task == "classification":
        return {
            "ROC AUC": metrics.RollingROCAUC(window_size=window, pos_val=1),
            "F2": utils.Rolling(metrics.FBeta, window_size=window, beta=2, pos_val=1),
            "precision": utils.Rolling(metrics.Precision, window_size=window, pos_val=1),
            "recall": utils.Rolling(metrics.Recall, window_size=window, pos_val=1),
        }
    return {"MAE": utils.Rolling(metrics.MAE, window_size=window)}


def _update(spec: UseCaseSpec, scores: dict[str, Any], y: Any, output: Any, label: Any) -> None:
    if spec.task == "classification":
        if not output:
            return
        for name, metric in scores.items():
            metric.update(y, output if name == "ROC AUC" else label)
    elif output is not None:
        for metric in scores.values():
            metric.update(y, output)


def today(spec: UseCaseSpec, events: list[dict], window: int) -> Row:
    """The original model alone with argmax decisions, as the learner served it before."""
    from coelho_pipelines.incremental.features import FeaturePipeline
    from coelho_pipelines.incremental.metrics import argmax

    features, model = FeaturePipeline(spec), spec.river_model()
    scores = _window_metrics(spec, window)
    started = time.perf_counter()
    for event in events:
        x, y = features.learn_transform(event), spec.label(event)
        if spec.task == "classification":
            proba = model.predict_proba_one(x)
            _update(spec, scores, y, proba, argmax(proba))
        else:
            _update(spec, scores, y, model.predict_one(x), None)
        model.learn_one(x, y)
    speed = len(events) / (time.perf_counter() - started)
    quality = {k: m.get() for k, m in scores.items()}
    return Row(spec.key, f"today: {spec.river_model_name}", quality, speed)


def served(spec: UseCaseSpec, events: list[dict], window: int) -> tuple[Row, Learner]:
    """The learner with all candidates; quality of what it served on each event."""
    learner = Learner(spec)
    scores = _window_metrics(spec, window)
    label_field = spec.label_field
    steps = []
    started = time.perf_counter()
    for event in events:
        steps.append(learner.learn(Record(event)))
    speed = len(events) / (time.perf_counter() - started)
    # The served decisions are re-derived from each step (outside the timed loop).
    for event, step in zip(events, steps, strict=True):
        if step.error is not None or label_field is None:
            continue
        y = event[label_field]
        if spec.task == "classification":
            proba = step.prediction or {}
            label = step.decision
            _update(spec, scores, y, proba, label)
        else:
            _update(spec, scores, y, step.prediction, None)
    board = learner.leaderboard
    quality = {k: m.get() for k, m in scores.items()}
    notes = [
        f"promoted {p.previous} -> {p.served} at {p.events_learned} events"
        for p in board.promotions
    ]
    if spec.task == "classification":
        notes.append(f"threshold now {learner.bundle.decision_threshold}")
    name = f"served: {board.served} (of {len(board.names)})"
    return Row(spec.key, name, quality, speed, notes), learner


def batch_champion(
    spec: UseCaseSpec, events: list[dict], window: int, iterations: int
) -> tuple[Row, float]:
    """CatBoost via the project's batch training on the older events, scored on the window."""
    import pandas as pd

    from coelho_pipelines.models import batch_model
    from coelho_pipelines.models.encoding import FeatureLayout
    from coelho_pipelines.use_cases.model_factories import CATBOOST_DEFAULTS

    def frame(rows: list[dict]) -> pd.DataFrame:
        data = [{**spec.extract_features(e), spec.label_field: spec.label(e)} for e in rows]
        return pd.DataFrame(data)

    older, newest = events[:-window], events[-window:]
    cut = int(len(older) * 0.8)
    params = dict(CATBOOST_DEFAULTS) | {"iterations": iterations}
    started = time.perf_counter()
    trained = batch_model.train(
        spec.task, spec.key, FeatureLayout.of(spec.features), frame(older[:cut]),
        frame(older[cut:]), spec.label_field, params, spec.batch_model,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    test = frame(newest)
    predicted = trained.model.predict_frame(test)["prediction"].to_numpy()
    mae = float(abs(test[spec.label_field].to_numpy() - predicted).mean())
    row = Row(spec.key, f"batch: {spec.batch_model_name}", {"MAE": mae})
    row.notes.append(f"trained on {len(older)} older events in {seconds:.1f} s")
    return row, mae


def ecci_ari(spec: UseCaseSpec, events: list[dict], learner: Learner) -> float | None:
    """Hook for the ecci customer-segment work: the adjusted Rand index of the live model's
    segments vs the latent segment (customers with >= 3 events); None until it exists."""
    segment_of = getattr(learner, "customer_segments", None)
    if segment_of is None:
        return None
    return segment_of(events)  # pragma: no cover - filled in by the ecci work


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def print_table(rows: list[Row], header: bool = True) -> None:
    if header:
        print("| use case | model | quality (newest window) | speed | notes |")
        print("|---|---|---|---|---|")
    for row in rows:
        quality = ", ".join(f"{k} {_fmt(v)}" for k, v in row.quality.items())
        speed = "" if row.speed is None else f"{row.speed:,.0f} ev/s"
        print(f"| {row.use_case} | {row.model} | {quality} | {speed} | {'; '.join(row.notes)} |",
              flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--use-cases", default="tfd,eta,ecci")
    parser.add_argument("--catboost-iterations", type=int, default=500)
    args = parser.parse_args()
    print(f"\n{args.events:,} default-stream events per use case, seed {args.seed}, "
          f"quality over the newest {args.window:,}\n", flush=True)  # fmt: skip
    print_table([])  # the header; each row follows as it is measured, then the whole table
    rows: list[Row] = []
    verdicts: list[str] = []
    for key in args.use_cases.split(","):
        spec = get_spec(key)
        events = _events(spec, args.events, args.seed)
        if spec.task == "clustering":
            row, learner = served(spec, events, args.window)
            row.quality = {"ARI": ecci_ari(spec, events, learner)}
            rows.append(row)
            print_table(rows[-1:], header=False)
            continue
        rows.append(today(spec, events, args.window))
        print_table(rows[-1:], header=False)
        row, _learner = served(spec, events, args.window)
        rows.append(row)
        print_table(rows[-1:], header=False)
        speed_ok = (row.speed or 0.0) >= TARGETS["throughput"]
        verdicts.append(f"{key} throughput {row.speed:,.0f} ev/s >= 100: {speed_ok}")
        if spec.task == "classification":
            auc, f2 = row.quality["ROC AUC"], row.quality["F2"]
            verdicts.append(f"tfd ROC AUC {auc:.3f} >= 0.97: {auc >= TARGETS['tfd_roc_auc']}")
            verdicts.append(f"tfd F2 {f2:.3f} >= 0.63: {f2 >= TARGETS['tfd_f2']}")
        else:
            batch_row, batch_mae = batch_champion(
                spec, events, args.window, args.catboost_iterations
            )
            rows.append(batch_row)
            print_table(rows[-1:], header=False)
            live = row.quality["MAE"]
            ratio = live / batch_mae
            verdicts.append(
                f"eta live MAE {live:.1f} / batch MAE {batch_mae:.1f} = {ratio:.3f}"
                f" <= 1.15: {ratio <= TARGETS['eta_ratio']}"
            )
    print()
    print_table(rows)
    print()
    for verdict in verdicts:
        print(verdict)


if __name__ == "__main__":
    main()
