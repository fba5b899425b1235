"""Business-rule errors and the one exception handler that renders every error as RFC 9457.

Every API error body is `application/problem+json`:
`{"type", "title", "status", "detail", "code"[, "errors": {field: [messages]}]}`.
"""

# ruff: noqa: I001 (core.codes is imported before DRF on purpose, see below)
from __future__ import annotations

# First: DRF's import below may import app modules that import ErrorCode from here.
from core.codes import ErrorCode as ErrorCode
from core.problems import problem_type_uri

import logging
import sys
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ApplicationError(Exception):
    """A business rule refused the operation. Rendered as a problem with a stable `code`."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(
        self,
        *,
        code: ErrorCode,
        detail: str,
        status_code: int | None = None,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field
        self.extra = extra or {}
        self.headers = headers or {}
        if status_code is not None:
            self.status_code = status_code


_TITLES = {
    400: "Invalid request",
    401: "Authentication required",
    403: "Permission denied",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    426: "Upgrade required",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def status_title(status_code: int) -> str:
    """A problem's `title`: the status in words (the `code` says why)."""
    return _TITLES.get(status_code, "Error")


class AuditedPermissionDenied(exceptions.PermissionDenied):
    """A member refused by a role or MFA permission. The request transaction is kept, so the
    refusal's audit row (written by config.api_errors) survives the 403 (DESIGN.md §9: every
    failed authorization is in the access log). Raised before the view runs: nothing else to
    roll back."""

    keep_transaction = True


def problem(
    *,
    status_code: int,
    code: str,
    detail: str,
    errors: dict[str, list[str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type_uri(code),
        "title": status_title(status_code),
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return body


def problem_response(
    *, status_code: int, code: str, detail: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> JsonResponse:
    """A plain Django response carrying a problem body (for middleware and handler404/500)."""
    response = JsonResponse(
        problem(status_code=status_code, code=code, detail=detail, **kwargs),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# How long a client should wait before retrying while the database is unreachable: Django
# reconnects on the next request after PostgreSQL is back (CONN_HEALTH_CHECKS).
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable(exc: BaseException | None) -> bool:
    """The database could not be reached or dropped the connection (not a constraint or a
    programming error, which keep their own answers). Any OperationalError counts, so a lock
    or serialization failure also asks the client to retry."""
    return isinstance(exc, OperationalError | InterfaceError)


def _database_unavailable_problem(exc: BaseException) -> tuple[dict[str, Any], dict[str, str]]:
    # The exception's text may name the server, the user or a query: only its type is logged.
    # psycopg's class of the cause (OperationalError, DeadlockDetected, QueryCanceled...) tells
    # an outage from a lock conflict in the dashboards.
    cause = exc.__cause__
    logger.warning(
        "Database unavailable or conflicting: %s (%s)",
        type(exc).__name__,
        type(cause).__name__ if cause is not None else "-",
    )
    body = problem(
        status_code=503,
        code=ErrorCode.SERVICE_UNAVAILABLE,
        detail="The service is briefly unavailable. Try again in a few seconds.",
    )
    return body, {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}


def _flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail → {"field.sub": ["message", ...]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = str(key) if not prefix else f"{prefix}.{key}"
            if key == "non_field_errors" and not prefix:
                name = "non_field_errors"
            for sub, messages in _flatten_errors(value, name).items():
                out.setdefault(sub, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                for sub, messages in _flatten_errors(item, f"{prefix}[{index}]").items():
                    out.setdefault(sub, []).extend(messages)
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF EXCEPTION_HANDLER: every error becomes application/problem+json.

    Every error also rolls back the request's transaction (ATOMIC_REQUESTS): no half-done
    write survives an error response. Sign-in views, whose failure records must persist for
    the lockout, run outside the request transaction (`BaseApi.atomic_requests = False`).
    """
    if getattr(context.get("view"), "atomic_requests", True) and not getattr(exc, "keep_transaction", False):
        set_rollback()
    if isinstance(exc, ApplicationError):
        errors = {exc.field: [exc.detail]} if exc.field else None
        body = problem(
            status_code=exc.status_code, code=exc.code, detail=exc.detail, errors=errors, extra=exc.extra
        )
        return Response(
            body, status=exc.status_code, content_type=PROBLEM_CONTENT_TYPE, headers=exc.headers or None
        )

    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            detail=exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        body = problem(status_code=413, code=ErrorCode.PAYLOAD_TOO_LARGE, detail="The request body is too large.")
        return Response(body, status=413, content_type=PROBLEM_CONTENT_TYPE)
    elif isinstance(exc, SuspiciousOperation):
        body = problem(status_code=400, code=ErrorCode.BAD_REQUEST, detail="The request could not be accepted.")
        return Response(body, status=400, content_type=PROBLEM_CONTENT_TYPE)

    if database_unavailable(exc):
        body, headers = _database_unavailable_problem(exc)
        return Response(body, status=503, content_type=PROBLEM_CONTENT_TYPE, headers=headers)

    response = _drf_response(exc)
    if response is None:
        # Unhandled: log with traceback server-side, answer without one.
        logger.exception("Unhandled API error", exc_info=exc)
        body = problem(status_code=500, code=ErrorCode.SERVER_ERROR, detail="An unexpected error occurred.")
        return Response(body, status=500, content_type=PROBLEM_CONTENT_TYPE)

    assert isinstance(exc, exceptions.APIException)
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten_errors(exc.detail)
        code = "validation_error"
        detail = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
        body = problem(status_code=response.status_code, code=code, detail=detail, errors=errors)
    else:
        detail_value: Any = exc.detail
        codes = exc.get_codes()
        if isinstance(detail_value, dict):  # simplejwt: {"detail": ..., "code": ..., "messages": [...]}
            code = str(detail_value.get("code") or exc.default_code)
            detail_value = detail_value.get("detail", exc.default_detail)
        else:
            code = codes if isinstance(codes, str) else exc.default_code
        body = problem(status_code=response.status_code, code=code, detail=str(detail_value))
        wait = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
        if wait is not None:
            body["retry_after"] = int(wait)
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _drf_response(exc: Exception) -> Response | None:
    """DRF's default handler without its unconditional set_rollback (decided above)."""
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = f"{int(exc.wait)}"  # type: ignore[attr-defined]
    return Response(exc.detail, status=exc.status_code, headers=headers)


def not_found_view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(status_code=404, code=ErrorCode.NOT_FOUND, detail="No such resource.")


def server_error_view(request: HttpRequest) -> JsonResponse:
    """handler500: Django calls it while handling the exception (of a middleware, such as the
    host routing's database lookup, or of a plain Django view), so `sys.exc_info()` names it."""
    exc = sys.exc_info()[1]
    if database_unavailable(exc):
        assert exc is not None
        body, headers = _database_unavailable_problem(exc)
        response = JsonResponse(body, status=503, content_type=PROBLEM_CONTENT_TYPE)
        for name, value in headers.items():
            response[name] = value
        return response
    return problem_response(status_code=500, code=ErrorCode.SERVER_ERROR, detail="An unexpected error occurred.")


def permission_denied_view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(status_code=403, code=ErrorCode.PERMISSION_DENIED, detail="Permission denied.")


def bad_request_view(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(status_code=400, code=ErrorCode.BAD_REQUEST, detail="Bad request.")
