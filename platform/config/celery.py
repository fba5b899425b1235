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
from celery.signals import celeryd_after_setup, celeryd_init
from celery.utils.text import str_to_list
from celery.worker.control import control_command
from tenant_schemas_celery.app import CeleryApp

from core.tasks import UnackedRecovery
from tenants.queues import clinic_queue_shard, tenant_queue

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


class _Consumption:
    """What this worker process consumes. With `-Q`, exactly the queues named there (say, one
    worker dedicated to a large clinic's `tenant.<schema>`, or `platform` alone): no clinic is
    added. Without it, `platform` and the clinics of its shard: those whose crc32(schema name)
    modulo CLINIC_QUEUE_SHARDS is CLINIC_QUEUE_SHARD (crc32, not hash(): the same in every
    process), so one BRPOP carries 2 keys per clinic of one shard, not of every clinic.
    (Before, `-Q` was ignored: every worker added every clinic at start, at each reconcile, and
    on each clinic's add_consumer broadcast.)"""

    explicit_queues: list[str] = []


def clinic_shard() -> tuple[int, int] | None:
    """(shard, shards) whose clinics this worker consumes; None when `-Q` chose its queues."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    if _Consumption.explicit_queues:
        return None
    shards, shard = settings.CLINIC_QUEUE_SHARDS, settings.CLINIC_QUEUE_SHARD
    if shards < 1 or not 0 <= shard < shards:
        raise ImproperlyConfigured(f"CLINIC_QUEUE_SHARD must be in [0, CLINIC_QUEUE_SHARDS={shards})")
    return shard, shards


def wanted_clinic_queues() -> set[str]:
    """The queues of the routable clinics in this worker's shard (none with `-Q`)."""
    from tenants.models import QUEUE_STATUSES, Clinic

    assignment = clinic_shard()
    if assignment is None:
        return set()
    shard, shards = assignment
    schemas = Clinic.objects.filter(status__in=QUEUE_STATUSES).values_list("schema_name", flat=True)
    return {tenant_queue(schema) for schema in schemas if clinic_queue_shard(schema, shards) == shard}


@celeryd_init.connect
def _remember_explicit_queues(
    sender: str, instance: Any, conf: Any, options: dict[str, Any], **kw: Any
) -> None:
    _Consumption.explicit_queues = str_to_list(options.get("queues") or [])
    clinic_shard()  # a wrong shard setting stops the worker at start, not at the first reconcile


@celeryd_after_setup.connect
def _consume_clinic_queues(sender: str, instance: Any, **kwargs: Any) -> None:
    """At start, a worker without `-Q` consumes `platform` and its shard's clinic queues."""
    queues = instance.app.amqp.queues
    for name in sorted(wanted_clinic_queues()):
        queues.select_add(name)


@control_command(args=[("schema_name", str)], signature="<schema_name>")
def clinic_queue_add(state: Any, schema_name: str) -> dict[str, str]:
    """Broadcast when a clinic is created (tenants.queues.clinic_queue_subscribe): the workers
    of its shard consume its queue at once, the others ignore it."""
    assignment = clinic_shard()
    if assignment is None or clinic_queue_shard(schema_name, assignment[1]) != assignment[0]:
        return {"ok": "not in this worker's shard"}
    state.consumer.add_task_queue(tenant_queue(schema_name))
    return {"ok": "consuming"}


RECONCILE_SECONDS = 60


class ClinicQueueReconciler(bootsteps.StartStopStep):
    """Every minute the worker consumes exactly the queues of the clinics of its shard (none
    added or dropped with `-Q`). The `clinic_queue_add` broadcast on clinic creation is lost by
    a worker that is still starting (it read the clinic list just before and was not yet
    listening for broadcasts), and a deleted clinic's queue must be dropped by workers that
    were down at the time."""

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

        if clinic_shard() is None:
            return
        try:
            wanted = wanted_clinic_queues()
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
app.steps["consumer"].add(UnackedRecovery)  # a dead worker's messages run again within a minute
