"""Text tab (ecci search queries): words, their spread and the queries' embedding.

`PlotData.texts` holds the queries of the training window (`text`) in time order with the
batch cluster of their event (`cluster`). UMAP comes from umap-learn (numba); its first fit
in a process compiles for a few seconds.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from coelho_pipelines.plots.common import PlotData, axes

TOP_WORDS = 25
DISPERSION_WORDS = 12
CORRELATION_WORDS = 15
EMBED_POINTS = 400
_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(str(text).lower())


def _texts(data: PlotData) -> pd.DataFrame:
    if data.texts is None or data.texts.empty:
        raise ValueError("no text in the training window")
    return data.texts


def _counts(data: PlotData) -> Counter:
    counter: Counter = Counter()
    for text in _texts(data)["text"]:
        counter.update(tokens(text))
    return counter


def word_frequency(data: PlotData) -> Figure:
    top = _counts(data).most_common(TOP_WORDS)[::-1]
    fig, ax = axes(6.5, 0.28 * len(top) + 1.5)
    ax.barh([w for w, _ in top], [c for _, c in top], color="tab:green")
    ax.set_xlabel("occurrences")
    ax.set_title(f"Word frequency ({len(_texts(data))} search queries)")
    return fig


def _embedding_input(data: PlotData) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = _texts(data)
    if len(texts) > EMBED_POINTS:
        texts = texts.sample(n=EMBED_POINTS, random_state=data.seed)
    matrix = TfidfVectorizer(token_pattern=_TOKEN.pattern).fit_transform(texts["text"])
    components = max(2, min(20, matrix.shape[1] - 1, matrix.shape[0] - 1))
    reduced = TruncatedSVD(components, random_state=data.seed).fit_transform(matrix)
    return reduced, texts["cluster"].to_numpy()


def _scatter_clusters(ax, points: np.ndarray, clusters: np.ndarray) -> None:
    for cluster in np.unique(clusters):
        mask = clusters == cluster
        ax.scatter(points[mask, 0], points[mask, 1], s=10, alpha=0.7, label=f"cluster {cluster}")
    ax.legend(fontsize="small", title="event cluster")


def tsne_queries(data: PlotData) -> Figure:
    from sklearn.manifold import TSNE

    x, clusters = _embedding_input(data)
    perplexity = float(min(30, max(5, len(x) // 4)))
    points = TSNE(2, perplexity=perplexity, random_state=data.seed, init="pca",
                  max_iter=300).fit_transform(x)  # fmt: skip
    fig, ax = axes(6.5, 5)
    _scatter_clusters(ax, points, clusters)
    ax.set_title("t-SNE of search queries (TF-IDF)")
    return fig


def umap_queries(data: PlotData) -> Figure:
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "numba-cache"))
    import umap

    x, clusters = _embedding_input(data)
    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), random_state=data.seed,
                        n_jobs=1, n_epochs=100, metric="cosine")  # fmt: skip
    points = reducer.fit_transform(x)
    fig, ax = axes(6.5, 5)
    _scatter_clusters(ax, points, clusters)
    ax.set_title("UMAP of search queries (TF-IDF)")
    return fig


def dispersion(data: PlotData) -> Figure:
    """Where the most common words occur along the stream of queries (time order)."""
    texts = _texts(data)["text"].tolist()
    words = [w for w, _ in _counts(data).most_common(DISPERSION_WORDS)]
    fig, ax = axes(8, 0.35 * len(words) + 1.5)
    for row, word in enumerate(words):
        positions = [i for i, text in enumerate(texts) if word in tokens(text)]
        ax.scatter(positions, [row] * len(positions), marker="|", s=80)
    ax.set_yticks(range(len(words)), words)
    ax.set_xlabel("query index (time order)")
    ax.set_title("Lexical dispersion")
    return fig


def word_correlation(data: PlotData) -> Figure:
    """Phi (Pearson) correlation between word occurrences across queries."""
    texts = _texts(data)["text"].tolist()
    words = [w for w, _ in _counts(data).most_common(CORRELATION_WORDS)]
    presence = pd.DataFrame({w: [w in set(tokens(t)) for t in texts] for w in words}, dtype=float)
    corr = presence.corr().fillna(0.0)
    n = len(words)
    fig, ax = axes(0.45 * n + 3, 0.45 * n + 2)
    image = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(n), words, rotation=90)
    ax.set_yticks(range(n), words)
    fig.colorbar(image, ax=ax, label="phi")
    ax.set_title("Word correlation")
    return fig


PLOTS = {
    "word_frequency": word_frequency,
    "tsne_queries": tsne_queries,
    "umap_queries": umap_queries,
    "dispersion": dispersion,
    "word_correlation": word_correlation,
}
