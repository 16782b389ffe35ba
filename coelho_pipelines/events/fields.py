"""Event schemas as data: one definition drives validation, Arrow/Delta schema, API models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, create_model

FieldType = Literal["string", "int", "float", "bool", "timestamp", "struct"]

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class FieldSpec:
    """One event field: its type, whether it may be null, and its allowed values or range."""

    name: str
    type: FieldType
    nullable: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    children: tuple[FieldSpec, ...] = field(default_factory=tuple)
    description: str = ""

    def arrow_type(self) -> pa.DataType:
        if self.type == "struct":
            return pa.struct([child.arrow_field() for child in self.children])
        return _ARROW_TYPES[self.type]

    def arrow_field(self) -> pa.Field:
        return pa.field(self.name, self.arrow_type(), nullable=self.nullable)


def arrow_schema(fields: tuple[FieldSpec, ...]) -> pa.Schema:
    """The Arrow (and so Delta) schema of an event."""
    return pa.schema([f.arrow_field() for f in fields])


def _python_type(spec: FieldSpec, model_name: str) -> Any:
    if spec.type == "struct":
        return pydantic_model(f"{model_name}_{spec.name}", spec.children)
    if spec.choices is not None:
        return Literal[spec.choices]  # type: ignore[valid-type]
    return {"string": str, "int": int, "float": float, "bool": bool, "timestamp": datetime}[
        spec.type
    ]


def _field_definition(spec: FieldSpec, model_name: str) -> tuple[Any, Any]:
    python_type = _python_type(spec, model_name)
    constraints: dict[str, Any] = {"description": spec.description or None}
    if spec.minimum is not None:
        constraints["ge"] = spec.minimum
    if spec.maximum is not None:
        constraints["le"] = spec.maximum
    if spec.nullable:
        return python_type | None, Field(None, **constraints)
    return python_type, Field(..., **constraints)


class StrictEvent(BaseModel):
    """Base of every event model: unknown fields are rejected, numbers are not parsed from text."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


def pydantic_model(name: str, fields: tuple[FieldSpec, ...]) -> type[BaseModel]:
    """A pydantic model that validates one event (types, enums, ranges, nullability)."""
    definitions = {f.name: _field_definition(f, name) for f in fields}
    return create_model(name, __base__=StrictEvent, **definitions)  # type: ignore[call-overload]


def field_names(fields: tuple[FieldSpec, ...]) -> list[str]:
    """Top-level field names in schema order."""
    return [f.name for f in fields]
