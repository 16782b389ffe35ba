"""Features tab (all use cases): ranks, projections, dependence and importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from coelho_pipelines.plots.common import CMAP, PlotData, axes, figure

PARALLEL_LINES = 200
PD_ROWS = 300
PD_GRID = 20
TSNE_POINTS = 400


def original_feature(data: PlotData, encoded_name: str) -> str:
    """The feature an encoded column (`numeric__x`, `categorical__x_value`) comes from."""
    kind, _, rest = encoded_name.partition("__")
    if kind == "numeric":
        return rest
    matches = [f for f in data.layout.categorical if rest == f or rest.startswith(f + "_")]
    return max(matches, key=len) if matches else rest


def importance_table(data: PlotData) -> pd.DataFrame:
    """Feature importance, most important first.

    CatBoost: mean |SHAP value| on the test sample. KMeans: share of each feature's
    encoded columns in the between-cluster variance.
    """
    if data.task != "clustering":
        shap = data.model.estimator.shap_values(data.test_sample)
        values = shap.abs().mean().rename("importance")
        table = values.rename_axis("feature").reset_index()
        table["method"] = "mean |SHAP|"
    else:
        x, labels = data.encoded_sample, data.sample_target
        overall = x.mean(axis=0)
        between = np.zeros(x.shape[1])
        for cluster in np.unique(labels):
            members = x[labels == cluster]
            between += len(members) * (members.mean(axis=0) - overall) ** 2
        per_column = pd.Series(between / max(between.sum(), 1e-12), index=data.encoded_names)
        grouped = per_column.groupby([original_feature(data, n) for n in per_column.index]).sum()
        table = grouped.rename("importance").rename_axis("feature").reset_index()
        table["method"] = "between-cluster variance share"
    return table.sort_values("importance", ascending=False, ignore_index=True)


def feature_importances(data: PlotData) -> Figure:
    table = importance_table(data).iloc[::-1]
    fig, ax = axes(6.5, 0.35 * len(table) + 1.5)
    ax.barh(table["feature"], table["importance"], color="tab:blue")
    ax.set_xlabel(table["method"].iloc[0])
    ax.set_title("Feature importances" + (" (CatBoost SHAP)" if data.task != "clustering" else ""))
    return fig


def rank1d(data: PlotData) -> Figure:
    """Shapiro-Wilk W per numeric feature (1 = normally distributed)."""
    from scipy.stats import shapiro

    frame = data.numeric_sample
    scores = {}
    for name in frame.columns:
        column = frame[name].to_numpy()
        scores[name] = float(shapiro(column).statistic) if np.ptp(column) > 0 else 0.0
    ranked = pd.Series(scores).sort_values()
    fig, ax = axes(6, 0.35 * len(ranked) + 1.5)
    ax.barh(ranked.index, ranked.to_numpy(), color="tab:purple")
    ax.set_xlabel("Shapiro-Wilk W")
    ax.set_title("Rank 1D (numeric features)")
    return fig


def rank2d(data: PlotData) -> Figure:
    """Pearson correlation between numeric features."""
    corr = data.numeric_sample.corr().fillna(0.0)
    n = len(corr)
    fig, ax = axes(0.5 * n + 3, 0.5 * n + 2)
    image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(n), corr.columns, rotation=90)
    ax.set_yticks(range(n), corr.columns)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{corr.iat[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax)
    ax.set_title("Rank 2D (Pearson)")
    return fig


def _pca(data: PlotData, components: int = 2) -> tuple[np.ndarray, object]:
    from sklearn.decomposition import PCA

    x = data.encoded_sample
    pca = PCA(n_components=min(components, *x.shape), random_state=data.seed)
    return pca.fit_transform(x), pca


def pca_projection(data: PlotData) -> Figure:
    points, pca = _pca(data)
    fig, ax = axes(6.5, 5)
    data.scatter_target(ax, points[:, 0], points[:, 1], data.sample_target)
    ratios = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({ratios[0]:.1%})")
    ax.set_ylabel(f"PC2 ({ratios[1]:.1%})")
    ax.set_title("PCA projection (encoded features)")
    return fig


def reduce_dimensions(x: np.ndarray, seed: int, components: int = 20) -> np.ndarray:
    """PCA down to `components` dimensions before a manifold method (t-SNE cost grows with
    the dimension; one-hot columns of high-cardinality features would dominate it)."""
    from sklearn.decomposition import PCA

    if x.shape[1] <= components:
        return x
    return PCA(n_components=min(components, len(x)), random_state=seed).fit_transform(x)


def manifold(data: PlotData) -> Figure:
    """t-SNE of the encoded test sample (after PCA to 20 dimensions)."""
    from sklearn.manifold import TSNE

    x, target = data.encoded_sample[:TSNE_POINTS], data.sample_target[:TSNE_POINTS]
    x = reduce_dimensions(x, data.seed)
    perplexity = float(min(30, max(5, len(x) // 4)))
    points = TSNE(
        n_components=2, perplexity=perplexity, random_state=data.seed, init="pca", max_iter=300
    ).fit_transform(x)
    fig, ax = axes(6.5, 5)
    data.scatter_target(ax, points[:, 0], points[:, 1], target)
    ax.set_title("Manifold (t-SNE, test sample)")
    return fig


def parallel_coordinates(data: PlotData) -> Figure:
    frame = data.numeric_sample.iloc[:PARALLEL_LINES]
    target = data.sample_target[:PARALLEL_LINES]
    fig, ax = axes(max(7, 0.8 * frame.shape[1]), 4.5)
    xs = np.arange(frame.shape[1])
    if data.target_is_discrete:
        colors = {v: f"C{i % 10}" for i, v in enumerate(np.unique(target))}
        for row, value in zip(frame.to_numpy(), target, strict=True):
            ax.plot(xs, row, color=colors[value], alpha=0.3, linewidth=0.8)
        for value, color in colors.items():
            ax.plot([], [], color=color, label=f"{data.target_name}={value}")
        ax.legend(fontsize="small")
    else:
        from matplotlib import colormaps

        cmap = colormaps[CMAP]
        scaled = (target - target.min()) / max(np.ptp(target), 1e-12)
        for row, value in zip(frame.to_numpy(), scaled, strict=True):
            ax.plot(xs, row, color=cmap(value), alpha=0.3, linewidth=0.8)
    ax.set_xticks(xs, frame.columns, rotation=45, ha="right")
    ax.set_ylabel("standardized value")
    ax.set_title("Parallel coordinates (numeric features)")
    return fig


def radviz(data: PlotData) -> Figure:
    frame = data.numeric_sample
    values = frame.to_numpy()
    span = np.ptp(values, axis=0)
    scaled = (values - values.min(axis=0)) / np.where(span > 0, span, 1.0)
    angles = np.linspace(0, 2 * np.pi, frame.shape[1], endpoint=False)
    anchors = np.c_[np.cos(angles), np.sin(angles)]
    weights = scaled.sum(axis=1, keepdims=True)
    points = (scaled @ anchors) / np.where(weights > 0, weights, 1.0)
    fig, ax = axes(6, 6)
    ax.add_patch(Circle((0, 0), 1, fill=False, color="grey"))
    for (px, py), name in zip(anchors, frame.columns, strict=True):
        ax.plot(px, py, "ks", markersize=4)
        ax.annotate(name, (px * 1.08, py * 1.08), ha="center", fontsize=8)
    data.scatter_target(ax, points[:, 0], points[:, 1], data.sample_target)
    ax.set_xlim(-1.35, 1.35)
    ax.set_ylim(-1.35, 1.35)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title("RadViz (numeric features)")
    return fig


def _top_numeric(data: PlotData, n: int) -> list[str]:
    table = importance_table(data)
    ranked = [f for f in table["feature"] if f in data.layout.numeric]
    return (ranked + [f for f in data.layout.numeric if f not in ranked])[:n]


def joint_plot(data: PlotData) -> Figure:
    """The most important numeric feature against the target (or the second one)."""
    frame = data.layout.normalize(data.test_sample)
    top = _top_numeric(data, 2)
    x = frame[top[0]].to_numpy()
    if data.task == "regression":
        y, y_name = data.sample_target.astype(float), data.target_name
    else:
        y, y_name = frame[top[-1]].to_numpy(), top[-1]
    fig = figure(6, 6)
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1), height_ratios=(1, 4))
    ax = fig.add_subplot(grid[1, 0])
    top_ax = fig.add_subplot(grid[0, 0], sharex=ax)
    side_ax = fig.add_subplot(grid[1, 1], sharey=ax)
    if data.task == "regression":
        ax.scatter(x, y, s=8, alpha=0.5)
    else:
        data.scatter_target(ax, x, y, data.sample_target)
    top_ax.hist(x[~np.isnan(x)], bins=30, color="grey")
    side_ax.hist(y[~np.isnan(y)], bins=30, orientation="horizontal", color="grey")
    ax.set_xlabel(top[0])
    ax.set_ylabel(y_name)
    correlation = pd.Series(x).corr(pd.Series(y))
    fig.suptitle(f"Joint plot\n{top[0]} vs {y_name} (Pearson r = {correlation:.3f})",
                 fontsize=10)  # fmt: skip
    return fig


def _response(data: PlotData, frame: pd.DataFrame) -> np.ndarray:
    """What partial dependence averages: P(positive), the prediction, or cluster shares."""
    predictions = data.model.predict_frame(frame)
    if data.task == "classification":
        return predictions["probability"].to_numpy()[:, None]
    if data.task == "regression":
        return predictions["prediction"].to_numpy()[:, None]
    k = int(data.model.estimator[-1].n_clusters)
    return np.eye(k)[predictions["prediction"].to_numpy()]


def partial_dependence(data: PlotData) -> Figure:
    """Average response while one numeric feature sweeps its quantiles (others as observed)."""
    rows = data.test_sample.iloc[:PD_ROWS]
    features = _top_numeric(data, 4)
    fig = figure(4 * len(features), 3.8)
    for i, name in enumerate(features):
        ax = fig.add_subplot(1, len(features), i + 1)
        column = pd.to_numeric(rows[name], errors="coerce").dropna()
        grid = np.unique(np.quantile(column, np.linspace(0.02, 0.98, PD_GRID))) if len(column) \
            else np.array([0.0])  # fmt: skip
        batch = pd.concat([rows.assign(**{name: value}) for value in grid], ignore_index=True)
        response = _response(data, batch).reshape(len(grid), len(rows), -1).mean(axis=1)
        for j in range(response.shape[1]):
            label = f"cluster {j}" if data.task == "clustering" else None
            ax.plot(grid, response[:, j], label=label)
        ax.set_xlabel(name)
        if i == 0:
            ax.set_ylabel({"classification": "P(positive)", "regression": "prediction"}.get(
                data.task, "share of cluster"))  # fmt: skip
        if data.task == "clustering" and i == len(features) - 1:
            ax.legend(fontsize="x-small")
    fig.suptitle("Partial dependence")
    return fig


def decision_boundary(data: PlotData) -> Figure:
    """The model's decisions in the first two principal components (k-NN surrogate)."""
    from sklearn.inspection import DecisionBoundaryDisplay
    from sklearn.neighbors import KNeighborsClassifier

    points, _ = _pca(data)
    predictions = data.model.predict_frame(data.test_sample)["prediction"].to_numpy()
    if data.task == "regression":
        edges = np.quantile(predictions, [1 / 3, 2 / 3])
        decisions = np.digitize(predictions, edges)
        legend = "predicted tercile"
    else:
        decisions = predictions.astype(int)
        legend = "predicted class" if data.task == "classification" else "predicted cluster"
    fig, ax = axes(6.5, 5)
    values = np.unique(decisions)
    colors = [f"C{i % 10}" for i in range(len(values))]
    codes = np.searchsorted(values, decisions)
    if len(values) > 1:
        surrogate = KNeighborsClassifier(n_neighbors=5, weights="distance")
        surrogate.fit(points[:, :2], codes)
        DecisionBoundaryDisplay.from_estimator(
            surrogate, points[:, :2], ax=ax, response_method="predict", alpha=0.25,
            cmap=ListedColormap(colors), grid_resolution=150,
        )  # fmt: skip
    for code, value in enumerate(values):
        mask = codes == code
        ax.scatter(points[mask, 0], points[mask, 1], s=8, color=colors[code],
                   label=f"{legend} {value}")  # fmt: skip
    ax.legend(fontsize="small")
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.set_title("Decision boundary (PCA plane)")
    return fig


def pca_component_variance(data: PlotData) -> Figure:
    _, pca = _pca(data, components=min(20, data.encoded_sample.shape[1]))
    ratios = pca.explained_variance_ratio_
    fig, ax = axes(6.5, 4.5)
    xs = np.arange(1, len(ratios) + 1)
    ax.bar(xs, ratios, label="per component")
    ax.plot(xs, np.cumsum(ratios), "o-", color="tab:red", label="cumulative")
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    ax.legend()
    ax.set_title("PCA component variance")
    return fig


PLOTS = {
    "rank1d": rank1d,
    "rank2d": rank2d,
    "pca_projection": pca_projection,
    "manifold": manifold,
    "parallel_coordinates": parallel_coordinates,
    "radviz": radviz,
    "joint_plot": joint_plot,
    "partial_dependence": partial_dependence,
    "decision_boundary": decision_boundary,
    "pca_component_variance": pca_component_variance,
    "feature_importances": feature_importances,
}
