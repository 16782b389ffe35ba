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

    def is_normalized(self, frame: pd.DataFrame) -> bool:
        """Whether `frame` already is `normalize`'s output: exactly this layout's columns in
        order, numerics float64, categoricals object columns of strings only (`normalize` maps
        such a frame to an equal one, so it can be used as is)."""
        if tuple(frame.columns) != self.order:
            return False
        numeric = set(self.numeric)
        expected = [_FLOAT if name in numeric else _OBJECT for name in self.order]
        if list(frame.dtypes) != expected:
            return False
        if not self.categorical or len(frame) == 0:
            return True
        # One object matrix: selecting columns of a small frame costs far more than this.
        values = frame.to_numpy(dtype=object)
        columns = [i for i, name in enumerate(self.order) if name not in numeric]
        return pd.api.types.infer_dtype(values[:, columns].ravel(), skipna=False) == "string"

    def ensure_normalized(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` itself when it is already normalized (see `is_normalized`), else
        `normalize(frame)`: the prediction path encodes each frame once."""
        return frame if self.is_normalized(frame) else self.normalize(frame)

    def frame_from_rows(self, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """A normalized frame from feature dicts (e.g. `spec.extract_features(event)`)."""
        rows = list(rows)
        columns = {name: [row.get(name) for row in rows] for name in self.order}
        direct = _direct_columns(self, columns)
        if direct is not None:
            return pd.DataFrame(direct, columns=list(self.order), copy=False)
        frame = pd.DataFrame.from_records(rows, columns=list(self.order))
        return self.normalize(frame)


_FLOAT = np.dtype("float64")
_OBJECT = np.dtype("object")
_NUMBER_TYPES = (type(None), bool, int, float)
_CATEGORY_TYPES = (type(None), bool, str)


def _direct_columns(
    layout: FeatureLayout, columns: Mapping[str, list[Any]]
) -> dict[str, np.ndarray] | None:
    """The normalized columns built straight from python values, or None when some value is
    not a plain None/bool/int/float (numeric) or None/bool/str (categorical): those go through
    pandas (`normalize`), whose type inference this shortcut does not replicate."""
    out: dict[str, np.ndarray] = {}
    numeric = set(layout.numeric)
    for name, values in columns.items():
        if name in numeric:
            if not all(type(v) in _NUMBER_TYPES for v in values):
                return None
            if any(type(v) is int and not -(2**53) <= v <= 2**53 for v in values):
                return None
            out[name] = np.array([np.nan if v is None else v for v in values], dtype=_FLOAT)
        else:
            if not all(type(v) in _CATEGORY_TYPES for v in values):
                return None
            array = np.empty(len(values), dtype=object)
            array[:] = [category_value(v) for v in values]
            out[name] = array
    return out
