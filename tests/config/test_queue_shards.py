"""Workers consume the clinic queues in shards: a worker of group i of N takes the clinics whose
crc32(schema) % N == i (plus `platform`), so one BRPOP never carries every clinic; `-Q` gives a
worker exactly the queues it names; fairness holds inside a shard and across shards."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
import zlib
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.test import override_settings
from django_tenants.utils import tenant_context

from config.celery import ClinicQueueReconciler, wanted_clinic_queues
from config.celery import app as celery_app
from tenants.models import Clinic
from tenants.queues import clinic_queue_shard, tenant_queue
from tests.celery_probe import probe_redis, slow_effect
from tests.workers import ROOT, database_url, purge_queues, wait_until


def test_a_clinics_shard_is_crc32_of_its_schema_name_the_same_in_every_process() -> None:
    assert clinic_queue_shard("clinic_alpha", 2) == zlib.crc32(b"clinic_alpha") % 2 == 1
    assert clinic_queue_shard("clinic_beta", 2) == 0
    assert [clinic_queue_shard("clinic_alpha", n) for n in (1, 3, 7)] == [0, 2, 2]


def test_kombu_keeps_two_priority_lists_per_queue_and_reports_still_sort_after_reminders() -> None:
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        assert channel.priority_steps == [0, 9]
        assert [channel._q_for_pri("tenant.clinic_alpha", p) for p in (0, 5, 9)] == [
            "tenant.clinic_alpha",
            "tenant.clinic_alpha",
            "tenant.clinic_alpha\x06\x169",
        ]


@pytest.mark.django_db
@pytest.mark.parametrize(("shard", "wanted"), [(0, ["tenant.clinic_beta"]), (1, ["tenant.clinic_alpha"])])
def test_the_reconciler_keeps_exactly_the_clinics_of_its_shard(
    clinic_a: Clinic, clinic_b: Clinic, shard: int, wanted: list[str]
) -> None:
    added: list[str] = []
    canceled: list[str] = []
    consumed = ["platform", "tenant.clinic_alpha", "tenant.clinic_beta", "tenant.clinic_gone"]
    consumer = SimpleNamespace(
        task_consumer=SimpleNamespace(queues=[SimpleNamespace(name=n) for n in consumed]),
        add_task_queue=added.append,
        cancel_task_queue=canceled.append,
    )
    with override_settings(CLINIC_QUEUE_SHARDS=2, CLINIC_QUEUE_SHARD=shard):
        assert sorted(q for q in wanted_clinic_queues() if q in consumed) == wanted
        ClinicQueueReconciler(consumer).reconcile(consumer)
    assert added == []
    assert sorted(canceled) == sorted(q for q in consumed[1:] if q not in wanted)


@contextlib.contextmanager
def _workers(*specs: tuple[list[str], dict[str, str]]) -> Iterator[list[str]]:
    """Real worker processes, each with its own CLI arguments and environment; yields their
    node names once every one answers a ping."""
    names = [f"w{i}-{uuid.uuid4().hex[:6]}@test" for i in range(len(specs))]
    processes = []
    for name, (args, env) in zip(names, specs, strict=True):
        processes.append(
            subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-I", "tests.celery_probe"]
                + [
                    "-P",
                    "solo",
                    "-c",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "-l",
                    "WARNING",
                    "-n",
                    name,
                ]
                + args,
                cwd=ROOT,
                env={
                    **os.environ,
                    "DJANGO_SETTINGS_MODULE": "config.settings.test",
                    "DATABASE_URL": database_url(),
                    "REDIS_URL": settings.REDIS_URL,
                    **env,
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    celery_app.conf.task_always_eager = False
    try:
        assert wait_until(
            lambda: set(names) <= {n for reply in celery_app.control.ping(timeout=1) for n in reply}, 90
        ), "workers did not start"
        yield names
    finally:
        celery_app.conf.task_always_eager = True
        for process in processes:
            process.terminate()
        for process in processes:
            process.communicate(timeout=30)


def _active_queues(name: str) -> set[str]:
    replies = celery_app.control.inspect(destination=[name], timeout=5).active_queues() or {}
    return {q["name"] for q in replies.get(name, [])}


@pytest.mark.slow
def test_a_worker_started_with_q_consumes_exactly_those_queues_and_shards_split_the_clinics(
    committed_db: None,
) -> None:
    shard = {"CLINIC_QUEUE_SHARDS": "2"}
    specs = (
        (["-Q", "tenant.clinic_alpha"], {}),
        ([], {**shard, "CLINIC_QUEUE_SHARD": "0"}),
        ([], {**shard, "CLINIC_QUEUE_SHARD": "1"}),
    )
    with _workers(*specs) as (dedicated, shard0, shard1):
        assert _active_queues(dedicated) == {"tenant.clinic_alpha"}
        mine0, mine1 = _active_queues(shard0), _active_queues(shard1)
    assert {"platform", "tenant.clinic_beta"} <= mine0 and "tenant.clinic_alpha" not in mine0
    assert {"platform", "tenant.clinic_alpha"} <= mine1 and "tenant.clinic_beta" not in mine1
    every = {tenant_queue(s) for s in Clinic.objects.values_list("schema_name", flat=True)}
    assert (mine0 | mine1) - {"platform"} <= every
    assert not (mine0 & mine1) - {"platform"}


@pytest.mark.slow
def test_with_two_worker_groups_one_clinics_backlog_holds_up_neither_its_shard_peer_nor_the_other_shard(
    committed_db: None,
) -> None:
    """alpha (shard 1 of 2) queues 300 tasks; then gamma-shard (also shard 1) and beta (shard 0)
    one each. Inside the shard the worker rotates between alpha's and gamma's queues, so gamma's
    task starts among the first few; beta's runs on the other group meanwhile."""
    from tenants.services import clinic_create, clinic_delete

    alpha, beta = Clinic.objects.get(slug="alpha"), Clinic.objects.get(slug="beta")
    gamma = clinic_create(slug="gamma-shard", name="Gamma Shard Clinic")
    assert clinic_queue_shard(gamma.schema_name, 2) == clinic_queue_shard(alpha.schema_name, 2) == 1
    queues = [tenant_queue(c.schema_name) for c in (alpha, beta, gamma)]
    key = f"fair-{uuid.uuid4().hex[:8]}"
    try:
        purge_queues(*queues)
        celery_app.conf.task_always_eager = False
        try:
            with tenant_context(alpha):  # same priority as the others: rotation alone decides
                for _ in range(300):
                    slow_effect.delay(key, 0.01)
            with tenant_context(gamma):
                slow_effect.delay(key, 0)
            with tenant_context(beta):
                slow_effect.delay(key, 0)
        finally:
            celery_app.conf.task_always_eager = True
        shard = {"CLINIC_QUEUE_SHARDS": "2"}
        redis = probe_redis()

        def started() -> list[str]:
            return [x.decode() for x in redis.lrange(f"{key}:starts", 0, -1)]

        with _workers(([], {**shard, "CLINIC_QUEUE_SHARD": "0"}), ([], {**shard, "CLINIC_QUEUE_SHARD": "1"})):
            assert wait_until(lambda: {"clinic_gamma_shard", "clinic_beta"} <= set(started()), 120), (
                "gamma's or beta's task never ran"
            )
        shard1 = [schema for schema in started() if schema != "clinic_beta"]  # one worker's order
        ahead = shard1.index("clinic_gamma_shard")
        assert ahead < 10, f"gamma waited behind {ahead} of alpha's tasks in its shard"
        assert shard1.count("clinic_alpha") < 300
    finally:
        purge_queues(*queues)
        clinic_delete(clinic=gamma)
