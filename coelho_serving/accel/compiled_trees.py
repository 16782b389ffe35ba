"""River Hoeffding trees of a served forest, compiled once into flat nodes.

A served model never learns, so everything River recomputes per prediction from a tree's
fixed state is computed once here: the child each branch takes when its feature is missing or
its nominal value unseen (`most_common_path`, which sums subtree weights on every call), the
output of majority-class leaves (and of adaptive leaves whose choice is the majority class or
the target mean), the priors and Gaussian parameters of naive Bayes leaves, and the tree's vote
weight. What is left per call is a loop down the tree and, in naive Bayes leaves, River's own
float operations in River's order (river 0.26 `Branch.walk`, `HoeffdingTreeClassifier.
predict_proba_one`, `do_naive_bayes_prediction`, `Gaussian.log_pdf`, `NominalSplitterClassif.
cond_proba`, `HoeffdingTreeRegressor.predict_one`), so predictions are bit-identical.

A node, leaf, splitter or tree type the compiler does not know is never guessed at: an unknown
leaf is asked for River's `prediction`, and a tree with an unknown branch (or an unknown tree)
is served by River's own `predict_proba_one` / `predict_one`. The River objects are only read.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from coelho_pipelines.accel.forest_vote import weigh

HALF_LOG_TAU = 0.5 * math.log(math.tau)  # river.proba.gaussian._HALF_LOG_TAU
NEG_INF = -math.inf
_MISSING = object()

NUMERIC_BINARY, NOMINAL_BINARY, NUMERIC_MULTIWAY, NOMINAL_MULTIWAY = range(4)


class NotCompiled(Exception):
    """The tree holds a node type the compiler does not replicate."""


class Branch:
    """A compiled `DTBranch`: `kind`, its test, children and the precomputed fallback child."""

    __slots__ = ("kind", "feature", "test", "left", "right", "children", "common")

    def __init__(self, kind: int, feature: Any, test: Any, common: Any) -> None:
        self.kind = kind
        self.feature = feature
        self.test = test
        self.common = common
        self.left = self.right = self.children = None


class Leaf:
    """A compiled leaf: a constant `value` (not None), or `call(x)` computing it."""

    __slots__ = ("value", "call")

    def __init__(self, value: Any = None, call: Callable[[dict], Any] | None = None) -> None:
        self.value = value
        self.call = call


class RiverLeaf(Leaf):
    """A leaf the compiler does not replicate: `call` asks River's own `prediction`."""

    __slots__ = ()


class RiverTree(Leaf):
    """A tree the compiler does not replicate: `call` asks River's own tree method."""

    __slots__ = ()


def find_leaf(node: Any, x: dict) -> Leaf:
    """River's `Branch.traverse(x, until_leaf=True)`: `branch_no(x)` at every branch, the most
    common path where that raises KeyError (missing feature, unseen value or slot)."""
    while node.__class__ is Branch:
        kind = node.kind
        try:
            if kind == NUMERIC_BINARY:
                node = node.left if x[node.feature] <= node.test else node.right
            elif kind == NOMINAL_MULTIWAY:
                node = node.children[x[node.feature]]
            elif kind == NOMINAL_BINARY:
                node = node.left if x[node.feature] == node.test else node.right
            else:
                node = node.children[math.floor(x[node.feature] / node.test)]
        except KeyError:
            node = node.common
    return node


@functools.cache
def _river() -> dict[str, Any]:
    """The River classes and functions the compiler recognises (imported lazily)."""
    from river.proba import gaussian
    from river.tree import HoeffdingTreeClassifier, HoeffdingTreeRegressor
    from river.tree.nodes import branch, htc_nodes, htr_nodes
    from river.tree.splitter import GaussianSplitter
    from river.tree.splitter.nominal_splitter_classif import NominalSplitterClassif

    return {
        "branches": {
            branch.NumericBinaryBranch: NUMERIC_BINARY,
            branch.NominalBinaryBranch: NOMINAL_BINARY,
            branch.NumericMultiwayBranch: NUMERIC_MULTIWAY,
            branch.NominalMultiwayBranch: NOMINAL_MULTIWAY,
        },
        "DTBranch": branch.DTBranch,
        "classifier_predict": HoeffdingTreeClassifier.predict_proba_one,
        "regressor_predict": HoeffdingTreeRegressor.predict_one,
        "majority": htc_nodes.LeafMajorityClass.prediction,
        "naive_bayes": htc_nodes.LeafNaiveBayes.prediction,
        "naive_bayes_adaptive": htc_nodes.LeafNaiveBayesAdaptive.prediction,
        "mean": htr_nodes.LeafMean.prediction,
        "model": htr_nodes.LeafModel.prediction,
        "adaptive": htr_nodes.LeafAdaptive.prediction,
        "Gaussian": gaussian.Gaussian,
        "log_pdf": gaussian.Gaussian.log_pdf,
        "half_log_tau": getattr(gaussian, "_HALF_LOG_TAU", None),
        "GaussianSplitter": GaussianSplitter,
        "gaussian_cond_log_proba": GaussianSplitter.cond_log_proba,
        "NominalSplitterClassif": NominalSplitterClassif,
        "nominal_cond_proba": NominalSplitterClassif.cond_proba,
    }


# --- structure -------------------------------------------------------------------------------

_TEST_ATTRIBUTE = {NUMERIC_BINARY: "threshold", NOMINAL_BINARY: "value", NUMERIC_MULTIWAY: "radius"}


def compile_node(node: Any, compile_leaf: Callable[[Any], Leaf]) -> Branch | Leaf:
    """The compiled copy of a River node (recursively); NotCompiled for an unknown branch."""
    river = _river()
    if not isinstance(node, river["DTBranch"]):
        if node is None:
            raise NotCompiled("a missing child")
        return compile_leaf(node)
    kind = river["branches"].get(type(node))
    if kind is None:
        raise NotCompiled(f"branch type {type(node).__name__}")
    children = [compile_node(child, compile_leaf) for child in node.children]
    position, _ = node.most_common_path()
    test = getattr(node, _TEST_ATTRIBUTE[kind]) if kind in _TEST_ATTRIBUTE else None
    compiled = Branch(kind, node.feature, test, children[position])
    if kind in (NUMERIC_BINARY, NOMINAL_BINARY):
        compiled.left, compiled.right = children
    else:
        if any(not 0 <= index < len(children) for index in node._mapping.values()):
            raise NotCompiled("a branch mapping past its children")
        compiled.children = {value: children[index] for value, index in node._mapping.items()}
    return compiled


def compile_root(tree: Any, compile_leaf: Callable[[Any], Leaf]) -> Branch | Leaf | None:
    """The tree's compiled root, None when the tree has no root yet."""
    root = tree._root
    return None if root is None else compile_node(root, compile_leaf)


# --- classification --------------------------------------------------------------------------


class NaiveBayesVote:
    """`do_naive_bayes_prediction` of one leaf, then the tree's and forest's steps.

    `classes` holds, per class in the leaf's order, (class, log prior, terms) with None terms
    for a class of zero weight; a term is (feature, nominal log-probabilities or None, mu,
    -2 variance, 0.5 log variance) in splitter order, Gaussians that always give -inf left out.
    """

    __slots__ = ("classes", "template", "weight")

    def __init__(self, classes: list, template: dict, weight: float | None) -> None:
        self.classes = classes
        self.template = template
        self.weight = weight

    def __call__(self, x: dict) -> dict:
        votes = {}
        get = x.get
        for label, vote, terms in self.classes:
            if terms is None:
                votes[label] = 0.0
                continue
            for feature, table, mu, minus_two_variance, half_log_variance in terms:
                value = get(feature, _MISSING)
                if value is _MISSING:
                    continue
                if table is not None:
                    vote += table.get(value, 0.0)
                    continue
                log_p = (value - mu) ** 2 / minus_two_variance - HALF_LOG_TAU - half_log_variance
                if log_p > NEG_INF:
                    vote += log_p
            votes[label] = vote
        max_ll = max(votes.values())
        lse = max_ll + math.log(sum(math.exp(log_proba - max_ll) for log_proba in votes.values()))
        for label in votes:
            votes[label] = math.exp(votes[label] - lse)
        proba = self.template.copy()
        proba.update(votes)
        return weigh(proba, self.weight)


def _gaussian_term(feature: Any, distribution: Any) -> tuple | None:
    """(feature, None, mu, -2 variance, 0.5 log variance), None when `log_pdf` is always
    -inf (`Gaussian.log_pdf`'s own expressions), NotCompiled for another distribution."""
    river = _river()
    if (
        type(distribution) is not river["Gaussian"]
        or type(distribution).log_pdf is not (river["log_pdf"])
    ):
        raise NotCompiled(f"distribution {type(distribution).__name__}")
    var = distribution._var
    n = var.mean.n
    if n > var.ddof:
        variance = var._S / (n - var.ddof)
        if variance > 0.0:
            mu = var.mean._mean
            return (feature, None, mu, -2.0 * variance, 0.5 * math.log(variance))
    return None


def _nominal_table(splitter: Any, label: Any) -> dict:
    """value -> what `cond_proba` adds to the vote (`math.log(p) if p > 0 else 0.0`), read
    without touching the splitter's defaultdict (River's call inserts an empty entry)."""
    class_dist = splitter._att_dist_per_class.get(label, {})
    total = sum(class_dist.values())
    table = {}
    for value, weight in class_dist.items():
        try:
            tmp = weight / total
        except ZeroDivisionError:
            tmp = 0.0
        table[value] = math.log(tmp) if tmp > 0 else 0.0
    return table


def _naive_bayes_terms(splitters: dict, label: Any) -> list[tuple]:
    river = _river()
    terms = []
    for feature, splitter in splitters.items():
        kind = type(splitter)
        if (
            kind is river["GaussianSplitter"]
            and kind.cond_log_proba is river["gaussian_cond_log_proba"]
        ):
            distribution = splitter._att_dist_per_class.get(label)
            term = None if distribution is None else _gaussian_term(feature, distribution)
            if term is not None:
                terms.append(term)
        elif (
            kind is river["NominalSplitterClassif"]
            and kind.cond_proba is river["nominal_cond_proba"]
            and getattr(splitter, "cond_log_proba", None) is None
        ):
            terms.append((feature, _nominal_table(splitter, label), None, None, None))
        else:
            raise NotCompiled(f"splitter {kind.__name__}")
    return terms


def _naive_bayes_leaf(leaf: Any, template: dict, weight: float | None) -> Leaf:
    """A leaf predicting with `do_naive_bayes_prediction`: constant when it reads no feature."""
    from river.tree.utils import do_naive_bayes_prediction

    stats = leaf.stats
    splitters = leaf.splitters
    total_weight = sum(stats.values())
    if not stats or total_weight == 0 or not splitters:
        return _constant_vote(do_naive_bayes_prediction({}, stats, splitters), template, weight)
    if _river()["half_log_tau"] != HALF_LOG_TAU:
        raise NotCompiled("Gaussian.log_pdf constants")
    classes = []
    for label, class_weight in stats.items():
        if class_weight > 0:
            prior = math.log(class_weight / total_weight)
            classes.append((label, prior, _naive_bayes_terms(splitters, label)))
        else:
            classes.append((label, 0.0, None))
    return Leaf(call=NaiveBayesVote(classes, template, weight))


def _constant_vote(prediction: dict, template: dict, weight: float | None) -> Leaf:
    proba = template.copy()
    proba.update(prediction)
    return Leaf(value=weigh(proba, weight))


def _river_leaf_vote(leaf: Any, tree: Any, template: dict, weight: float | None) -> Leaf:
    """An unknown leaf: River's own `prediction`, then the tree's and forest's steps."""

    def call(x: dict) -> dict:
        proba = template.copy()
        proba.update(leaf.prediction(x, tree=tree))
        return weigh(proba, weight)

    return RiverLeaf(call=call)


def classifier_leaf(leaf: Any, tree: Any, template: dict, weight: float | None) -> Leaf:
    """The compiled vote of one leaf of a `HoeffdingTreeClassifier` (weighted by the forest)."""
    river = _river()
    prediction = type(leaf).prediction
    naive_bayes = False
    if prediction is river["naive_bayes"]:
        naive_bayes = leaf.is_active() and leaf.total_weight >= tree.nb_threshold
    elif prediction is river["naive_bayes_adaptive"]:
        naive_bayes = leaf.is_active() and leaf._nb_correct_weight >= leaf._mc_correct_weight
    elif prediction is not river["majority"]:
        return _river_leaf_vote(leaf, tree, template, weight)
    try:
        if naive_bayes:
            return _naive_bayes_leaf(leaf, template, weight)
        return _constant_vote(river["majority"](leaf, {}, tree=tree), template, weight)
    except NotCompiled:
        return _river_leaf_vote(leaf, tree, template, weight)


def classifier_tree(tree: Any, weight: float | None) -> Branch | Leaf:
    """One tree of an `ARFClassifier`: its compiled root yielding the tree's weighted
    `predict_proba_one`, or a leaf calling River's own when the tree is not replicated."""
    if type(tree).predict_proba_one is _river()["classifier_predict"]:
        template = {c: 0.0 for c in sorted(tree.classes)}
        try:
            root = compile_root(tree, lambda leaf: classifier_leaf(leaf, tree, template, weight))
        except NotCompiled:
            pass
        else:
            return Leaf(value=weigh(template, weight)) if root is None else root
    return RiverTree(call=lambda x: weigh(tree.predict_proba_one(x), weight))


# --- regression -------------------------------------------------------------------------------


def regressor_leaf(leaf: Any, tree: Any) -> Leaf:
    """The compiled output of one leaf of a `HoeffdingTreeRegressor`."""
    river = _river()
    prediction = type(leaf).prediction
    if prediction is river["mean"] or (
        prediction is river["adaptive"] and leaf._fmse_mean < leaf._fmse_model
    ):
        return Leaf(value=leaf.stats.mean.get())
    if prediction is river["model"] or prediction is river["adaptive"]:
        return Leaf(call=leaf._leaf_model.predict_one)
    return RiverLeaf(call=lambda x: leaf.prediction(x, tree=tree))


def regressor_tree(tree: Any) -> Branch | Leaf:
    """One tree of an `ARFRegressor`: its compiled root yielding the tree's `predict_one`, or a
    leaf calling River's own when the tree is not replicated."""
    if type(tree).predict_one is _river()["regressor_predict"]:
        try:
            root = compile_root(tree, lambda leaf: regressor_leaf(leaf, tree))
        except NotCompiled:
            pass
        else:
            return Leaf(value=0.0) if root is None else root
    return RiverTree(call=tree.predict_one)


def median(values: list) -> float | None:
    """`float(np.median(values))` (the middle value, or the mean of the middle two as numpy
    computes it) for Python floats; None, for numpy to decide, when a value is not a float or
    is NaN, or the median is zero (numpy's partition decides the sign of a zero)."""
    if not values or any(type(v) is not float or v != v for v in values):
        return None
    ordered = sorted(values)
    n = len(ordered)
    half = n // 2
    result = ordered[half] if n % 2 else (ordered[half - 1] + ordered[half]) / 2
    return None if result == 0.0 else result
