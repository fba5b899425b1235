"""Offline sync: a device pushes its queued mutations and pulls what changed."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.authentication import request_user
from core.api.base import StrictSerializer
from core.api.throttling import ScopedRateThrottle, UserRateThrottle
from core.errors import ApplicationError, ErrorCode
from patients import sync
from patients.api.views.base import OwnRecordApi


class SyncApi(OwnRecordApi):
    throttle_classes = [UserRateThrottle, ScopedRateThrottle]
    throttle_scope = "sync"

    def schema_version(self, request: Request, body: dict[str, Any] | None = None) -> None:
        version = request.headers.get("X-Schema-Version") or (body or {}).get("schema_version")
        version = version if version is not None else request.query_params.get("schema_version")
        sync.schema_version_check(version)


class SyncPushApi(SyncApi):
    class InputSerializer(StrictSerializer):
        class MutationSerializer(StrictSerializer):
            mutation_id = serializers.IntegerField(min_value=1)
            table = serializers.ChoiceField(choices=sync.TABLES)
            id = serializers.UUIDField()
            op = serializers.ChoiceField(choices=["upsert", "delete"])
            base_version = serializers.IntegerField(
                min_value=0, required=False, allow_null=True, default=None
            )
            # The wire name `fields` clashes with Serializer.fields in the stubs only: DRF's
            # metaclass moves declared fields off the class, so nothing is shadowed at runtime.
            fields = serializers.DictField(required=False, default=dict)  # type: ignore[assignment]

        client_id = serializers.UUIDField()
        schema_version = serializers.IntegerField(required=False)
        mutations = MutationSerializer(many=True, allow_empty=True)

        def validate_mutations(self, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
            ids = [m["mutation_id"] for m in value]
            if ids != sorted(ids) or len(set(ids)) != len(ids):
                raise serializers.ValidationError("Mutation ids must be strictly ascending.")
            return value

    class OutputSerializer(serializers.Serializer[Any]):
        last_mutation_id = serializers.IntegerField()
        results = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer},
        parameters=[OpenApiParameter("X-Schema-Version", int, location=OpenApiParameter.HEADER)],
    )
    def post(self, request: Request) -> Response:
        """Apply a device's queued mutations: per-mutation status applied | merged | conflict |
        rejected | duplicate; 409 `mutation_gap` (nothing applied) if ids skip; 413 above 500."""
        raw = request.data if isinstance(request.data, dict) else {}
        if isinstance(raw.get("mutations"), list) and len(raw["mutations"]) > sync.MAX_BATCH:
            raise ApplicationError(
                code=ErrorCode.BATCH_TOO_LARGE,
                status_code=413,
                detail=f"At most {sync.MAX_BATCH} mutations per push.",
            )
        self.schema_version(request, raw)
        data = self.validated(self.InputSerializer, request.data)
        result = sync.sync_push(
            patient=self.patient(request),
            user_id=request_user(request).pk,
            client_id=data["client_id"],
            mutations=data["mutations"],
            late_days=self.late_days(request),
        )
        return Response({"last_mutation_id": result.last_mutation_id, "results": result.results})


class SyncPullApi(SyncApi):
    atomic_requests = False  # its own REPEATABLE READ transaction

    class FilterSerializer(StrictSerializer):
        cursor = serializers.CharField(required=False, max_length=2000)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=sync.MAX_PULL, default=500)
        client_id = serializers.UUIDField(required=False)
        schema_version = serializers.IntegerField(required=False)

    class OutputSerializer(serializers.Serializer[Any]):
        changes = serializers.DictField()
        cursor = serializers.CharField()
        has_more = serializers.BooleanField()
        last_mutation_id = serializers.IntegerField()

    @extend_schema(
        parameters=[
            OpenApiParameter("cursor", str),
            OpenApiParameter("limit", int),
            OpenApiParameter("client_id", str),
            OpenApiParameter("schema_version", int),
            OpenApiParameter("X-Schema-Version", int, location=OpenApiParameter.HEADER),
        ],
        responses={200: OutputSerializer},
    )
    def get(self, request: Request) -> Response:
        """Changes since the cursor (omit it for a full download), `{table: {upserted, deleted}}`."""
        filters = self.query(self.FilterSerializer, request)
        self.schema_version(request, filters)
        result = sync.sync_pull(
            patient=self.patient(request),
            client_id=filters.get("client_id"),
            cursor=filters.get("cursor"),
            limit=filters["limit"],
        )
        body = {
            "changes": result.changes,
            "cursor": result.cursor,
            "has_more": result.has_more,
            "last_mutation_id": result.last_mutation_id,
        }
        return Response(body)
