"""Tenant models (one copy per clinic schema)."""

from __future__ import annotations

import uuid

from django.db import models


class AccessLog(models.Model):
    """Who touched which patient's data, when, from where (DESIGN.md §9).

    Append-only: a trigger in every clinic schema refuses UPDATE and DELETE (migration 0002).
    Written in the same transaction as the access it records.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    actor_id = models.UUIDField(null=True, blank=True)
    actor_role = models.CharField(max_length=20, blank=True)
    action = models.CharField(max_length=64)
    patient_id = models.UUIDField(null=True, blank=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    allowed = models.BooleanField(default=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["patient_id", "-created_at"], name="accesslog_patient_time"),
            models.Index(fields=["actor_id", "-created_at"], name="accesslog_actor_time"),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id} at {self.created_at:%Y-%m-%d %H:%M}"
