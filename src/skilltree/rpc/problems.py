"""Domain errors as gRPC statuses: the REST API's problem, in gRPC's own vocabulary.

Each `DomainError` carries an HTTP status and a problem type; the gRPC status code follows from
the HTTP status (the table below, docs/api-styles.md), and the problem travels with it twice:
- in gRPC's rich error model (`grpc-status-details-bin`: a `google.rpc.Status` whose details
  hold an `ErrorInfo` with the problem type, title and HTTP status, and a `RetryInfo` when the
  caller should come back later), for clients that read details;
- as plain `problem-type` trailing metadata, for a person with grpcurl.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
import orjson
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from skilltree.platform.errors import DomainError
from skilltree.platform.http.problems import PROBLEM_TYPE_PREFIX

ERROR_DOMAIN = "skilltree"
PROBLEM_TYPE_KEY = "problem-type"

# HTTP status -> gRPC code. 409 is a refusal the state explains (nothing to undo, a name taken):
# retrying the same call cannot help, FAILED_PRECONDITION. 412 is a lost test-and-set (someone
# changed it since you read it): read again and retry, ABORTED.
CODE_OF_HTTP_STATUS: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    410: grpc.StatusCode.NOT_FOUND,
    412: grpc.StatusCode.ABORTED,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    428: grpc.StatusCode.FAILED_PRECONDITION,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    502: grpc.StatusCode.UNAVAILABLE,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.UNAVAILABLE,
}


class InvalidArgument(DomainError):
    """A request field the REST API would refuse with its 422 validation problem."""

    status = 422
    type_slug = "validation-error"
    title = "Validation failed"


class RateLimited(DomainError):
    """Over the caller's `read` or `write` budget (the REST API's 429)."""

    status = 429
    type_slug = "rate-limited"
    title = "Too many requests"


def code_of(error: DomainError) -> grpc.StatusCode:
    fallback = grpc.StatusCode.INTERNAL if error.status >= 500 else grpc.StatusCode.UNKNOWN
    return CODE_OF_HTTP_STATUS.get(error.status, fallback)


def problem_type(error: DomainError) -> str:
    return PROBLEM_TYPE_PREFIX + error.type_slug


def status_of(error: DomainError) -> grpc.Status:
    """The error as a gRPC status with its details, ready for `context.abort`."""
    code = code_of(error)
    info = error_details_pb2.ErrorInfo(
        reason=error.type_slug.replace("-", "_").upper(),
        domain=ERROR_DOMAIN,
        metadata={
            "type": problem_type(error),
            "title": error.title,
            "http_status": str(error.status),
            **{key: _text(value) for key, value in error.extensions.items()},
        },
    )
    details = [_packed(info)]
    retry_after = error.extensions.get("retry_after_seconds")
    if isinstance(retry_after, int):
        delay = duration_pb2.Duration(seconds=retry_after)
        details.append(_packed(error_details_pb2.RetryInfo(retry_delay=delay)))
    status = status_pb2.Status(code=code.value[0], message=error.detail, details=details)
    return rpc_status.to_status(status)


async def abort_with_problem(
    context: grpc.aio.ServicerContext[Any, Any], error: DomainError
) -> NoReturn:
    status = status_of(error)
    metadata = (*status.trailing_metadata, (PROBLEM_TYPE_KEY, problem_type(error)))
    await context.abort(status.code, status.details, trailing_metadata=metadata)
    raise AssertionError("context.abort raises")  # pragma: no cover


def _packed(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _text(value: Any) -> str:
    # ErrorInfo's metadata holds strings: other members (a list of field errors) as JSON.
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
