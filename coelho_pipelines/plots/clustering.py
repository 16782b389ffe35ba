"""Clustering tab (ecci): choosing k and how well separated the clusters are."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import silhouette_samples

from coelho_pipelines.plots.common import PlotData, axes


def _trials(data: PlotData) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    ks = np.array([t["k"] for t in data.k_trials])
    columns = {name: np.array([t[name] for t in data.k_trials]) for name in data.k_trials[0]}
    return ks, columns


def _chosen_k(data: PlotData) -> int:
    return int(data.model.estimator[-1].n_clusters)


def k_elbow(data: PlotData) -> Figure:
    """Silhouette by k (the selection score), chosen k marked, fit time on a second axis."""
    ks, trials = _trials(data)
    fig, ax = axes(6.5, 4.5)
    ax.plot(ks, trials["silhouette"], "o-", label="silhouette (selection sample)")
    ax.axvline(_chosen_k(data), color="black", linestyle="--", label=f"k = {_chosen_k(data)}")
    ax.set_xlabel("k")
    ax.set_ylabel("silhouette")
    twin = ax.twinx()
    twin.plot(ks, trials["fit_seconds"], "s:", color="tab:green", alpha=0.6)
    twin.set_ylabel("fit time (s)", color="tab:green")
    ax.legend(loc="best")
    ax.set_title("K elbow (silhouette)")
    return fig


def elbow_curve(data: PlotData) -> Figure:
    ks, trials = _trials(data)
    fig, ax = axes(6, 4.5)
    ax.plot(ks, trials["inertia"], "o-")
    ax.axvline(_chosen_k(data), color="black", linestyle="--", label=f"k = {_chosen_k(data)}")
    ax.set_xlabel("k")
    ax.set_ylabel("inertia (sum of squared distances, train)")
    ax.legend()
    ax.set_title("Elbow curve")
    return fig


def silhouette(data: PlotData) -> Figure:
    x, labels = data.encoded_sample, data.sample_target
    values = silhouette_samples(x, labels) if len(np.unique(labels)) > 1 else np.zeros(len(x))
    fig, ax = axes(6.5, 5)
    lower = 0
    for cluster in np.unique(labels):
        scores = np.sort(values[labels == cluster])
        ax.fill_betweenx(np.arange(lower, lower + len(scores)), 0, scores, alpha=0.7)
        ax.text(-0.01, lower + len(scores) / 2, str(cluster), ha="right", va="center",
                transform=ax.get_yaxis_transform())  # fmt: skip
        lower += len(scores) + 10
    ax.axvline(values.mean(), color="red", linestyle="--", label=f"mean {values.mean():.3f}")
    ax.set_xlabel("silhouette coefficient")
    ax.set_ylabel("cluster")
    ax.set_yticks([])
    ax.legend()
    ax.set_title("Silhouette plot (test sample)")
    return fig


def intercluster_distance(data: PlotData) -> Figure:
    """Cluster centres embedded in 2-D by MDS; marker area proportional to cluster size."""
    from sklearn.manifold import MDS

    centers = data.model.estimator[-1].cluster_centers_
    sizes = np.bincount(data.y_pred, minlength=len(centers))
    if len(centers) > 2:
        points = MDS(n_components=2, random_state=data.seed, n_init=1, metric_mds=True,
                     init="random").fit_transform(centers)  # fmt: skip
    else:
        points = np.c_[np.linalg.norm(centers - centers[0], axis=1), np.zeros(len(centers))]
    fig, ax = axes(6, 5.5)
    area = 3000 * sizes / max(sizes.sum(), 1) + 50
    ax.scatter(points[:, 0], points[:, 1], s=area, alpha=0.4, c=range(len(centers)),
               cmap="tab10")  # fmt: skip
    for i, (px, py) in enumerate(points):
        ax.annotate(f"{i}\n(n={sizes[i]})", (px, py), ha="center", va="center")
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.margins(0.25)
    ax.set_title("Intercluster distance map")
    return fig


PLOTS = {
    "k_elbow": k_elbow,
    "silhouette": silhouette,
    "intercluster_distance": intercluster_distance,
    "elbow_curve": elbow_curve,
}
