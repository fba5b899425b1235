"""Celery app: tenant-schemas-celery carries the clinic schema in each message's headers and
the worker switches to it before running the task (DESIGN.md §7).

Queues: `platform` for public-schema work, `tenant.<schema>` for a clinic's work.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import celeryd_after_setup
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

logger = logging.getLogger(__name__)

app = CeleryApp("csu")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = ("config.celery.route_by_tenant",)
app.autodiscover_tasks()

PLATFORM_QUEUE = "platform"


def tenant_queue(schema_name: str) -> str:
    return f"tenant.{schema_name}"


def route_by_tenant(
    name: str, args: Any, kwargs: Any, options: dict[str, Any], task: Any = None, **kw: Any
) -> dict[str, str]:
    """Tasks sent from a clinic's schema go to that clinic's queue; the rest to `platform`.

    kombu's Redis transport rotates between non-empty queues, so one clinic's backlog cannot
    starve another's work.
    """
    if options.get("queue"):
        return {"queue": options["queue"]}
    schema = (options.get("headers") or {}).get("_schema_name")
    if schema and schema != "public":
        return {"queue": tenant_queue(schema)}
    return {"queue": PLATFORM_QUEUE}


@celeryd_after_setup.connect
def _consume_clinic_queues(sender: str, instance: Any, **kwargs: Any) -> None:
    """A worker consumes `platform` and the queue of every routable clinic at start."""
    from tenants.models import QUEUE_STATUSES, Clinic

    queues = instance.app.amqp.queues
    schemas = Clinic.objects.filter(status__in=QUEUE_STATUSES).values_list("schema_name", flat=True)
    for schema in schemas:
        queues.select_add(tenant_queue(schema))


def clinic_queue_subscribe(schema_name: str) -> None:
    """Ask every running worker to consume a new clinic's queue now (workers also subscribe to
    every clinic at start, since runtime subscriptions are not persisted)."""
    try:
        app.control.add_consumer(tenant_queue(schema_name), reply=False)
    except Exception:  # the broker being down must not fail clinic creation; workers catch up at start
        logger.warning("Could not broadcast add_consumer for a new clinic queue", exc_info=True)


def clinic_queue_unsubscribe(schema_name: str) -> None:
    try:
        app.control.cancel_consumer(tenant_queue(schema_name), reply=False)
    except Exception:
        logger.warning("Could not broadcast cancel_consumer for a clinic queue", exc_info=True)
