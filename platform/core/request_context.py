"""The request id and the client's address, for as long as a request runs (DESIGN.md §9).

Every log line carries the request id (`RequestIdLogFilter`, wired into LOGGING), every audit
row the id and the client's address (patients.audit defaults to them), and every response
echoes the id in `X-Request-ID`, so a user's report, the proxy's log and ours can be matched.
The id comes from the trusted proxy (Caddy sets one per request) or is made here. Outside a
request (Celery tasks, management commands) both are empty.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.utils.log import log_response

from core.net import client_ip, untrusted_forwarding_headers_drop

REQUEST_ID_HEADER = "X-Request-ID"
# Short and inert: it lands in log lines, audit rows (64 characters) and a response header.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    client_ip: str | None = None


_NO_REQUEST = RequestContext()  # frozen: safe to share as the default
_current: ContextVar[RequestContext] = ContextVar("csu_request_context", default=_NO_REQUEST)


def current_request_context() -> RequestContext:
    """The running request's id and client address; empty outside a request."""
    return _current.get()


@contextmanager
def request_context(*, request_id: str, client_ip: str | None) -> Iterator[RequestContext]:
    """Make `request_id` and `client_ip` current for the block (restored afterwards)."""
    context = RequestContext(request_id=request_id, client_ip=client_ip)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def request_id_valid(value: str) -> bool:
    return _SAFE_REQUEST_ID.fullmatch(value) is not None


class RequestContextMiddleware:
    """First in MIDDLEWARE. Drops forwarding headers a trusted proxy did not send (core.net),
    takes the proxy's `X-Request-ID` if it is short and safe or makes one (uuid4 hex), binds it
    and the trusted client address for the request, and echoes the id on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        untrusted_forwarding_headers_drop(request)  # also X-Request-ID from anyone but the proxy
        request_id = request.META.get("HTTP_X_REQUEST_ID", "")
        if not request_id_valid(request_id):
            request_id = uuid.uuid4().hex
        with request_context(request_id=request_id, client_ip=client_ip(request)):
            response = self.get_response(request)
            # Django logs a 4xx/5xx ("Not Found: /x") after the whole middleware chain, where
            # the id is gone; log it here instead (log_response marks it, Django skips it then).
            if response.status_code >= 400:
                log_response(
                    "%s: %s", response.reason_phrase, request.path, response=response, request=request
                )
        response[REQUEST_ID_HEADER] = request_id
        return response


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every record a handler emits ("" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _current.get().request_id
        return True
