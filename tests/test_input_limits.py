"""The catalog upload limit holds while the body arrives: a request that says it is too large is
answered before its body is read, a file that passes the limit is stopped at the limit and
never stored, and the editor gets the import page saying the limit and the file's size."""

import io
import re

import pytest
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from editorial import uploads
from editorial.forms import ImportForm
from editorial.models import AuditEvent, Product

pytestmark = pytest.mark.django_db

LIMIT = 100_000  # 97.7 KB


class CountingInput(io.BytesIO):
    """``wsgi.input`` that counts the bytes the server side read from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size=-1):
        line = super().readline(size)
        self.bytes_read += len(line)
        return line


def csv_of(size: int) -> bytes:
    """A valid catalog CSV of exactly ``size`` bytes: products BIG-0, BIG-1 ... with titles
    of up to 400 characters (the last one fills up)."""
    rows = [b"sku,title\n"]
    left = size - len(rows[0])
    number = 0
    while left:
        prefix = b"BIG-%d," % number
        rest = left - len(prefix) - 1
        # The last row takes what is left; the one before leaves it enough for a row.
        title = rest if rest <= 400 else 250 if rest < 660 else 400
        rows.append(prefix + b"x" * title + b"\n")
        left -= len(rows[-1])
        number += 1
    return b"".join(rows)


def post_import(client, content: bytes, *, filename="catalog.csv", content_length=None,
                extra_fields=None):
    body = encode_multipart(BOUNDARY, {"format": "auto", **(extra_fields or {}),
                                       "file": _named(content, filename)})
    stream = CountingInput(body)
    response = client.generic(
        "POST", reverse("catalog_import"), body, content_type=MULTIPART_CONTENT,
        CONTENT_LENGTH=str(len(body) if content_length is None else content_length),
        **{"wsgi.input": stream},
    )
    return response, stream


def _named(content: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="text/csv")


def page_text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode().replace("\xa0", " "))


@pytest.fixture
def limit(settings):
    settings.COPYDESK_MAX_IMPORT_BYTES = LIMIT
    return LIMIT


def test_a_request_that_says_it_is_too_large_is_answered_before_its_body_is_read(
    client, editor, limit
):
    client.force_login(editor)
    # The header claims 10 GB; the server must not start reading to find out.
    response, stream = post_import(client, csv_of(1000), content_length=10 * 1024 ** 3)

    assert response.status_code == 413
    assert stream.bytes_read == 0
    text = page_text(response)
    assert "This upload is about 10.0 GB; files of up to 97.7 KB can be imported." in text
    assert "Nothing was imported" in text
    assert 'enctype="multipart/form-data"' in text  # the import form, to try again
    assert not Product.objects.exists()


def test_a_real_body_over_the_limit_is_refused_without_reading_it(client, editor, limit):
    client.force_login(editor)
    response, stream = post_import(client, csv_of(5 * LIMIT))

    assert response.status_code == 413
    assert stream.bytes_read == 0
    assert "This upload is about 488.5 KB" in page_text(response)
    assert not Product.objects.exists()


def test_a_file_passing_the_limit_is_stopped_there_and_nothing_of_it_is_stored(
    client, editor, limit, settings, monkeypatch, tmp_path
):
    """The declared length passes (the allowance for form fields is made huge here), so the
    upload handler is what stops it: at the chunk that passes the limit, before the temporary
    file handler gets that chunk, which then deletes what it had."""
    monkeypatch.setattr(uploads, "FORM_OVERHEAD_BYTES", 100 * LIMIT)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000  # spool to a temporary file ...
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)  # ... here
    client.force_login(editor)
    size = 20 * LIMIT
    response, _stream = post_import(client, csv_of(size), filename="huge catalog.csv")

    assert response.status_code == 413
    handler = response.wsgi_request.upload_handlers[0]
    assert isinstance(handler, uploads.SizeLimitUploadHandler)
    assert LIMIT < handler.received <= LIMIT + handler.chunk_size < size
    assert not response.wsgi_request.FILES
    assert list(tmp_path.iterdir()) == []
    text = page_text(response)
    assert "huge catalog.csv is about 1.9 MB; files of up to 97.7 KB can be imported." in text
    assert not Product.objects.exists()
    assert not AuditEvent.objects.filter(verb="catalog.import").exists()


def test_a_file_of_exactly_the_limit_imports_and_one_byte_more_is_refused(
    client, editor, limit
):
    client.force_login(editor)
    response, stream = post_import(client, csv_of(LIMIT))
    assert response.status_code == 200
    assert "Imported 245, updated 0, failed 0." in page_text(response)
    assert Product.objects.count() == 245

    response, _stream = post_import(client, csv_of(LIMIT + 1), filename="one-more.csv")
    assert response.status_code == 413
    assert "one-more.csv is about" in page_text(response)


def test_a_normal_import_still_checks_csrf_and_imports(editor):
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    page = client.get(reverse("catalog_import"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"',
                      page.content.decode()).group(1)
    data = "sku,title\nTEA-1,绿茶\nTEA-2,Green tea\n".encode()

    forged, _ = post_import(client, data)
    assert forged.status_code == 403
    assert not Product.objects.exists()

    response, _ = post_import(client, data, extra_fields={"csrfmiddlewaretoken": token})
    assert response.status_code == 200
    assert "Imported 2, updated 0, failed 0." in page_text(response)
    assert Product.objects.get(sku="TEA-1").locale == "zh-hans"


def test_the_form_refuses_a_file_over_the_limit_naming_its_size(limit):
    from django.core.files.uploadedfile import SimpleUploadedFile

    form = ImportForm({"format": "auto"},
                      {"file": SimpleUploadedFile("big.csv", csv_of(2 * LIMIT))})
    assert not form.is_valid()
    assert form.errors["file"] == [
        "big.csv is about 195.3\xa0KB; files of up to 97.7\xa0KB can be imported. Nothing was "
        "imported: split it into smaller files."]


def test_the_default_limit_is_50_mb_and_form_fields_stay_bounded(settings):
    from copydesk import settings as project_settings

    assert project_settings.COPYDESK_MAX_IMPORT_BYTES == 50 * 1024 * 1024
    assert project_settings.DATA_UPLOAD_MAX_MEMORY_SIZE <= 10 * 1024 * 1024
    assert project_settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= 10 * 1024 * 1024


def test_the_import_page_says_the_limit_before_anything_is_uploaded(client, editor, limit):
    client.force_login(editor)
    html = client.get(reverse("catalog_import")).content.decode().replace("\xa0", " ")
    assert "At most 97.7 KB." in html
    # What copydesk.js shows the moment a larger file is chosen.
    assert 'data-max-bytes="100000"' in html
    assert ('data-too-large="{file} is about {size}; files of up to 97.7 KB can be imported.'
            in html)
