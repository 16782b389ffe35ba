"""Prediction requests and responses on the hot path, without FastAPI's generic body handling.

A predict endpoint takes the raw `Request`: the body is parsed and validated in one pass by
pydantic from the bytes (`model_validate_json`: no `json.loads` then a second walk, no
content-type parsing through `email.message`, no body field to solve), and the answer is encoded
once by orjson (FastAPI sends a returned `Response` as it is, without validating the dict against
the response model and encoding it again). For a model that scores in microseconds this was about
half of a prediction's server time.

Nothing visible changes: an invalid body is FastAPI's `RequestValidationError` with `body`
locations (422 with the field named, see `errors`), and the OpenAPI document still shows the
typed request: `request_body_doc` references the request model's schema, which
`document_request_models` adds to the components.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from coelho_serving.schemas import PredictionRequest

SCHEMA_REF = "#/components/schemas/{model}"
_INPUT_PREVIEW = 200


async def read_event(request: Request, model: type[PredictionRequest]) -> dict[str, Any]:
    """The request body validated as `model`, as an event dict (UTC timestamps); a body that
    is not a valid JSON object of that shape raises `RequestValidationError`."""
    content_type = request.headers.get("content-type")
    if content_type is not None and "json" not in content_type.lower():
        raise RequestValidationError(
            [
                {
                    "type": "content_type",
                    "loc": ("body",),
                    "msg": f"send the event as JSON (Content-Type: application/json), "
                    f"not {content_type!r}",
                    "input": None,
                }
            ]
        )
    body = await request.body()
    try:
        parsed = model.model_validate_json(body)
    except ValidationError as error:
        raise RequestValidationError(_body_errors(error), body=body) from None
    return parsed.event()


def _body_errors(error: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors located under `body`, as FastAPI reports body errors; raw bytes (the
    input of a JSON syntax error) become a short text preview."""
    errors = []
    for item in error.errors(include_url=False):
        entry = {**item, "loc": ("body", *item.get("loc", ()))}
        if isinstance(entry.get("input"), bytes | bytearray):
            entry["input"] = bytes(entry["input"][:_INPUT_PREVIEW]).decode("utf-8", "replace")
        errors.append(entry)
    return errors


def read_query_text(request: Request, name: str, max_length: int) -> str | None:
    """An optional query parameter of 1 to `max_length` characters (else a 422 naming it)."""
    value = request.query_params.get(name)
    if value is None or 0 < len(value) <= max_length:
        return value
    kind, message = (
        ("string_too_short", "String should have at least 1 character")
        if not value
        else ("string_too_long", f"String should have at most {max_length} characters")
    )
    raise RequestValidationError(
        [{"type": kind, "loc": ("query", name), "msg": message, "input": value}]
    )


def query_text_doc(name: str, max_length: int, description: str) -> dict[str, Any]:
    """The OpenAPI parameter `read_query_text` reads."""
    schema = {"type": "string", "minLength": 1, "maxLength": max_length}
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def json_response(body: dict[str, Any]) -> Response:
    """`body` as a JSON response, encoded once."""
    return Response(orjson.dumps(body), media_type="application/json")


def request_body_doc(model: type[PredictionRequest]) -> dict[str, Any]:
    """`openapi_extra` declaring a required JSON body of `model`'s schema."""
    schema = {"$ref": SCHEMA_REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def document_request_models(app: FastAPI, models: Iterable[type[PredictionRequest]]) -> None:
    """Add the schemas of `models` (and of their nested objects) to `app`'s OpenAPI components,
    where `request_body_doc` points."""
    models = list(models)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template=SCHEMA_REF)
                components.update(schema.pop("$defs", {}))
                components[model.__name__] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
