"""The visualization catalogue: one module per tab, each a `PLOTS` dict of name -> function.

`catalogue(tabs)` lists what a use case draws (`spec.plot_tabs`); `render` draws them all to
PNG bytes, collecting failures instead of stopping at the first one.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from coelho_pipelines.plots.common import PlotData, PlotFunction, png_bytes

TAB_MODULES = {
    "classification": "coelho_pipelines.plots.classification",
    "regression": "coelho_pipelines.plots.regression",
    "clustering": "coelho_pipelines.plots.clustering",
    "features": "coelho_pipelines.plots.features",
    "target": "coelho_pipelines.plots.target",
    "diagnostics": "coelho_pipelines.plots.diagnostics",
    "text": "coelho_pipelines.plots.text",
}

__all__ = ["PlotData", "Rendered", "catalogue", "render", "TAB_MODULES"]


def catalogue(tabs: Sequence[str]) -> dict[str, dict[str, PlotFunction]]:
    """tab -> plot name -> function, for the given tabs (in order)."""
    unknown = [tab for tab in tabs if tab not in TAB_MODULES]
    if unknown:
        raise ValueError(f"unknown plot tabs {unknown}; known: {sorted(TAB_MODULES)}")
    return {tab: dict(importlib.import_module(TAB_MODULES[tab]).PLOTS) for tab in tabs}


@dataclass
class Rendered:
    """PNG bytes per (tab, name), the failures with their reason, and seconds per plot."""

    images: dict[tuple[str, str], bytes] = field(default_factory=dict)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    seconds: dict[tuple[str, str], float] = field(default_factory=dict)


def render(data: PlotData, tabs: Sequence[str]) -> Rendered:
    """Draw every plot of `tabs`; a failing plot is recorded and the rest still render."""
    from threadpoolctl import threadpool_limits

    rendered = Rendered()
    with threadpool_limits(limits=1, user_api="openmp"):
        _render_into(rendered, data, tabs)
    return rendered


def _render_into(rendered: Rendered, data: PlotData, tabs: Sequence[str]) -> None:
    import time

    for tab, plots in catalogue(tabs).items():
        for name, function in plots.items():
            started = time.perf_counter()
            try:
                figure = function(data)
                rendered.images[(tab, name)] = png_bytes(figure)
            except Exception as error:  # noqa: BLE001 - one broken plot must not hide the rest
                rendered.failures[(tab, name)] = f"{type(error).__name__}: {error}"
            rendered.seconds[(tab, name)] = time.perf_counter() - started
