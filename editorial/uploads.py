"""Upload size limits that hold while the body arrives, not after Django has stored all of it.

``upload_refusal`` is called by a view before anything reads ``request.POST`` or
``request.FILES`` (so the view is ``csrf_exempt`` and checks CSRF itself afterwards, as Django's
"modifying upload handlers on the fly" documents). It refuses in two steps:

1. a request whose ``Content-Length`` is over the limit (plus room for the other form fields)
   is refused before one byte of its body is read;
2. otherwise the body is parsed with ``SizeLimitUploadHandler`` in front of Django's own
   handlers: it counts each file's bytes and stops the upload the moment one passes the limit,
   before that chunk reaches the memory or temporary-file handler, which then close and drop
   what they had. The refused file is never stored anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

# What a multipart body carries besides the file: boundaries, part headers, the CSRF token and
# the form's short fields. Generous, so a file just under the limit is never refused for them.
FORM_OVERHEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class UploadTooLarge:
    """A refused upload: its size as far as it is known (the request's declared length, a
    little more than the file's) and the limit."""

    size: int
    limit: int
    filename: str = ""


class SizeLimitUploadHandler(FileUploadHandler):
    """Stops the upload once a file passes ``limit`` bytes. Must come first in
    ``request.upload_handlers`` so the chunk that passes the limit is never handed on."""

    def __init__(self, request: HttpRequest, *, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        # Bytes of the current file this handler has seen (tests read it).
        self.received = 0
        self.refused: UploadTooLarge | None = None

    def new_file(self, field_name, file_name, content_type, content_length, charset=None,
                 content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset,
                         content_type_extra)
        self.received = 0
        if content_length is not None and content_length > self.limit:
            self._refuse(content_length)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received = start + len(raw_data)
        if self.received > self.limit:
            self._refuse(max(self.received, declared_length(self.request)))
        return raw_data

    def file_complete(self, file_size: int):
        return None  # the next handler makes the file

    def _refuse(self, size: int) -> None:
        self.refused = UploadTooLarge(size=size, limit=self.limit, filename=self.file_name or "")
        # What is left of the body is at most FORM_OVERHEAD_BYTES (step 1 saw to that), so
        # Django reads and drops it rather than resetting the connection: the browser then
        # shows the page that explains the refusal.
        raise StopUpload(connection_reset=False)


def declared_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def upload_refusal(request: HttpRequest, *, limit: int) -> UploadTooLarge | None:
    """Parse ``request``'s body with no file over ``limit`` bytes; the refusal when there was
    one (nothing of the body is kept then), else None and ``request.POST``/``FILES`` are
    ready."""
    declared = declared_length(request)
    if declared > limit + FORM_OVERHEAD_BYTES:
        return UploadTooLarge(size=declared, limit=limit)
    handler = SizeLimitUploadHandler(request, limit=limit)
    request.upload_handlers.insert(0, handler)
    request.FILES  # noqa: B018 - parses the body now, under the limit
    return handler.refused
