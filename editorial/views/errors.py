"""Refusals as pages: the 403 handler (``handler403``).

An htmx request that is refused swaps nothing (the page keeps the user's text), so the reason
comes back as plain text and ``copydesk.js`` shows it in the page's error line; a full page load
gets the 403 page with the same reason."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseForbidden
from django.views import defaults


def permission_denied(request: HttpRequest, exception: Exception):
    reason = str(exception or "")
    if request.headers.get("HX-Request") and reason:
        return HttpResponseForbidden(reason, content_type="text/plain; charset=utf-8")
    return defaults.permission_denied(request, exception)
