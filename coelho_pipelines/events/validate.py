"""Event validation, compiled once from a use case's FieldSpecs.

Two validators that agree (a test checks):
- `EventValidator`: one decoded event at a time, returning a specific reason
  ("field amount: expected float, got str"). Used for the reasons of dead letters and as the
  fallback path.
- `BatchDecoder`: a whole batch of raw Kafka values at once. It parses the batch with Arrow's
  JSON reader against the spec's schema and checks nullability, choices, ranges and timestamps
  with Arrow compute kernels, so the common all-valid batch never touches Python per field. A
  batch Arrow cannot parse falls back to `EventValidator` per event.

Rules: the value is UTF-8 JSON, an object, with no unknown fields; strings are strings; ints are
JSON integers in int64 range; floats are finite numbers (integers allowed); bools are
true/false; timestamps are ISO-8601 strings with an explicit UTC offset; nested objects follow
their children; required fields are present and non-null; choices and min/max hold.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from coelho_pipelines.events.fields import FieldSpec

if TYPE_CHECKING:
    from coelho_pipelines.use_cases.spec import UseCaseSpec

DEFAULT_MAX_BYTES = 256 * 1024
# Arrow parses blocks of this size on its thread pool (a block boundary is always a newline).
PARSE_BLOCK_BYTES = 1 << 20
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})$"
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)
_JSON_NAMES = {
    str: "string",
    int: "int",
    float: "float",
    bool: "bool",
    dict: "object",
    list: "array",
    type(None): "null",
}

Check = Callable[[Any], str | None]


def json_type(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _preview(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bounds_check(spec: FieldSpec, path: str) -> Check | None:
    low, high = spec.minimum, spec.maximum
    if low is None and high is None:
        return None

    def check(value: float) -> str | None:
        if low is not None and value < low:
            return f"field {path}: {value!r} below minimum {low!r}"
        if high is not None and value > high:
            return f"field {path}: {value!r} above maximum {high!r}"
        return None

    return check


def _type_check(spec: FieldSpec, path: str) -> Check:
    """A check of one non-null value of `spec`'s type (bounds and choices included)."""
    bounds = _bounds_check(spec, path)
    if spec.type == "string":
        choices = frozenset(spec.choices) if spec.choices is not None else None
        listed = ", ".join(spec.choices or ())

        def check_string(value: Any) -> str | None:
            if type(value) is not str:
                return f"field {path}: expected string, got {json_type(value)}"
            if choices is not None and value not in choices:
                return f"field {path}: {_preview(value)} not one of {listed}"
            return None

        return check_string
    if spec.type == "int":

        def check_int(value: Any) -> str | None:
            if type(value) is not int:
                return f"field {path}: expected int, got {json_type(value)}"
            if not INT64_MIN <= value <= INT64_MAX:
                return f"field {path}: integer out of 64-bit range"
            return bounds(value) if bounds else None

        return check_int
    if spec.type == "float":

        def check_float(value: Any) -> str | None:
            kind = type(value)
            if kind is not float and kind is not int:
                return f"field {path}: expected float, got {json_type(value)}"
            if kind is float and not math.isfinite(value):
                return f"field {path}: {value!r} is not a finite number"
            return bounds(value) if bounds else None

        return check_float
    if spec.type == "bool":

        def check_bool(value: Any) -> str | None:
            if type(value) is not bool:
                return f"field {path}: expected bool, got {json_type(value)}"
            return None

        return check_bool
    if spec.type == "timestamp":
        return _timestamp_check(path)
    if spec.type == "struct":
        return _object_check(spec.children, f"{path}.")
    raise ValueError(f"unsupported field type {spec.type!r} for {path}")


def value_check(spec: FieldSpec) -> Check:
    """The check of one non-null value of `spec` (type, bounds, choices; a struct's fields),
    giving the reasons ingestion gives; the API applies it to prediction requests."""
    return _type_check(spec, spec.name)


def _timestamp_check(path: str) -> Check:
    def check_timestamp(value: Any) -> str | None:
        if type(value) is not str:
            return f"field {path}: expected ISO-8601 timestamp string, got {json_type(value)}"
        if _TIMESTAMP_RE.match(value) is None:
            return f"field {path}: {_preview(value)} is not an ISO-8601 timestamp with UTC offset"
        try:
            datetime.fromisoformat(value)
        except ValueError as error:
            return f"field {path}: {_preview(value)} is not a valid timestamp ({error})"
        return None

    return check_timestamp


def _valid_strings(spec: FieldSpec) -> frozenset[str] | bool | None:
    """For a string field, the strings `check_string` accepts (True: any); None otherwise."""
    if spec.type != "string":
        return None
    return frozenset(spec.choices) if spec.choices is not None else True


def _in_bounds(spec: FieldSpec) -> tuple[type, Any, Any] | None:
    """For an int or float field with finite bounds both sides (within int64 for ints), the
    type and bounds whose values the check surely accepts; None otherwise. NaN and
    infinities fail the comparisons, other types fail the type test: the check decides."""
    low, high = spec.minimum, spec.maximum
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return None
    if spec.type == "int" and low >= INT64_MIN and high <= INT64_MAX:
        return int, low, high
    if spec.type == "float":
        return float, low, high
    return None


def _object_check(fields: Sequence[FieldSpec], prefix: str = "") -> Check:
    """A check of a JSON object holding exactly `fields`."""
    compiled = [
        (f.name, f.nullable, _type_check(f, prefix + f.name), _valid_strings(f), _in_bounds(f))
        for f in fields
    ]
    known = frozenset(f.name for f in fields)
    where = f"field {prefix[:-1]}: " if prefix else ""

    def check_object(value: Any) -> str | None:
        if type(value) is not dict:
            return f"{where}expected object, got {json_type(value)}"
        for name, nullable, check, strings, bounded in compiled:
            item = value.get(name)
            if item is None:
                if nullable:
                    continue
                if name in value:
                    return f"field {prefix}{name}: null not allowed"
                return f"field {prefix}{name}: missing"
            if strings is not None:
                if type(item) is str and (strings is True or item in strings):
                    continue  # a valid string, decided inline (the check would return None)
            elif bounded is not None:
                kind, low, high = bounded
                if type(item) is kind and low <= item <= high:
                    continue  # a valid number, decided inline (the check would return None)
            reason = check(item)
            if reason is not None:
                return reason
        if len(value) > len(compiled) or not known.issuperset(value):
            extra = sorted(set(value) - known)
            return f"{where}unexpected field {', '.join(prefix + e for e in extra)}"
        return None

    return check_object


class EventValidator:
    """Validates raw Kafka values of one use case, one at a time, with specific reasons."""

    def __init__(self, spec: UseCaseSpec, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.spec = spec
        self.max_bytes = max_bytes
        self.check = _object_check(spec.fields)

    def validate(self, event: Any) -> str | None:
        """Why a decoded event is invalid, or None when it is valid."""
        return self.check(event)

    def decode(self, raw: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
        """`(event, None)` for a valid raw value, `(None, reason)` otherwise."""
        reason = precheck(raw, self.max_bytes)
        if reason is not None:
            return None, reason
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            if _bad_utf8(raw):
                return None, f"invalid UTF-8: {_bad_utf8(raw)}"
            return None, f"invalid JSON: {error}"
        reason = self.check(event)
        return (None, reason) if reason is not None else (event, None)


def precheck(raw: bytes | None, max_bytes: int) -> str | None:
    """Reasons that need no parsing: no value, or a value over the size limit."""
    if raw is None:
        return "empty message (no value)"
    if len(raw) > max_bytes:
        return f"payload too large: {len(raw)} bytes > limit {max_bytes}"
    if not raw:
        return "empty message (zero bytes)"
    return None


def _bad_utf8(raw: bytes) -> str | None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return str(error)
    return None


# --- columnar path --------------------------------------------------------------------------


@dataclass
class DecodedBatch:
    """The result of decoding a batch: typed events, which inputs they came from, rejects."""

    events: pa.Table
    indices: list[int]
    rejects: list[tuple[int, str]] = field(default_factory=list)
    fallback: bool = False


def _parse_schema(fields: Sequence[FieldSpec]) -> pa.Schema:
    """The schema Arrow parses with: the spec's, with timestamps kept as strings."""
    return pa.schema([_parse_field(f) for f in fields])


def _parse_field(spec: FieldSpec) -> pa.Field:
    if spec.type == "timestamp":
        return pa.field(spec.name, pa.string())
    if spec.type == "struct":
        return pa.field(spec.name, pa.struct([_parse_field(c) for c in spec.children]))
    return pa.field(spec.name, spec.arrow_type())


@dataclass(frozen=True)
class _Leaf:
    path: tuple[str, ...]
    spec: FieldSpec


def _leaves(fields: Sequence[FieldSpec], path: tuple[str, ...] = ()) -> list[_Leaf]:
    out = []
    for f in fields:
        out.append(_Leaf((*path, f.name), f))
        if f.type == "struct":
            out.extend(_leaves(f.children, (*path, f.name)))
    return out


class BatchDecoder:
    """Decodes and validates a batch of raw values into a typed Arrow table (spec schema)."""

    def __init__(self, spec: UseCaseSpec, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.spec = spec
        self.max_bytes = max_bytes
        self.validator = EventValidator(spec, max_bytes)
        self.parse_schema = _parse_schema(spec.fields)
        self.target_schema = spec.arrow_schema
        self.leaves = _leaves(spec.fields)
        self.timestamp_paths = [leaf.path for leaf in self.leaves if leaf.spec.type == "timestamp"]

    def decode(self, values: Sequence[bytes | None]) -> DecodedBatch:
        """Valid events as a typed table, the input index of each row, and (index, reason)."""
        rejects: list[tuple[int, str]] = []
        data = self._plain_batch(values)
        if data is not None:
            # The common case: one compact JSON object per message, checked in bulk.
            lines: list[bytes] = []
            indices = list(range(len(values)))
            table = self._parse_data(data, len(values))
        else:
            lines, indices = self._split(values, rejects)
            table = self._parse(lines)
        fallback = False
        if table is None:
            # Arrow rejected the batch (a type error, bad UTF-8...): validate one by one.
            fallback = True
            lines, indices, pending = [], [], indices
            for i in pending:
                self._decode_one(i, values[i], lines, indices, rejects)
            table = self._parse(lines)
            if table is None:
                table, indices = self._parse_each(lines, indices, rejects)
        table, indices = self._check(table, indices, values, rejects)
        rejects.sort()
        return DecodedBatch(table, indices, rejects, fallback)

    def _plain_batch(self, values: Sequence[bytes | None]) -> bytes | None:
        """The values joined by newlines if every one is a `{...}` within the size limit, else
        None. A message with a line break inside parses to more rows than messages, or fails:
        `_parse_data` then returns None, so Arrow's row i is always message i."""
        n = len(values)
        if n == 0 or None in values:
            return None
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
        if lengths.min() < 2 or lengths.max() > self.max_bytes:
            return None
        data = b"\n".join(values)
        buffer = np.frombuffer(data, dtype=np.uint8)
        ends = np.cumsum(lengths + 1) - 1  # one past each message
        starts = ends - lengths
        if not ((buffer[starts] == 123).all() and (buffer[ends - 1] == 125).all()):
            return None
        return data

    def _split(
        self, values: Sequence[bytes | None], rejects: list[tuple[int, str]]
    ) -> tuple[list[bytes], list[int]]:
        """Plain messages as they are; the others through the per-event validator."""
        lines: list[bytes] = []
        indices: list[int] = []
        for i, raw in enumerate(values):
            if raw is None or not 1 < len(raw) <= self.max_bytes or _unusual(raw):
                self._decode_one(i, raw, lines, indices, rejects)
            else:
                lines.append(raw)
                indices.append(i)
        return lines, indices

    def _decode_one(
        self,
        i: int,
        raw: bytes | None,
        lines: list[bytes],
        indices: list[int],
        rejects: list[tuple[int, str]],
    ) -> None:
        event, reason = self.validator.decode(raw)
        if reason is not None:
            rejects.append((i, reason))
            return
        lines.append(orjson.dumps(event))
        indices.append(i)

    def _parse(self, lines: list[bytes]) -> pa.Table | None:
        if not lines:
            return self.parse_schema.empty_table()
        return self._parse_data(b"\n".join(lines), len(lines))

    def _parse_data(self, data: bytes, rows: int) -> pa.Table | None:
        try:
            table = pj.read_json(
                io.BytesIO(data),
                read_options=pj.ReadOptions(block_size=PARSE_BLOCK_BYTES, use_threads=True),
                parse_options=pj.ParseOptions(
                    explicit_schema=self.parse_schema,
                    unexpected_field_behavior="error",
                    newlines_in_values=False,
                ),
            )
        except (pa.ArrowInvalid, UnicodeDecodeError, ValueError):
            return None
        if table.num_rows != rows:
            return None
        return table.select(self.parse_schema.names)

    def _parse_each(
        self, lines: list[bytes], indices: list[int], rejects: list[tuple[int, str]]
    ) -> tuple[pa.Table, list[int]]:
        """Last resort when validated events still fail to parse together: one at a time."""
        tables, kept = [], []
        for line, i in zip(lines, indices, strict=True):
            table = self._parse([line])
            if table is None:
                rejects.append((i, "event does not convert to the table schema"))
            else:
                tables.append(table)
                kept.append(i)
        if not tables:
            return self.parse_schema.empty_table(), []
        return pa.concat_tables(tables), kept

    def _check(
        self,
        table: pa.Table,
        indices: list[int],
        values: Sequence[bytes | None],
        rejects: list[tuple[int, str]],
    ) -> tuple[pa.Table, list[int]]:
        """Drop rows that break nullability, choices, ranges or timestamp rules; type the rest."""
        if table.num_rows == 0:
            return self.target_schema.empty_table(), []
        bad = self._bad_rows(table)
        if bad is not None and pc.any(bad).as_py():
            bad_positions = pc.indices_nonzero(bad).to_pylist()
            for position in bad_positions:
                i = indices[position]
                _, reason = self.validator.decode(values[i])
                rejects.append((i, reason or "event failed columnar validation"))
            keep = pc.invert(bad)
            table = table.filter(keep)
            bad_set = set(bad_positions)
            indices = [i for p, i in enumerate(indices) if p not in bad_set]
        try:
            typed = self._typed(table)
        except (pa.ArrowInvalid, ValueError):
            # A timestamp Arrow cannot read (e.g. month 13): sort it out event by event.
            return self._check_each(table, indices, values, rejects)
        return typed, indices

    def _check_each(
        self,
        table: pa.Table,
        indices: list[int],
        values: Sequence[bytes | None],
        rejects: list[tuple[int, str]],
    ) -> tuple[pa.Table, list[int]]:
        keep_rows, kept = [], []
        for position, i in enumerate(indices):
            try:
                keep_rows.append(self._typed(table.slice(position, 1)))
                kept.append(i)
            except (pa.ArrowInvalid, ValueError) as error:
                _, reason = self.validator.decode(values[i])
                rejects.append((i, reason or f"invalid timestamp: {error}"))
        if not keep_rows:
            return self.target_schema.empty_table(), []
        return pa.concat_tables(keep_rows), kept

    def _bad_rows(self, table: pa.Table) -> pa.Array | None:
        """A boolean mask of rows breaking a rule Arrow's parser does not enforce."""
        masks = []
        for leaf in self.leaves:
            column, present = _column(table, leaf.path)
            spec = leaf.spec
            is_null = pc.is_null(column)
            if not spec.nullable:
                masks.append(pc.and_(present, is_null) if present is not None else is_null)
            checks = self._value_checks(spec, column)
            for check in checks:
                masks.append(pc.invert(pc.or_(is_null, check)))
        if not masks:
            return None
        combined = masks[0]
        for mask in masks[1:]:
            combined = pc.or_(combined, mask)
        return pc.fill_null(combined, False)

    @staticmethod
    def _value_checks(spec: FieldSpec, column: pa.ChunkedArray) -> list[pa.ChunkedArray]:
        checks = []
        if spec.type == "float":
            checks.append(pc.is_finite(column))
        if spec.minimum is not None:
            checks.append(pc.greater_equal(column, pa.scalar(spec.minimum, column.type)))
        if spec.maximum is not None:
            checks.append(pc.less_equal(column, pa.scalar(spec.maximum, column.type)))
        if spec.choices is not None:
            checks.append(pc.is_in(column, value_set=pa.array(spec.choices, pa.string())))
        if spec.type == "timestamp":
            checks.append(pc.match_substring_regex(column, TIMESTAMP_PATTERN))
        return checks

    def _typed(self, table: pa.Table) -> pa.Table:
        """Cast timestamp strings to timestamp[us, UTC] and nullability to the spec's schema."""
        return table.cast(self.target_schema)


def _unusual(raw: bytes) -> bool:
    """Not one compact JSON object per line: leave it to the per-event path."""
    return raw[0] != 123 or raw[-1] != 125 or b"\n" in raw or b"\r" in raw


def _column(table: pa.Table, path: tuple[str, ...]) -> tuple[pa.ChunkedArray, Any]:
    """The values at `path`, and a mask of rows where every parent struct is present."""
    column = table.column(path[0])
    present = None
    for name in path[1:]:
        valid = pc.is_valid(column)
        present = valid if present is None else pc.and_(present, valid)
        column = pc.struct_field(column, name)
    return column, present
