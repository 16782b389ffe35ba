"""Compiled River forests (`compiled_trees`, behind `frozen.freeze`) predict bit-identically.

Every probe compares the compiled prediction with River's own `predict_proba_one` /
`predict_one` on an untouched copy of the same model (`==` and `repr`, so the sign of a zero
and every bit count): on the learner's real tfd and eta models and on River forests trained on
synthetic streams in each leaf, split and aggregation setting, for plain events, events missing
a feature, unseen categorical values and an empty event. Node, leaf and splitter types the
compiler does not know fall back to River's own methods.
"""

from __future__ import annotations

import copy
import itertools
import pickle
import random
from typing import Any

import numpy as np
import pytest

from coelho_pipelines.use_cases import get_spec
from coelho_serving.accel import compiled_trees
from coelho_serving.accel.frozen import (
    FrozenARFClassifier,
    FrozenARFRegressor,
    freeze,
    served_model,
)


def _events(key: str, n: int, seed: int) -> list[dict[str, Any]]:
    spec = get_spec(key)
    options = {"fraud_rate": 0.1} if spec.task == "classification" else {}
    return list(itertools.islice(spec.generator(seed=seed, **options), n))


def _probes(xs: list[dict[str, Any]], seed: int = 1) -> list[dict[str, Any]]:
    """The feature dicts, then copies with one feature missing, with unseen categorical
    values (or a numeric one far out of range), all strings unseen, and an empty dict."""
    rng = random.Random(seed)
    probes = list(xs)
    for i, x in enumerate(xs[:300]):
        names = sorted(x)
        missing = dict(x)
        del missing[names[i % len(names)]]
        probes.append(missing)
        odd = dict(x)
        name = rng.choice(names)
        odd[name] = "never-seen" if isinstance(odd[name], str) else 1e9 * (-1) ** i
        probes.append(odd)
    for x in xs[:50]:
        probes.append({k: "zzz" if isinstance(v, str) else v for k, v in x.items()})
    probes.append({})
    return probes


def _same(a: Any, b: Any) -> bool:
    return a == b and repr(a) == repr(b) and type(a) is type(b)


def _assert_classifier_equal(served: Any, reference: Any, probes: list[dict]) -> None:
    for x in probes:
        assert _same(served.predict_proba_one(x), reference.predict_proba_one(x)), x
        assert _same(served.predict_one(x), reference.predict_one(x)), x


def _assert_regressor_equal(served: Any, reference: Any, probes: list[dict]) -> None:
    for x in probes:
        assert _same(served.predict_one(x), reference.predict_one(x)), x


def _trees(served: Any) -> list[Any]:
    return getattr(served, "classifier", served).trees


def _leaves(node: Any) -> list[Any]:
    if node.__class__ is not compiled_trees.Branch:
        return [node]
    children = [node.left, node.right] if node.children is None else node.children.values()
    return [leaf for child in children for leaf in _leaves(child)]


def _compiled_everywhere(served: Any) -> bool:
    leaves = [leaf for root in _trees(served) for leaf in _leaves(root)]
    return not any(isinstance(leaf, compiled_trees.RiverLeaf | compiled_trees.RiverTree)
                   for leaf in leaves)  # fmt: skip


# --- the learner's real models ---------------------------------------------------------------


@pytest.fixture(scope="module", params=["tfd", "eta"])
def learned(request: pytest.FixtureRequest) -> tuple[Any, list[dict[str, Any]]]:
    from coelho_pipelines.incremental.learner import Learner, Record

    key = request.param
    events = _events(key, 1900, seed=11)
    learner = Learner(get_spec(key))
    learner.learn_many(Record(event) for event in events[:1500])
    return learner.bundle, events


def test_compiled_learner_models_equal_river_on_every_probe(learned: Any) -> None:
    bundle, events = learned
    reference = copy.deepcopy(bundle.model)  # River's predictions may touch its splitters
    state = pickle.dumps(bundle.model)
    served = freeze(bundle)
    assert served is not bundle and served.model is not bundle.model
    assert _compiled_everywhere(served.model)
    probes = _probes([bundle.features.transform(event) for event in events])
    if bundle.task == "classification":
        assert isinstance(served.model.classifier, FrozenARFClassifier)
        _assert_classifier_equal(served.model, reference, probes)
    else:
        assert isinstance(served.model, FrozenARFRegressor)
        _assert_regressor_equal(served.model, reference, probes)
    assert pickle.dumps(bundle.model) == state  # freezing and compiled predictions only read
    assert [served.predict(event) for event in events] == [bundle.predict(e) for e in events]


def test_learner_models_use_every_compiled_leaf_kind(learned: Any) -> None:
    """The real models exercise both the constant and the computed leaves."""
    bundle, _ = learned
    leaves = [leaf for root in _trees(freeze(bundle).model) for leaf in _leaves(root)]
    assert any(leaf.value is not None for leaf in leaves)
    assert any(leaf.value is None for leaf in leaves)
    if bundle.task == "classification":
        assert any(isinstance(leaf.call, compiled_trees.NaiveBayesVote) for leaf in leaves)


# --- River forests on synthetic streams ------------------------------------------------------


def _learned_and_served(model: Any, data: list[tuple[dict, Any]], served_type: type) -> tuple:
    """(a copy of the River model, its served model) after learning the first 1500 examples;
    the served model is of `served_type` and compiled throughout."""
    for x, y in data[:1500]:
        model.learn_one(x, y)
    reference = copy.deepcopy(model)
    served = served_model(model)
    assert isinstance(served, served_type) and _compiled_everywhere(served)
    return reference, served


def _agrawal(n: int, nominal: bool) -> list[tuple[dict, Any]]:
    """Agrawal, with its coded features as strings (nominal splits, nominal naive Bayes)."""
    from river.datasets import synth

    data = list(itertools.islice(synth.Agrawal(seed=4, classification_function=2), n))
    if not nominal:
        return data
    coded = ("elevel", "car", "zipcode")
    return [({k: f"v{v}" if k in coded else v for k, v in x.items()}, y) for x, y in data]


@pytest.mark.parametrize(
    ("leaf_prediction", "nominal", "binary_split", "weighted"),
    [
        ("nba", True, False, True),
        ("nba", True, True, False),
        ("nb", True, False, True),
        ("nb", False, True, True),
        ("mc", True, False, True),
        ("nba", False, False, False),
    ],
)
def test_compiled_arf_classifier_on_a_synthetic_stream(
    leaf_prediction: str, nominal: bool, binary_split: bool, weighted: bool
) -> None:
    from river import forest

    data = _agrawal(1900, nominal)
    model = forest.ARFClassifier(
        n_models=5, seed=2, grace_period=50, leaf_prediction=leaf_prediction,
        binary_split=binary_split, disable_weighted_vote=not weighted,
    )  # fmt: skip
    reference, served = _learned_and_served(model, data, FrozenARFClassifier)
    _assert_classifier_equal(served, reference, _probes([x for x, _ in data[1500:]]))


@pytest.mark.parametrize(
    ("leaf_prediction", "aggregation", "weighted", "multiway"),
    [
        ("adaptive", "median", True, False),
        ("adaptive", "mean", True, False),
        ("model", "mean", False, False),
        ("mean", "median", False, False),
        ("adaptive", "median", False, True),
        ("adaptive", "mean", True, True),
    ],
)
def test_compiled_arf_regressor_on_a_synthetic_stream(
    leaf_prediction: str, aggregation: str, weighted: bool, multiway: bool
) -> None:
    from river import forest, tree
    from river.datasets import synth

    data = list(itertools.islice(synth.Friedman(seed=4), 1900))
    splitter = tree.splitter.QOSplitter(allow_multiway_splits=True) if multiway else None
    model = forest.ARFRegressor(
        n_models=5, seed=2, grace_period=50, leaf_prediction=leaf_prediction,
        aggregation_method=aggregation, disable_weighted_vote=not weighted, splitter=splitter,
    )  # fmt: skip
    reference, served = _learned_and_served(model, data, FrozenARFRegressor)
    if multiway:
        kinds = {node.kind for root in served.trees for node in _branches(root)}
        assert compiled_trees.NUMERIC_MULTIWAY in kinds
    _assert_regressor_equal(served, reference, _probes([x for x, _ in data[1500:]]))


def _branches(node: Any) -> list[Any]:
    if node.__class__ is not compiled_trees.Branch:
        return []
    children = [node.left, node.right] if node.children is None else node.children.values()
    return [node, *(b for child in children for b in _branches(child))]


# --- fallbacks -------------------------------------------------------------------------------


def _trained_classifier(**options: Any) -> tuple[Any, list[dict]]:
    from river import forest

    data = _agrawal(1900, nominal=True)
    model = forest.ARFClassifier(n_models=3, seed=2, grace_period=50, **options)
    for x, y in data[:1500]:
        model.learn_one(x, y)
    return model, [x for x, _ in data[1500:]]


def test_an_unknown_leaf_type_is_asked_for_rivers_own_prediction() -> None:
    from river.tree.nodes.arf_htc_nodes import RandomLeafNaiveBayesAdaptive

    class OddLeaf(RandomLeafNaiveBayesAdaptive):
        def prediction(self, x: dict, *, tree: Any = None) -> dict:
            return {0: 0.25, 1: 0.75, "odd": 1.0}

    model, xs = _trained_classifier()
    leaf = next(model[0]._root.iter_leaves())
    leaf.__class__ = OddLeaf
    served = served_model(model)
    replaced = [node for node in _leaves(served.trees[0])
                if isinstance(node, compiled_trees.RiverLeaf)]  # fmt: skip
    assert len(replaced) == 1
    assert any(served.predict_proba_one(x).get("odd") for x in xs + [{}])  # the leaf is reached
    _assert_classifier_equal(served, copy.deepcopy(model), _probes(xs))


def test_an_unknown_splitter_falls_back_to_rivers_leaf_prediction() -> None:
    from river import tree

    model, xs = _trained_classifier(
        leaf_prediction="nb", splitter=tree.splitter.HistogramSplitter()
    )
    served = served_model(model)
    leaves = [leaf for root in served.trees for leaf in _leaves(root)]
    assert any(isinstance(leaf, compiled_trees.RiverLeaf) for leaf in leaves)
    _assert_classifier_equal(served, copy.deepcopy(model), _probes(xs))


def test_an_unknown_branch_type_serves_that_tree_with_river() -> None:
    from river.tree.nodes.branch import NumericBinaryBranch

    class OddBranch(NumericBinaryBranch):
        pass

    model, xs = _trained_classifier()
    branched = [t for t in model if isinstance(t._root, NumericBinaryBranch)]
    assert branched, "no tree split on a numeric feature"
    branched[0]._root.__class__ = OddBranch
    served = served_model(model)
    fallbacks = [root for root in served.trees if isinstance(root, compiled_trees.RiverTree)]
    assert len(fallbacks) == 1
    _assert_classifier_equal(served, copy.deepcopy(model), _probes(xs))


def test_an_unknown_tree_type_serves_that_tree_with_river() -> None:
    from river import forest
    from river.datasets import synth

    data = list(itertools.islice(synth.Friedman(seed=4), 1300))
    model = forest.ARFRegressor(n_models=3, seed=2, grace_period=50)
    for x, y in data[:1000]:
        model.learn_one(x, y)
    base = type(model[1])

    class OddTree(base):  # type: ignore[valid-type,misc]
        def predict_one(self, x: dict) -> float:
            return base.predict_one(self, x)

    model[1].__class__ = OddTree
    served = served_model(model)
    assert isinstance(served.trees[1], compiled_trees.RiverTree)
    assert not isinstance(served.trees[0], compiled_trees.RiverTree)
    _assert_regressor_equal(served, copy.deepcopy(model), _probes([x for x, _ in data[1000:]]))


def test_an_empty_forest_is_left_to_river() -> None:
    from river import forest

    served = served_model(forest.ARFClassifier(n_models=3, seed=2))
    assert served.predict_proba_one({"a": 1.0}) == {}


# --- pure logic (no River model) -------------------------------------------------------------


def test_median_of_floats_is_numpys_bit_for_bit() -> None:
    rng = random.Random(3)
    for n in (1, 2, 3, 9, 10, 11):
        for _ in range(300):
            values = [rng.choice([rng.uniform(-5, 5), rng.gauss(0, 1e6), 1.5, -2.25])
                      for _ in range(n)]  # fmt: skip
            expected = float(np.median(np.array(values)))
            got = compiled_trees.median(values)
            assert got is None or (got == expected and repr(got) == repr(expected))
    assert compiled_trees.median([0.0, -0.0, 1.0]) is None  # the sign of zero: numpy decides
    assert compiled_trees.median([float("nan"), 1.0]) is None
    assert compiled_trees.median([1, 2.0]) is None  # not all floats: numpy converts
