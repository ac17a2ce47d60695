"""The application's one error type. Every error a caller can cause is one of these; a single
DRF exception handler (marketplace.core.api) turns it into the documented body
`{"error": {"message": ..., "error_type": ...}}` with its HTTP status."""

from __future__ import annotations


class ApiError(Exception):
    status_code = 500
    error_type = "ServerError"
    default_message = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: dict | None = None,
        fields: dict | None = None,
        extra: dict | None = None,
    ):
        self.message = message or self.default_message
        self.headers = headers or {}
        self.fields = fields
        # More members of the error object, e.g. an input's `path` and `rule`.
        self.extra = extra or {}
        super().__init__(self.message)

    def body(self) -> dict:
        error = {**self.extra, "message": self.message, "error_type": self.error_type}
        if self.fields:
            error["fields"] = self.fields
        return {"error": error}


class InputError(ApiError):
    status_code = 400
    error_type = "InputError"
    default_message = "The request is not valid"


class AuthenticationError(ApiError):
    status_code = 401
    error_type = "AuthenticationError"
    default_message = "Authentication required: send an API key in the Authorization header"


class PaymentRequiredError(ApiError):
    status_code = 402
    error_type = "PaymentRequiredError"
    default_message = "The team's budget is exhausted"


class AuthorizationError(ApiError):
    status_code = 403
    error_type = "AuthorizationError"
    default_message = "You are not allowed to do this"


class NotFoundError(ApiError):
    status_code = 404
    error_type = "NotFoundError"
    default_message = "Not found"


class MethodNotAllowedError(ApiError):
    status_code = 405
    error_type = "MethodNotAllowedError"
    default_message = "Method not allowed"


class ConflictError(ApiError):
    status_code = 409
    error_type = "ConflictError"
    default_message = "The request conflicts with the current state"


class RequestTooLargeError(ApiError):
    status_code = 413
    error_type = "RequestTooLargeError"
    default_message = "The request body is too large"


class UnsupportedMediaTypeError(ApiError):
    status_code = 415
    error_type = "UnsupportedMediaTypeError"
    default_message = "Unsupported content type"


class RateLimitError(ApiError):
    status_code = 429
    error_type = "RateLimitError"
    default_message = "Too many requests"


class UnavailableError(ApiError):
    status_code = 503
    error_type = "UnavailableError"
    default_message = "The service is temporarily unavailable"


class GatewayTimeoutError(ApiError):
    status_code = 504
    error_type = "TimeoutError"
    default_message = "The call did not finish within its timeout"


ERROR_TYPE_BY_STATUS = {
    cls.status_code: cls
    for cls in (
        InputError,
        AuthenticationError,
        PaymentRequiredError,
        AuthorizationError,
        NotFoundError,
        MethodNotAllowedError,
        ConflictError,
        RequestTooLargeError,
        UnsupportedMediaTypeError,
        RateLimitError,
        UnavailableError,
        GatewayTimeoutError,
    )
}


def error_for_status(status_code: int, message: str | None = None) -> ApiError:
    cls = ERROR_TYPE_BY_STATUS.get(status_code)
    if cls is None:
        error = ApiError(message)
        error.status_code = status_code
        if 400 <= status_code < 500:
            error.error_type = "RequestError"
        return error
    return cls(message)
