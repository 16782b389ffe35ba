"""Target tab: class or cluster balance and how features relate to the target."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from coelho_pipelines.plots.common import PlotData, axes

MI_ROWS = 2000
BALANCED_BINS = 5


def class_balance(data: PlotData) -> Figure:
    """Classes per split (classification), target distribution per split (regression) or
    cluster sizes (clustering)."""
    fig, ax = axes(6.5, 4.5)
    splits = {"train": data.train, "validation": data.validation, "test": data.test}
    if data.task == "classification":
        width = 0.25
        for i, (name, frame) in enumerate(splits.items()):
            counts = frame[data.label].value_counts().reindex([0, 1], fill_value=0)
            bars = ax.bar(np.arange(2) + i * width, counts.to_numpy(), width, label=name)
            ax.bar_label(bars, fontsize=7)
        ax.set_xticks(np.arange(2) + width, data.class_names)
        ax.set_yscale("symlog")
        ax.set_ylabel("events (symlog)")
        ax.set_title("Class balance by split")
    elif data.task == "regression":
        for name, frame in splits.items():
            ax.hist(frame[data.label], bins=40, alpha=0.5, density=True, label=name)
        ax.set_xlabel(data.target_name)
        ax.set_ylabel("density")
        ax.set_title("Target distribution by split")
    else:
        counts = pd.Series(data.y_pred).value_counts().sort_index()
        bars = ax.bar(counts.index.astype(str), counts.to_numpy(), color="tab:blue")
        ax.bar_label(bars, fontsize=8)
        ax.set_xlabel("cluster")
        ax.set_ylabel("test events")
        ax.set_title("Cluster balance (test split)")
        return fig
    ax.legend()
    return fig


def _discrete_matrix(data: PlotData, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    normalized = data.layout.normalize(frame)
    columns, discrete = [], []
    for name in data.layout.order:
        column = normalized[name]
        if name in data.layout.categorical:
            columns.append(pd.factorize(column)[0].astype(float))
            discrete.append(True)
        else:
            columns.append(column.fillna(column.median()).fillna(0.0).to_numpy())
            discrete.append(False)
    return np.column_stack(columns), np.asarray(discrete)


def feature_correlation_mutual_info(data: PlotData) -> Figure:
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    frame = data.test_sample.iloc[:MI_ROWS]
    target = data.sample_target[:MI_ROWS]
    x, discrete = _discrete_matrix(data, frame)
    score = mutual_info_regression if data.task == "regression" else mutual_info_classif
    values = score(x, target, discrete_features=discrete, random_state=data.seed)
    ranked = pd.Series(values, index=list(data.layout.order)).sort_values()
    fig, ax = axes(6.5, 0.35 * len(ranked) + 1.5)
    ax.barh(ranked.index, ranked.to_numpy(), color="tab:orange")
    ax.set_xlabel(f"mutual information with {data.target_name}")
    ax.set_title("Feature correlation (mutual information)")
    return fig


def feature_correlation_pearson(data: PlotData) -> Figure:
    """Pearson r of each numeric feature with the target (one column per cluster)."""
    frame = data.numeric_sample
    target = data.sample_target
    if data.task == "clustering":
        clusters = np.unique(target)
        table = pd.DataFrame(
            {f"cluster {c}": frame.corrwith(pd.Series((target == c).astype(float),
                                                      index=frame.index)) for c in clusters}
        ).fillna(0.0)  # fmt: skip
        fig, ax = axes(0.7 * len(clusters) + 4, 0.4 * len(table) + 2)
        image = ax.imshow(table.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(len(clusters)), table.columns, rotation=45)
        ax.set_yticks(range(len(table)), table.index)
        fig.colorbar(image, ax=ax, label="Pearson r")
        ax.set_title("Feature correlation with cluster membership (Pearson)")
        return fig
    correlations = frame.corrwith(pd.Series(target.astype(float), index=frame.index))
    ranked = correlations.fillna(0.0).sort_values()
    fig, ax = axes(6.5, 0.35 * len(ranked) + 1.5)
    ax.barh(ranked.index, ranked.to_numpy(),
            color=["tab:red" if v < 0 else "tab:blue" for v in ranked])  # fmt: skip
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"Pearson r with {data.target_name}")
    ax.set_title("Feature correlation (Pearson)")
    return fig


def balanced_binning_reference(data: PlotData) -> Figure:
    """Histogram of the target (regression), the fraud score (classification) or the
    distance to the assigned centre (clustering), with balanced (quantile) bin edges."""
    if data.task == "regression":
        values, name = data.y_test.astype(float), data.target_name
    elif data.task == "classification":
        values, name = data.proba, "predicted probability"
    else:
        x = data.model.transform(data.test)
        centers = data.model.estimator[-1].cluster_centers_
        values = np.linalg.norm(x - centers[data.y_pred], axis=1)
        name = "distance to assigned centre"
    edges = np.unique(np.quantile(values, np.linspace(0, 1, BALANCED_BINS + 1)))
    fig, ax = axes(6.5, 4.5)
    ax.hist(values, bins=50, color="tab:blue", alpha=0.7)
    for edge in edges[1:-1]:
        ax.axvline(edge, color="black", linestyle="--")
    ax.set_xlabel(name)
    ax.set_ylabel("test events")
    ax.set_title(f"Balanced binning reference ({len(edges) - 1} equal-count bins)")
    return fig


PLOTS = {
    "class_balance": class_balance,
    "feature_correlation_mutual_info": feature_correlation_mutual_info,
    "feature_correlation_pearson": feature_correlation_pearson,
    "balanced_binning_reference": balanced_binning_reference,
}
