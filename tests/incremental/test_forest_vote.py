"""ForestVote answers exactly what River's ARFClassifier.predict_proba_one answers."""

from __future__ import annotations

import itertools

import pytest
from incremental_helpers import generate

from coelho_pipelines.accel.forest_vote import ForestVote
from coelho_pipelines.incremental.features import FeaturePipeline
from coelho_pipelines.use_cases import get_spec
from coelho_pipelines.use_cases.model_factories import arf_classifier

TFD = get_spec("tfd")


def _agrawal(n: int, seed: int = 7) -> list[tuple[dict, int]]:
    from river.datasets import synth

    return list(itertools.islice(synth.Agrawal(classification_function=2, seed=seed), n))


def _assert_votes_equal_river(model, vote, stream) -> int:
    """Both answers on the same model state, event by event, while it learns; returns how
    many predictions had a non-empty vote."""
    voted = 0
    for x, y in stream:
        expected = model.predict_proba_one(x)
        answer = vote(x)
        assert answer == expected
        assert list(answer) == list(expected)  # same labels in the same order
        voted += bool(expected)
        model.learn_one(x, y)
    return voted


def test_tfd_learner_model_votes_equal_river_while_it_learns() -> None:
    events = generate(TFD, 1500, seed=11, fraud_rate=0.2)
    features = FeaturePipeline(TFD)
    stream = [(features.learn_transform(e), TFD.label(e)) for e in events]
    model = arf_classifier(seed=5)
    vote = ForestVote.for_model(model)
    assert isinstance(vote.__self__, ForestVote)
    voted = _assert_votes_equal_river(model, vote, stream)
    assert voted >= len(stream) - 5  # a vote for all but the events before it first learns
    assert model.classifier._metrics[0].cms[0].n_samples > 0  # the cached weights did change


@pytest.mark.parametrize(
    "metric_name",
    ["ROCAUC", "Accuracy", "LogLoss"],  # cached by its matrices, by its matrix, uncached
)
@pytest.mark.parametrize("weighted", [True, False])
def test_plain_forest_votes_equal_river_for_each_metric_kind(metric_name, weighted) -> None:
    from river import forest, metrics

    model = forest.ARFClassifier(
        n_models=5,
        metric=getattr(metrics, metric_name)(),
        disable_weighted_vote=not weighted,
        grace_period=30,
        seed=3,
    )
    vote = ForestVote.for_model(model)
    assert isinstance(vote.__self__, ForestVote)
    assert _assert_votes_equal_river(model, vote, _agrawal(800)) == 799


def test_a_replaced_tree_metric_is_noticed() -> None:
    """On drift ARF swaps a tree's metric for a fresh clone: the cached weight must go."""
    from river import forest, metrics

    model = forest.ARFClassifier(n_models=4, metric=metrics.ROCAUC(), seed=1, grace_period=30)
    vote = ForestVote.for_model(model)
    stream = _agrawal(600)
    _assert_votes_equal_river(model, vote, stream[:400])
    x = stream[400][0]
    vote(x)  # weights cached
    model._metrics[2] = model.metric.clone()
    model._metrics[0].update(True, {True: 0.9, False: 0.1})
    assert vote(x) == model.predict_proba_one(x)
    _assert_votes_equal_river(model, vote, stream[400:])


def test_drifting_stream_with_tree_replacements_votes_equal_river() -> None:
    from river import drift, forest, metrics
    from river.datasets import synth

    stream = list(
        itertools.islice(
            synth.ConceptDriftStream(
                synth.Agrawal(classification_function=0, seed=1),
                synth.Agrawal(classification_function=4, seed=2),
                position=500,
                width=20,
                seed=3,
            ),
            1500,
        )
    )
    model = forest.ARFClassifier(
        n_models=6,
        metric=metrics.ROCAUC(),
        drift_detector=drift.ADWIN(delta=0.01),
        warning_detector=drift.ADWIN(delta=0.05),
        grace_period=20,
        seed=9,
    )
    _assert_votes_equal_river(model, ForestVote.for_model(model), stream)
    assert model.n_drifts_detected() > 0  # trees (and their metrics) were replaced


def test_other_models_keep_their_own_predict_proba_one() -> None:
    from river import imblearn, linear_model

    logistic = linear_model.LogisticRegression()
    assert ForestVote.for_model(logistic) == logistic.predict_proba_one

    class VotingSampler(imblearn.RandomUnderSampler):
        def predict_proba_one(self, x, **kwargs):
            return {True: 1.0}

    sampler = VotingSampler(arf_classifier().classifier, desired_dist={0: 0.5, 1: 0.5})
    assert ForestVote.for_model(sampler) == sampler.predict_proba_one


def test_an_untrained_forest_answers_and_initialises_as_river_does() -> None:
    model = arf_classifier(seed=2)
    x, _ = _agrawal(1)[0]
    vote = ForestVote.for_model(model)
    assert vote(x) == {}
    assert len(model.classifier) == model.classifier.n_models


# --- the fence ----------------------------------------------------------------------------------


def test_the_learner_vote_probe_agrees_with_river() -> None:
    from coelho_pipelines.accel import forest_vote

    assert forest_vote.agrees_while_learning(lambda f: ForestVote(f).predict_proba_one)


def test_the_learner_votes_with_river_off_the_allow_list(monkeypatch) -> None:
    from coelho_pipelines.accel import forest_vote
    from coelho_pipelines.accel.fence import Fence

    gate = Fence("vote", "river", forest_vote.RIVER_VERSIONS, version=lambda _name: "9.9.fake")
    monkeypatch.setattr(forest_vote, "RIVER", gate)
    model = arf_classifier(seed=5)
    vote = ForestVote.for_model(model)
    assert vote == model.predict_proba_one  # River's own
    assert not isinstance(getattr(vote, "__self__", None), ForestVote)


class FakeBrokenVote:
    """A deliberately wrong vote: River's, with the trees' weights ignored."""

    def __init__(self, forest) -> None:
        self.forest = forest

    def __call__(self, x: dict) -> dict:
        from coelho_pipelines.accel import forest_vote

        if len(self.forest) == 0:
            return self.forest.predict_proba_one(x)
        return forest_vote.combine(tree.predict_proba_one(x) for tree in self.forest)


def test_the_learner_votes_with_river_when_the_probe_disagrees(monkeypatch) -> None:
    from coelho_pipelines.accel import forest_vote
    from coelho_pipelines.accel.fence import Fence

    assert not forest_vote.agrees_while_learning(FakeBrokenVote)
    gate = Fence(
        "vote",
        "river",
        forest_vote.RIVER_VERSIONS,
        lambda: forest_vote.agrees_while_learning(FakeBrokenVote),
    )
    monkeypatch.setattr(forest_vote, "RIVER", gate)
    model = arf_classifier(seed=5)
    assert ForestVote.for_model(model) == model.predict_proba_one
    assert "disagrees" in gate.reason()
