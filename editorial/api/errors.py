"""The one place where a service's refusal becomes an API answer (``EXCEPTION_HANDLER``).

- ``PermissionDenied`` (``policies.require``): 403 with the service's own, translated reason
  (DRF's default handler would answer with its generic text).
- ``RevisionConflict`` / ``StaleRevision``: 409, ``code: stale_revision``, with the revision
  now current (and, for a save, the revision the text was kept as).
- ``BlockingFlags``: 409, ``code: blocking_flags``, with the flags.
- Any other ``WorkflowError``: 409, ``code: invalid_state`` — or, on a view whose refusals are
  about the request's input (``refusal_is_bad_request = True``), 400 like a validation error.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .. import diffing
from ..exceptions import BlockingFlags, RevisionConflict, StaleRevision, WorkflowError
from . import serializers as s


def conflict(detail: str, code: str, **revisions) -> Response:
    body = {"detail": detail, "code": code}
    body.update({name: s.RevisionSerializer(rev).data for name, rev in revisions.items()
                 if rev is not None})
    return Response(body, status=status.HTTP_409_CONFLICT)


def _refusal(exc: WorkflowError) -> Response:
    if isinstance(exc, RevisionConflict):
        return conflict(str(exc), "stale_revision", current_revision=exc.current,
                        your_revision=exc.revision)
    if isinstance(exc, StaleRevision):
        return conflict(str(exc), "stale_revision", current_revision=exc.current)
    if isinstance(exc, BlockingFlags):
        response = conflict(str(exc), "blocking_flags")
        response.data["flags"] = [
            {"code": flag.get("code", ""), "severity": flag.get("severity", ""),
             "message": diffing.flag_message(flag)} for flag in exc.flags
        ]
        return response
    return conflict(str(exc), "invalid_state")


def exception_handler(exc, context):
    view = context.get("view")
    if isinstance(exc, WorkflowError):
        if getattr(view, "refusal_is_bad_request", False):
            exc = exceptions.ValidationError({"non_field_errors": [str(exc)]})
        else:
            return _refusal(exc)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    return drf_exception_handler(exc, context)
