from __future__ import annotations

import uuid

from django.db import models


class BaseModel(models.Model):
    """UUID primary key and creation/update timestamps (UTC) for every domain model."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class OutboxMessage(models.Model):
    """A task to publish once the transaction that wrote it commits (transactional outbox).

    `core` is both a shared and a tenant app, so every schema (public and each clinic) has its
    own outbox, written in the same transaction as the business rows. After commit the message
    is published at once; if the broker is down the row stays unsent and the relay publishes it
    later. Consumers are idempotent: a message can be published twice (crash between publish
    and marking it sent), never zero times.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_name = models.CharField(max_length=120)
    # Ids only, never PHI (DESIGN.md §7).
    kwargs = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["created_at"], condition=models.Q(sent_at__isnull=True), name="outbox_unsent"
            )
        ]

    def __str__(self) -> str:
        return f"{self.task_name} {self.id}"
