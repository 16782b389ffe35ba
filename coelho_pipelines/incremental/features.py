"""The incremental feature pipeline: one decoded event -> the dict a River model learns from.

Built from the spec's `Feature`s (the same definitions the batch path uses as SQL):
- classification (ARF with naive-Bayes leaves): categoricals stay strings (River trees split
  nominal features natively), bools become 0/1, missing values are left out of the dict;
- regression and clustering (linear leaf models, distances): numerics are standardised with
  running mean/variance (a missing numeric becomes 0, the running mean, and is not learned)
  and categoricals become a dense one-hot over the schema's choices, or over a few hashed
  buckets when the schema lists none. Every key is always present, so DBSTREAM centers keep
  all dimensions, and a categorical mismatch weighs like one standard deviation of a numeric
  (one-hot value 1/sqrt(2)) so no raw magnitude dominates distances.

The pipeline is part of the pickled model bundle, so serving encodes exactly as training did.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coelho_pipelines.schema import FieldSpec
from coelho_pipelines.use_cases.spec import Feature, UseCaseSpec

HASH_BUCKETS = 8
ONE_HOT_VALUE = 1.0 / math.sqrt(2.0)
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _field_for(spec: UseCaseSpec, feature: Feature) -> FieldSpec | None:
    """The schema field a plain field feature reads (None for computed features)."""
    if not _PATH.match(feature.sql):
        return None
    fields: tuple[FieldSpec, ...] = spec.fields
    found: FieldSpec | None = None
    for part in feature.sql.split("."):
        found = next((f for f in fields if f.name == part), None)
        if found is None:
            return None
        fields = found.children
    return found


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


@dataclass
class RunningScaler:
    """Per-feature running mean and variance (Welford); transform gives z-scores."""

    count: dict[str, int] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    m2: dict[str, float] = field(default_factory=dict)

    def learn(self, name: str, value: float) -> None:
        n = self.count.get(name, 0) + 1
        mean = self.mean.get(name, 0.0)
        delta = value - mean
        mean += delta / n
        self.count[name] = n
        self.mean[name] = mean
        self.m2[name] = self.m2.get(name, 0.0) + delta * (value - mean)

    def transform(self, name: str, value: float) -> float:
        n = self.count.get(name, 0)
        if n == 0:
            return 0.0
        variance = self.m2[name] / n
        centred = value - self.mean[name]
        return centred / math.sqrt(variance) if variance > 0 else 0.0


@dataclass
class _Encoding:
    name: str
    kind: str
    extract: Any
    categories: tuple[str, ...] | None
    keys: tuple[str, ...] = ()
    zeros: dict[str, float] = field(default_factory=dict)
    hot_keys: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.categories is not None:
            self.keys = tuple(f"{self.name}={c}" for c in self.categories)
            self.hot_keys = dict(zip(self.categories, self.keys, strict=True))
        else:
            self.keys = tuple(f"{self.name}#{b}" for b in range(HASH_BUCKETS))
        self.zeros = dict.fromkeys(self.keys, 0.0)

    def hot_key(self, value: Any) -> str | None:
        """The one-hot key `value` lights up (None: all zeros)."""
        if value is None:
            return None
        text = str(value)
        if self.categories is None:
            return self.keys[zlib.crc32(text.encode()) % HASH_BUCKETS]
        return self.hot_keys.get(text)


class FeaturePipeline:
    """Event -> River features for one use case (picklable, saved with the model)."""

    def __init__(self, spec: UseCaseSpec, numeric_only: bool | None = None) -> None:
        self.use_case = spec.key
        self.numeric_only = spec.task != "classification" if numeric_only is None else numeric_only
        self.scaler = RunningScaler()
        self._encodings = [
            _Encoding(f.name, f.kind, f.extract, self._categories(spec, f)) for f in spec.features
        ]

    @staticmethod
    def _categories(spec: UseCaseSpec, feature: Feature) -> tuple[str, ...] | None:
        schema_field = _field_for(spec, feature)
        if schema_field is not None and schema_field.choices:
            return tuple(str(c) for c in schema_field.choices)
        if schema_field is not None and schema_field.type == "bool":
            return ("0", "1")
        return None

    def __getstate__(self) -> dict[str, Any]:
        # Feature extractors are lambdas: rebuild them from the spec on load.
        state = self.__dict__.copy()
        state["_encodings"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from coelho_pipelines.use_cases import get_spec

        self.__dict__.update(state)
        fresh = FeaturePipeline(get_spec(self.use_case), self.numeric_only)
        self._encodings = fresh._encodings

    @property
    def output_names(self) -> list[str]:
        """The keys of every transformed dict (numeric-only mode), in order."""
        names: list[str] = []
        for enc in self._encodings:
            if enc.kind == "numeric" or not self.numeric_only:
                names.append(enc.name)
            else:
                names.extend(enc.keys)
        return names

    def learn_transform(
        self, event: Mapping[str, Any], categoricals: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Update the running statistics with `event`, then encode it (the learner's path).

        `categoricals`, if given, receives the raw categorical values (cluster analytics).
        """
        return self._encode(event, True, categoricals)

    def transform(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Encode `event` without learning from it (the serving path)."""
        return self._encode(event, False, None)

    def _encode(
        self, event: Mapping[str, Any], learn: bool, categoricals: dict[str, Any] | None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for enc in self._encodings:
            value = _plain(enc.extract(event))
            if categoricals is not None and enc.kind == "categorical":
                categoricals[enc.name] = value
            if not self.numeric_only:
                if value is not None:
                    out[enc.name] = value
            elif enc.kind == "numeric":
                out[enc.name] = self._scaled(enc.name, value, learn)
            else:
                self._one_hot(enc, value, out)
        return out

    def _scaled(self, name: str, value: Any, learn: bool) -> float:
        if value is None:
            return 0.0
        value = float(value)
        if learn:
            self.scaler.learn(name, value)
        return self.scaler.transform(name, value)

    @staticmethod
    def _one_hot(enc: _Encoding, value: Any, out: dict[str, Any]) -> None:
        out.update(enc.zeros)
        hot = enc.hot_key(value)
        if hot is not None:
            out[hot] = ONE_HOT_VALUE
