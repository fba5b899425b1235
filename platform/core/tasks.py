"""The one base class of every project task: retries on connection errors, and keeps the clinic
schema across retries (DESIGN.md §7).

A task that meets a database or broker outage is retried with exponential backoff and full
jitter, a bounded number of times, instead of being acknowledged and dropped.
"""

from __future__ import annotations

from typing import Any

import kombu.exceptions
import redis.exceptions
from celery.exceptions import Reject
from celery.utils.time import get_exponential_backoff_interval
from django.db import InterfaceError, OperationalError, connection
from tenant_schemas_celery.app import get_schema_name_from_task, switch_schema
from tenant_schemas_celery.task import TenantTask

# Transient: the database or Redis is (briefly) unreachable. Anything else is a bug or a
# business outcome and is not retried blindly.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
)

RETRY_BACKOFF = 5  # seconds: the first retry waits up to 5 s, then 10, 20, 40 …
RETRY_BACKOFF_MAX = 120  # … never more than 2 minutes, well inside the visibility timeout
MAX_RETRIES = 10  # about 6 minutes of outage on average (full jitter), 12½ at most


class ResilientTask(TenantTask):
    """Retries connection errors with backoff; late acknowledgement; the retry carries the
    clinic schema of the original message.

    Schema: tenant-schemas-celery switches schema in a `task_prerun` handler whose tenant
    lookup needs the database; Celery logs and ignores an exception there, so during an outage
    the task would start in the wrong schema. `__call__` checks the switch took effect and
    otherwise retries. A retry names the schema in its headers explicitly (on Redis the
    original header is merged into the request and `request.headers` is often empty, so
    tenant-schemas-celery would otherwise take whatever schema the connection is in).
    """

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    autoretry_for = CONNECTION_ERRORS
    retry_backoff = RETRY_BACKOFF
    retry_backoff_max = RETRY_BACKOFF_MAX
    retry_jitter = True
    max_retries = MAX_RETRIES

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.request.called_directly and not self.request.is_eager:
            try:
                self._ensure_schema(kwargs)
            except CONNECTION_ERRORS as exc:
                raise self.retry(exc=exc, countdown=self.backoff_countdown()) from exc
        return super().__call__(*args, **kwargs)

    def _ensure_schema(self, kwargs: dict[str, Any]) -> None:
        wanted = get_schema_name_from_task(self, kwargs)
        if wanted and getattr(connection, "schema_name", None) != wanted:
            switch_schema(task=self, kwargs=kwargs)  # the prerun switch failed: again, loudly

    def backoff_countdown(self) -> int:
        """The autoretry countdown for the current attempt (full jitter)."""
        return int(
            get_exponential_backoff_interval(
                factor=self.retry_backoff,
                retries=self.request.retries,
                maximum=self.retry_backoff_max,
                full_jitter=True,
            )
        )

    def signature_from_request(self, request: Any = None, *args: Any, **kwargs: Any) -> Any:
        request = self.request if request is None else request
        signature = super().signature_from_request(request, *args, **kwargs)
        schema = get_schema_name_from_task(self, {}) if request is self.request else None
        if schema:
            headers = dict(signature.options.get("headers") or {})
            headers["_schema_name"] = schema
            signature.options["headers"] = headers
        return signature

    def retry(self, *args: Any, **kwargs: Any) -> Any:
        """A retry is a new message: if it cannot be published (the broker is down), Celery
        rejects the current message without requeueing it and the task is lost. Requeue it
        instead; if the broker cannot take even that, the message stays in the unacked hash
        and the dead-message sweep (`UnackedRecovery`) returns it."""
        try:
            return super().retry(*args, **kwargs)
        except Reject as rejected:
            if rejected.requeue:
                raise
            raise Reject(rejected.reason, requeue=True) from rejected
