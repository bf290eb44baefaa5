"""Property (hypothesis): any Unicode text — Chinese, emoji, quotes, commas, newlines — survives
import → approval → export unchanged, in CSV and JSON Lines; and every cell a Shopify file sent
comes back byte for byte in the Shopify export, formula guard on, whatever it starts with."""

import csv
import io
import json

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from editorial import services
from editorial.catalog import products_import
from editorial.exporters import copy_export
from editorial.models import Draft, Product
from tests.factories import UserFactory, kind

PIECES = st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
    st.sampled_from(list("茶壶，。“”\"',;\n") + ["🍵", "👍🏽", "e\u0301", "\r\n", "=1+1", "@x"]),
)
# The importer trims cells (spreadsheets add stray spaces); inner text is kept as it is.
TEXT = st.lists(PIECES, min_size=1, max_size=40).map("".join).map(str.strip).filter(bool)


@pytest.fixture
def people(db):
    return UserFactory(roles=["Editor"]), UserFactory(roles=["Reviewer"])


def pin_approval(draft, revision, reviewer):
    """Approved as the review service records it. Random text trips the content checks (wrong
    language, a URL) that refuse an approval; what is tested here is what the export does with
    approved text, whatever it is."""
    Draft.objects.filter(pk=draft.pk).update(
        state=Draft.State.APPROVED, approved_revision=revision, approved_by=reviewer,
        approved_at=timezone.now())


@pytest.mark.django_db
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(title=TEXT, copy=TEXT)
def test_arbitrary_text_round_trips_through_import_and_export(people, title, copy):
    editor, reviewer = people
    Product.objects.all().delete()
    source = io.StringIO()
    csv.writer(source).writerows([["sku", "title"], ["RT-1", title]])
    report = products_import(data=source.getvalue().encode("utf-8"), filename="catalog.csv")
    assert not report.errors, report.errors
    product = Product.objects.get(sku="RT-1")
    assert product.title == title
    draft = Draft.objects.create(product=product, kind=kind("description"), state="ready")
    revision = services.revision_save(draft=draft, user=editor, text=copy,
                                      base_revision_id=None)
    pin_approval(draft, revision, reviewer)

    as_csv, as_jsonl = io.StringIO(), io.StringIO()
    copy_export(stream=as_csv, fmt="csv", formula_guard=False)
    copy_export(stream=as_jsonl, fmt="jsonl")
    (row,) = list(csv.DictReader(io.StringIO(as_csv.getvalue())))
    (record,) = [json.loads(line) for line in as_jsonl.getvalue().splitlines() if line]
    # A revision stores browser line endings (CRLF from a textarea) as LF.
    stored = copy.replace("\r\n", "\n")
    assert revision.text == stored
    for exported in (row, record):
        assert (exported["sku"], exported["title"], exported["text"]) == ("RT-1", title, stored)


CELL = st.lists(PIECES, max_size=12).map("".join)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tags=CELL, barcode=CELL, seo=CELL, variant=CELL)
def test_every_cell_a_shopify_file_sent_comes_back_byte_for_byte(people, tags, barcode, seo,
                                                                  variant):
    editor, reviewer = people
    Product.objects.all().delete()
    header = ["Handle", "Title", "Body (HTML)", "Tags", "Variant Barcode", "SEO Title"]
    sent = [["rt-kettle", "Kettle", "<p>Old</p>", tags, barcode, seo],
            ["rt-kettle", "", "", "", variant, ""]]
    source = io.StringIO(newline="")
    csv.writer(source).writerows([header, *sent])
    report = products_import(data=source.getvalue().encode("utf-8"), filename="shop.csv",
                             fmt="shopify")
    assert not report.errors, report.errors
    draft = Draft.objects.create(product=Product.objects.get(sku="rt-kettle"),
                                 kind=kind("description"), state="ready")
    revision = services.revision_save(draft=draft, user=editor, text="- New copy",
                                      base_revision_id=None)
    pin_approval(draft, revision, reviewer)

    out = io.StringIO(newline="")
    copy_export(stream=out, fmt="shopify")

    got = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert got[0] == header
    assert got[1] == [*sent[0][:2], "<p>- New copy</p>", *sent[0][3:]]
    assert got[2] == sent[1]
