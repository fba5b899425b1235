"""Celery app: tenant-schemas-celery carries the clinic schema in each message's headers and
the worker switches to it before running the task (DESIGN.md §7).

Queues: `platform` for public-schema work, `tenant.<schema>` for a clinic's work.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery import bootsteps
from celery.signals import celeryd_after_setup
from tenant_schemas_celery.app import CeleryApp

from tenants.queues import tenant_queue

# Importing `config` loads this app. Under pytest (the plugin config.pytest_embedded is imported
# before pytest-django reads its ini) the default must be the test settings, or pytest-django
# would take this default from the environment and run the suite on the local settings.
os.environ.setdefault(
    "DJANGO_SETTINGS_MODULE", "config.settings.test" if "pytest" in sys.modules else "config.settings.local"
)

logger = logging.getLogger(__name__)

app = CeleryApp("csu")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = ("config.celery.route_by_tenant",)
app.autodiscover_tasks()

PLATFORM_QUEUE = "platform"


# Work that must never delay a reminder. kombu's Redis transport keeps one list per priority
# step (0, 3, 6, 9) and its BRPOP takes the lowest step of every consumed queue first: a task
# sent at 9 runs only when no queue holds default-priority (0) work, so a burst of reports
# waits behind the clinic's reminder deliveries instead of ahead of them.
TASK_PRIORITIES = {"clinicians.report_generate": 9}


def route_by_tenant(
    name: str, args: Any, kwargs: Any, options: dict[str, Any], task: Any = None, **kw: Any
) -> dict[str, Any]:
    """Tasks sent from a clinic's schema go to that clinic's queue; the rest to `platform`.

    kombu's Redis transport rotates between non-empty queues, so one clinic's backlog cannot
    starve another's work. Low-priority tasks (TASK_PRIORITIES) carry their priority.
    """
    route: dict[str, Any] = {"priority": TASK_PRIORITIES[name]} if name in TASK_PRIORITIES else {}
    if options.get("queue"):
        return {**route, "queue": options["queue"]}
    schema = (options.get("headers") or {}).get("_schema_name")
    if schema and schema != "public":
        return {**route, "queue": tenant_queue(schema)}
    return {**route, "queue": PLATFORM_QUEUE}


@celeryd_after_setup.connect
def _consume_clinic_queues(sender: str, instance: Any, **kwargs: Any) -> None:
    """A worker consumes `platform` and the queue of every routable clinic at start."""
    from tenants.models import QUEUE_STATUSES, Clinic

    queues = instance.app.amqp.queues
    schemas = Clinic.objects.filter(status__in=QUEUE_STATUSES).values_list("schema_name", flat=True)
    for schema in schemas:
        queues.select_add(tenant_queue(schema))


RECONCILE_SECONDS = 60


class ClinicQueueReconciler(bootsteps.StartStopStep):
    """Every minute the worker consumes exactly the queues of the clinics that should be
    consumed. The `add_consumer` broadcast on clinic creation is lost by a worker that is still
    starting (it read the clinic list just before and was not yet listening for broadcasts),
    and a deleted clinic's queue must be dropped by workers that were down at the time."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, c: Any, **kwargs: Any) -> None:
        self.tref: Any = None

    def start(self, c: Any) -> None:
        self.tref = c.timer.call_repeatedly(RECONCILE_SECONDS, self.reconcile, (c,), priority=10)

    def stop(self, c: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def reconcile(self, c: Any) -> None:
        from django.db import close_old_connections

        from tenants.models import QUEUE_STATUSES, Clinic

        try:
            schemas = Clinic.objects.filter(status__in=QUEUE_STATUSES).values_list("schema_name", flat=True)
            wanted = {tenant_queue(schema) for schema in schemas}
            consumed = {queue.name for queue in c.task_consumer.queues}
            for name in sorted(wanted - consumed):
                c.add_task_queue(name)
            for name in sorted(q for q in consumed if q.startswith("tenant.") and q not in wanted):
                c.cancel_task_queue(name)
        except Exception:  # never take the consumer down; next minute tries again
            logger.warning("Clinic queue reconciliation failed", exc_info=True)
        finally:
            close_old_connections()


app.steps["consumer"].add(ClinicQueueReconciler)
