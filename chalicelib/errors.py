"""One exception hierarchy for everything a caller can be told, mapped to HTTP in one place."""

from __future__ import annotations

import json

from chalice import Response


class FilaError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSignature(FilaError):
    status, code = 401, "invalid_signature"


class TimestampOutOfTolerance(FilaError):
    status, code = 401, "timestamp_out_of_tolerance"


class InvalidPayload(FilaError):
    status, code = 400, "invalid_payload"


class UnknownSource(FilaError):
    status, code = 404, "unknown_source"


class PayloadTooLarge(FilaError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(FilaError):
    status, code = 415, "unsupported_media_type"


class Unavailable(FilaError):
    status, code = 503, "unavailable"


class Unauthorized(FilaError):
    status, code = 401, "unauthorized"


class NotFound(FilaError):
    status, code = 404, "not_found"


class Conflict(FilaError):
    status, code = 409, "conflict"


def json_response(status: int, body: object) -> Response:
    return Response(
        body=json.dumps(body, separators=(",", ":")),
        status_code=status,
        headers={"Content-Type": "application/json"},
    )


def error_response(err: FilaError) -> Response:
    return json_response(err.status, {"error": {"code": err.code, "message": err.message}})
