"""Checking a request against what the served OpenAPI document says about it, so a test can
hold the document and the server to the same rule."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from jsonschema import Draft202012Validator


def request_body_validator(
    app: FastAPI, path: str, method: str, media_type: str = "application/json"
) -> Draft202012Validator:
    """A validator for the body the document describes (references resolve in the document)."""
    document = app.openapi()
    schema: dict[str, Any] = document["paths"][path][method]["requestBody"]["content"][media_type][
        "schema"
    ]
    return Draft202012Validator({**schema, "components": document["components"]})
