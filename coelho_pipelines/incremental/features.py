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

from coelho_pipelines.events.fields import FieldSpec
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


_COMPILED = ("_plan", "_template")
_MISSING = object()
HOT_KEY_CACHE = 4096  # distinct string values remembered per categorical feature


@dataclass(slots=True)
class _Step:
    """How `FeaturePipeline._encode` reads and encodes one feature."""

    name: str
    numeric: bool
    path: tuple[str, ...] | None  # a plain schema field: read directly (same as `extract`)
    extract: Any
    encoding: _Encoding
    kind_categorical: bool
    key: str | None  # a top-level schema field: read with one `get`
    hot_keys: dict[str, str | None]  # string value -> its one-hot key (a bounded cache)


def _read(step: _Step, event: Mapping[str, Any]) -> Any:
    """The feature's value (bools as 0/1), as `_plain(extract(event))` gives it."""
    path = step.path
    if path is None:
        value = step.extract(event)
    elif len(path) == 1:
        value = event.get(path[0])
    else:
        value = event
        for part in path:
            if value is None:
                break
            value = value.get(part)
    return int(value) if isinstance(value, bool) else value


def _single(path: tuple[str, ...] | None) -> str | None:
    return path[0] if path is not None and len(path) == 1 else None


def _hot_key(step: _Step, value: Any) -> str | None:
    """`step.encoding.hot_key(value)`, remembered for string values."""
    if type(value) is not str:
        return step.encoding.hot_key(value)
    cache = step.hot_keys
    hot = cache.get(value, _MISSING)
    if hot is _MISSING:
        hot = step.encoding.hot_key(value)
        if len(cache) < HOT_KEY_CACHE:
            cache[value] = hot
    return hot  # type: ignore[return-value]


class FeaturePipeline:
    """Event -> River features for one use case (picklable, saved with the model)."""

    def __init__(self, spec: UseCaseSpec, numeric_only: bool | None = None) -> None:
        self.use_case = spec.key
        self.numeric_only = spec.task != "classification" if numeric_only is None else numeric_only
        self.scaler = RunningScaler()
        self._encodings = [
            _Encoding(f.name, f.kind, f.extract, self._categories(spec, f)) for f in spec.features
        ]
        self._compile(spec)

    def _compile(self, spec: UseCaseSpec) -> None:
        """The per-event plan of `_encode`: how to read each feature and, in numeric-only
        mode, a template holding every output key in order (copied, then filled in)."""
        paths = {f.name: tuple(f.sql.split(".")) for f in spec.features if _field_for(spec, f)}
        self._plan = [
            _Step(
                e.name,
                e.kind == "numeric",
                paths.get(e.name),
                e.extract,
                e,
                e.kind == "categorical",
                _single(paths.get(e.name)),
                {},
            )
            for e in self._encodings
        ]
        names = self.output_names
        unique = len(set(names)) == len(names) and len({e.name for e in self._encodings}) == len(
            self._encodings
        )
        self._template = dict.fromkeys(names, 0.0) if unique else None

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
        for compiled in _COMPILED:
            state.pop(compiled, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        from coelho_pipelines.use_cases import get_spec

        self.__dict__.update(state)
        fresh = FeaturePipeline(get_spec(self.use_case), self.numeric_only)
        self._encodings = fresh._encodings
        for compiled in _COMPILED:
            setattr(self, compiled, getattr(fresh, compiled))

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
        if not self.numeric_only:
            return self._encode_native(event, categoricals)
        if self._template is None:
            return self._encode_reference(event, learn, categoricals)
        return self._encode_numeric(event, learn, categoricals)

    def _encode_native(
        self, event: Mapping[str, Any], categoricals: dict[str, Any] | None
    ) -> dict[str, Any]:
        """`_encode_reference` without numeric-only mode: present values as they are."""
        out: dict[str, Any] = {}
        for step in self._plan:
            value = _read(step, event)
            if categoricals is not None and step.kind_categorical:
                categoricals[step.name] = value
            if value is not None:
                out[step.name] = value
        return out

    def _encode_numeric(
        self, event: Mapping[str, Any], learn: bool, categoricals: dict[str, Any] | None
    ) -> dict[str, Any]:
        """`_encode_reference` in numeric-only mode: the same values in the same key order,
        from a copy of the template."""
        out = self._template.copy()  # type: ignore[union-attr]
        for step in self._plan:
            key = step.key
            value = _read(step, event) if key is None else event.get(key)
            if type(value) is bool:
                value = int(value)  # as `_read` gives it
            name = step.name
            if step.numeric:
                if value is not None:  # None stays 0.0, the template's value, and is not learned
                    out[name] = self._scaled(name, value, learn)
                continue
            if categoricals is not None and step.kind_categorical:
                categoricals[name] = value
            if value is None:
                continue
            hot = _hot_key(step, value)
            if hot is not None:
                out[hot] = ONE_HOT_VALUE
        return out

    def _encode_reference(
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
