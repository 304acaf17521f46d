"""The API's pagination: limit/offset, with both bounded so that no query value can overflow
the database's integers (a huge `limit` or `offset` is clamped, not a server error)."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 500
MAX_OFFSET = 2**31 - 1  # far past any list here; PostgreSQL's OFFSET is a bigint


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def get_offset(self, request) -> int:
        return min(super().get_offset(request), MAX_OFFSET)
