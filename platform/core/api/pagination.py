from __future__ import annotations

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Opaque cursor paging for growing collections; stable under concurrent inserts."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
    ordering = ("-created_at", "-id")


class PageNumberPagination(pagination.PageNumberPagination):
    """Page numbers for small, bounded collections."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
