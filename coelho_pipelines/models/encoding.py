"""The one feature encoding shared by training (SQL features) and serving (python `extract`).

Both paths end in a frame with the spec's feature names where numeric features are float64
(missing as NaN) and categorical features are strings (missing as `MISSING`, booleans as
"true"/"false" like DuckDB's `CAST(bool AS VARCHAR)`). Models saved to MLflow apply this
themselves, so a caller may pass raw values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MISSING = "__missing__"


def category_value(value: Any) -> str:
    """One categorical value as the model sees it."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return MISSING
    return str(value)


@dataclass(frozen=True)
class FeatureLayout:
    """Feature names in model order and which of them are numeric or categorical."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    order: tuple[str, ...]

    @classmethod
    def of(cls, features: Iterable[Any]) -> FeatureLayout:
        """From `Feature`s (anything with `.name` and `.kind`)."""
        features = list(features)
        return cls(
            numeric=tuple(f.name for f in features if f.kind == "numeric"),
            categorical=tuple(f.name for f in features if f.kind == "categorical"),
            order=tuple(f.name for f in features),
        )

    def subset(self, names: Sequence[str]) -> FeatureLayout:
        keep = set(names)
        return FeatureLayout(
            numeric=tuple(n for n in self.numeric if n in keep),
            categorical=tuple(n for n in self.categorical if n in keep),
            order=tuple(n for n in self.order if n in keep),
        )

    def normalize(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model input: this layout's columns, typed and filled as described above."""
        missing = [name for name in self.order if name not in frame.columns]
        if missing:
            raise ValueError(f"missing feature columns: {', '.join(missing)}")
        out = {}
        for name in self.order:
            column = frame[name]
            if name in self.numeric:
                out[name] = pd.to_numeric(column, errors="coerce").astype("float64")
            else:
                out[name] = column.map(category_value).astype(object)
        return pd.DataFrame(out, index=frame.index)

    def frame_from_rows(self, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """A normalized frame from feature dicts (e.g. `spec.extract_features(event)`)."""
        frame = pd.DataFrame.from_records(list(rows), columns=list(self.order))
        return self.normalize(frame)
