"""API base classes: thin one-operation views with nested, strict serializers."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

UNKNOWN_FIELD = "Unknown field."


class StrictSerializer(serializers.Serializer[Any]):
    """An input serializer that refuses fields it does not declare, or declares read-only
    (DESIGN.md §8): nothing a client sends is silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                raise serializers.ValidationError({name: [UNKNOWN_FIELD] for name in unknown})
        return super().to_internal_value(data)


class BaseApi(APIView):
    """One operation per view. Nested serializers get unique OpenAPI component names.

    drf-spectacular names components after the serializer class, so every nested
    `InputSerializer` would collapse into one component (HackSoft Django-Styleguide #134).

    `atomic_requests = False` runs the view outside the request transaction (its services open
    their own): sign-in paths, whose failed-attempt records must survive an error response.
    """

    atomic_requests = True

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        view = super().as_view(**initkwargs)
        return view if cls.atomic_requests else transaction.non_atomic_requests(view)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        view_name = cls.__name__.removesuffix("Api")
        for attr, value in list(vars(cls).items()):
            nested_here = isinstance(value, type) and value.__qualname__.startswith(f"{cls.__qualname__}.")
            if nested_here and issubclass(value, serializers.BaseSerializer):
                value.__name__ = f"{view_name}{attr}"

    @staticmethod
    def validated(serializer_class: type[serializers.Serializer[Any]], data: Any, **kwargs: Any) -> Any:
        serializer = serializer_class(data=data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def query(self, serializer_class: type[serializers.Serializer[Any]], request: Request) -> Any:
        return self.validated(serializer_class, request.query_params)
