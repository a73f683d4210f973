"""Arguments checked as the REST API checks its path and body: the same models, the same 422."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from skilltree.identity import MAX_SLUG_LENGTH, SLUG_PATTERN
from skilltree.platform.errors import DomainError

SLUG = re.compile(SLUG_PATTERN)
Model = TypeVar("Model", bound=BaseModel)


class InvalidArguments(DomainError):
    """Arguments the REST API would refuse with its 422 validation problem."""

    status = 422
    type_slug = "validation-error"
    title = "Validation failed"


def checked(model: type[Model], **values: Any) -> Model:
    """The REST request model's validation, for a GraphQL field's arguments."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        errors = [
            {"field": ".".join(map(str, item["loc"])), "message": item["msg"], "type": item["type"]}
            for item in error.errors()
        ]
        raise InvalidArguments(
            f"The request has {len(errors)} invalid field(s).", errors=errors
        ) from None


def slug_argument(value: str, argument: str) -> str:
    if len(value) > MAX_SLUG_LENGTH or not SLUG.match(value):
        raise InvalidArguments(
            f"{argument} must be a slug (lower-case letters, digits and single hyphens).",
            errors=[
                {"field": argument, "message": "not a slug", "type": "string_pattern_mismatch"}
            ],
        )
    return value


def bounded(value: int, argument: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidArguments(
            f"{argument} must be between {low} and {high}.",
            errors=[{"field": argument, "message": "out of range", "type": "range"}],
        )
    return value
