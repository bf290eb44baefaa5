"""Pagination: page numbers for the lists, a sequence cursor for the copy feed."""

import base64
import binascii
import json
from datetime import datetime

from django.utils.translation import gettext_lazy as _
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


class PageNumberPagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def cursor_encode(*, seq: int, approved_at: datetime | None) -> str:
    data = {"s": seq, "t": approved_at.isoformat() if approved_at else None}
    raw = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
    return raw.decode().rstrip("=")


def cursor_decode(value: str) -> int:
    """The feed position in an opaque cursor (400 for one this server did not make)."""
    try:
        padded = value + "=" * (-len(value) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        seq = data["s"]
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ValueError
        return seq
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
        raise ValidationError({"cursor": [_("Invalid cursor.")]}) from None


class FeedCursorPagination(pagination.BasePagination):
    """Approvals in commit order (``CopyFeedEntry.seq``). Every response carries a ``cursor``
    (and a ``next`` link) — also the last page, so a shop polls again from where it stopped
    and sees each approval exactly once. The cursor encodes the sequence number and the
    approval time of the last entry; only the sequence number is used to continue."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = self.page_size
        raw_size = request.query_params.get(self.page_size_query_param)
        if raw_size:
            try:
                size = max(1, min(int(raw_size), self.max_page_size))
            except ValueError:
                raise ValidationError(
                    {"page_size": [_("A whole number is required.")]}
                ) from None
        self.position = 0
        self.position_at = None
        raw_cursor = request.query_params.get(self.cursor_query_param)
        if raw_cursor:
            self.position = cursor_decode(raw_cursor)
            queryset = queryset.filter(seq__gt=self.position)
        rows = list(queryset.order_by("seq")[: size + 1])
        self.has_more = len(rows) > size
        rows = rows[:size]
        if rows:
            self.position = rows[-1].seq
            self.position_at = rows[-1].approved_at
        return rows

    def get_cursor(self) -> str:
        return cursor_encode(seq=self.position, approved_at=self.position_at)

    def get_paginated_response(self, data):
        cursor = self.get_cursor()
        url = replace_query_param(self.request.build_absolute_uri(), self.cursor_query_param,
                                  cursor)
        return Response({"cursor": cursor, "next": url, "has_more": self.has_more,
                         "results": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["cursor", "next", "has_more", "results"],
            "properties": {
                "cursor": {"type": "string",
                           "description": "Pass as ?cursor= to continue after this page."},
                "next": {"type": "string", "format": "uri"},
                "has_more": {"type": "boolean"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {"name": self.cursor_query_param, "required": False, "in": "query",
             "description": "The cursor of the previous response.",
             "schema": {"type": "string"}},
            {"name": self.page_size_query_param, "required": False, "in": "query",
             "description": f"Entries per page (at most {self.max_page_size}).",
             "schema": {"type": "integer", "minimum": 1}},
        ]
