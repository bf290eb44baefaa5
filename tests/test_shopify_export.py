"""Shopify product CSV export: the rows a Shopify export sent us come back, variants and order
kept, byte-for-byte but for the approved copy in Body (HTML), SEO Title and SEO Description, so
the file can be imported straight back into Shopify."""

import csv
import io
from pathlib import Path

import pytest
from django.urls import reverse

from editorial import services
from editorial.exporters import copy_export, html_paragraphs
from editorial.importers import products_import
from editorial.models import Draft, ExportBatch, Product
from tests.factories import ProductFactory, draft_with_text, kind

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "demo" / "shopify_sample.csv"
COPY_COLUMNS = {"Body (HTML)", "SEO Title", "SEO Description"}


def approve(product, code, text, *, editor, reviewer):
    """A generated draft of ``product`` whose text an editor saved, submitted and a reviewer
    approved, all through the services."""
    draft = draft_with_text("Model text.", product=product, kind=kind(code))
    services.revision_save(draft=draft, user=editor, text=text,
                           base_revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    services.draft_submit(draft=draft, user=editor)
    draft.refresh_from_db()
    services.draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    return draft


def shopify_export(**kwargs):
    stream = io.StringIO(newline="")
    batch = copy_export(stream=stream, fmt="shopify", **kwargs)
    return batch, stream.getvalue()


def rows_of(text):
    return list(csv.reader(io.StringIO(text, newline="")))


def import_csv(text, filename="products_export.csv"):
    report = products_import(data=text.encode("utf-8"), filename=filename, fmt="shopify")
    assert not report.errors, report.errors
    return report


def test_round_trip_gives_back_every_row_and_column_but_the_approved_copy(editor, reviewer):
    source = SAMPLE.read_text(encoding="utf-8")
    import_csv(source, filename=SAMPLE.name)
    products = list(Product.objects.order_by("sku"))
    assert len(products) == 6
    copy = {}
    for product in products:
        copy[product.sku] = {"Body (HTML)": f"New copy for {product.sku}.\nSecond paragraph."}
        approve(product, "description", copy[product.sku]["Body (HTML)"], editor=editor,
                reviewer=reviewer)
    seo = products[0]
    approve(seo, "seo_title", "Merino crew | Fernway", editor=editor, reviewer=reviewer)
    approve(seo, "seo_description", "Soft merino.\nWarm and breathable.", editor=editor,
            reviewer=reviewer)

    batch, out = shopify_export(user=reviewer)

    original, exported = rows_of(source), rows_of(out)
    header = original[0]
    assert exported[0] == header
    assert len(exported) == len(original)
    # Same rows, variants included, in the order the shop sent them (products by handle).
    handle = header.index("Handle")
    by_handle = {}
    for row in original[1:]:
        by_handle.setdefault(row[handle], []).append(row)
    expected_order = [row for sku in sorted(by_handle) for row in by_handle[sku]]
    assert [row[handle] for row in exported[1:]] == [row[handle] for row in expected_order]
    first_rows = set()
    for number, (sent, got) in enumerate(zip(expected_order, exported[1:], strict=True)):
        is_first = number == 0 or expected_order[number - 1][handle] != sent[handle]
        for column, (before, after) in enumerate(zip(sent, got, strict=True)):
            if is_first and header[column] in COPY_COLUMNS:
                continue
            assert after == before, (sent[handle], header[column])
        if is_first:
            first_rows.add(sent[handle])
            body = got[header.index("Body (HTML)")]
            assert body == (f"<p>New copy for {sent[handle]}.</p><p>Second paragraph.</p>")
    assert first_rows == set(by_handle)
    crew = next(row for row in exported if row[handle] == seo.sku)
    assert crew[header.index("SEO Title")] == "Merino crew | Fernway"
    assert crew[header.index("SEO Description")] == "Soft merino. Warm and breathable."
    # Products without approved SEO copy keep the shop's own.
    mugs = next(row for row in exported if row[handle] == "vik-stoneware-mugs-set-of-2")
    mugs_sent = next(row for row in original if row[handle] == "vik-stoneware-mugs-set-of-2")
    assert mugs[header.index("SEO Title")] == mugs_sent[header.index("SEO Title")]

    assert batch.count == 8 and batch.format == ExportBatch.Format.SHOPIFY
    assert Draft.objects.filter(state=Draft.State.EXPORTED).count() == 8
    for draft in Draft.objects.all():
        assert draft.exported_revision_id == draft.approved_revision_id

    # And it imports straight back: same products, the new copy as their text.
    report = import_csv(out)
    assert report.created == 0 and report.updated == 6
    crew_product = Product.objects.get(sku=seo.sku)
    assert crew_product.source_text == f"New copy for {seo.sku}.\nSecond paragraph."
    assert crew_product.raw["rows"] == [row for row in exported[1:] if row[handle] == seo.sku]


def test_html_special_characters_in_copy_are_escaped_in_body_html(editor, reviewer):
    import_csv(SAMPLE.read_text(encoding="utf-8"))
    product = Product.objects.get(sku="vik-stoneware-mugs-set-of-2")
    approve(product, "description",
            'Tom & Jerry\'s <script>alert("x")</script> mug\n\n<b>Bold</b> claim > 2 < 3',
            editor=editor, reviewer=reviewer)

    _, out = shopify_export()

    header, *rows = rows_of(out)
    body = rows[0][header.index("Body (HTML)")]
    assert body == ("<p>Tom &amp; Jerry's &lt;script&gt;alert(\"x\")&lt;/script&gt; mug</p>"
                    "<p>&lt;b&gt;Bold&lt;/b&gt; claim &gt; 2 &lt; 3</p>")
    assert "<script" not in out and "<b>" not in out
    # Variant rows are untouched: Shopify reads the product's body from its first row.
    assert [row[header.index("Body (HTML)")] for row in rows[1:]] == [""]


def test_html_paragraphs_drop_blank_lines():
    assert html_paragraphs("One\r\n\r\n  Two  \n") == "<p>One</p><p>Two</p>"
    assert html_paragraphs("") == ""


SMALL = (
    "Handle,Title,Body (HTML),Tags,Variant SKU,Variant Inventory Qty,SEO Title\n"
    "kettle,Kettle,<p>Old</p>,@home,K-1,-3,Old SEO\n"
    "kettle,,,,K-2,+4,\n"
)


def test_formula_cells_are_neutralised_but_plain_numbers_are_kept(editor, reviewer):
    import_csv(SMALL)
    product = Product.objects.get(sku="kettle")
    approve(product, "seo_title", '=HYPERLINK("http://evil")', editor=editor, reviewer=reviewer)

    _, guarded = shopify_export()
    _, raw = shopify_export(formula_guard=False)

    header, first, second = rows_of(guarded)
    assert first[header.index("SEO Title")] == "'=HYPERLINK(\"http://evil\")"
    assert first[header.index("Tags")] == "'@home"
    # A negative stock level is a number, not a formula: Shopify must get it unchanged.
    assert first[header.index("Variant Inventory Qty")] == "-3"
    assert second[header.index("Variant Inventory Qty")] == "+4"
    # Only the approved kinds change: the body stays as imported.
    assert first[header.index("Body (HTML)")] == "<p>Old</p>"
    header, first, _ = rows_of(raw)
    assert first[header.index("SEO Title")] == '=HYPERLINK("http://evil")'
    assert first[header.index("Tags")] == "@home"


def test_bom_is_optional_and_the_rest_is_utf8(editor, reviewer):
    import_csv(SAMPLE.read_text(encoding="utf-8"))
    approve(Product.objects.get(sku="mianli-gauze-pajama-set"), "description",
            "纯棉睡衣，柔软透气。", editor=editor, reviewer=reviewer)

    _, with_bom = shopify_export(bom=True)
    _, without = shopify_export()

    assert with_bom.startswith("\ufeffHandle,") and without.startswith("Handle,")
    assert "<p>纯棉睡衣，柔软透气。</p>" in without
    assert "雾蓝" in without


def test_only_shopify_products_with_approved_shopify_copy_are_written(editor, reviewer):
    import_csv(SAMPLE.read_text(encoding="utf-8"))
    approve(Product.objects.get(sku="drizzle-packable-rain-jacket"), "slogan", "Stay dry.",
            editor=editor, reviewer=reviewer)
    approve(ProductFactory(), "description", "Not from Shopify.", editor=editor,
            reviewer=reviewer)

    batch, out = shopify_export()

    assert rows_of(out) == [] and batch.count == 0
    assert not Draft.objects.filter(state=Draft.State.EXPORTED).exists()


def test_changed_only_writes_products_whose_copy_changed_with_all_their_copy(editor, reviewer):
    import_csv(SAMPLE.read_text(encoding="utf-8"))
    jacket = Product.objects.get(sku="drizzle-packable-rain-jacket")
    mugs = Product.objects.get(sku="vik-stoneware-mugs-set-of-2")
    jacket_body = approve(jacket, "description", "Jacket body.", editor=editor,
                          reviewer=reviewer)
    approve(jacket, "seo_title", "Jacket SEO", editor=editor, reviewer=reviewer)
    approve(mugs, "description", "Mugs body.", editor=editor, reviewer=reviewer)
    shopify_export(changed_only=True)
    assert shopify_export(changed_only=True)[0].count == 0

    # The jacket's SEO title is edited and approved again; its body is unchanged.
    seo = Draft.objects.get(product=jacket, kind="seo_title")
    services.revision_save(draft=seo, user=editor, text="Jacket SEO v2",
                           base_revision_id=seo.current_revision_id)
    seo.refresh_from_db()
    services.draft_submit(draft=seo, user=editor)
    services.draft_approve(draft=seo, user=reviewer, revision_id=seo.current_revision_id)

    batch, out = shopify_export(changed_only=True)

    header, *rows = rows_of(out)
    assert {row[0] for row in rows} == {jacket.sku}
    assert len(rows) == 3  # the jacket's three variant rows
    assert rows[0][header.index("SEO Title")] == "Jacket SEO v2"
    # The unchanged body goes along: Shopify would otherwise keep the old imported one.
    assert rows[0][header.index("Body (HTML)")] == "<p>Jacket body.</p>"
    assert batch.count == 2 and batch.changed_only
    seo.refresh_from_db()
    jacket_body.refresh_from_db()
    assert seo.exported_revision_id == seo.approved_revision_id
    assert seo.exported_revision.text == "Jacket SEO v2"
    assert jacket_body.state == Draft.State.EXPORTED


def test_products_from_files_with_different_columns_are_refused(editor, reviewer):
    import_csv(SMALL)
    import_csv("Handle,Title,Body (HTML)\nteapot,Teapot,<p>Old</p>\n")
    for sku in ("kettle", "teapot"):
        approve(Product.objects.get(sku=sku), "description", f"{sku} copy", editor=editor,
                reviewer=reviewer)

    with pytest.raises(services.WorkflowError, match="different columns"):
        shopify_export()

    assert not ExportBatch.objects.exists()
    assert not Draft.objects.filter(state=Draft.State.EXPORTED).exists()


def test_a_kind_without_a_shopify_column_is_refused():
    with pytest.raises(services.WorkflowError, match="no Shopify column"):
        shopify_export(filters={"kind": "slogan"})


def test_the_export_page_downloads_shopify_csv_with_a_bom(client, editor, reviewer):
    import_csv(SAMPLE.read_text(encoding="utf-8"))
    approve(Product.objects.get(sku="vik-stoneware-mugs-set-of-2"), "description", "Mugs.",
            editor=editor, reviewer=reviewer)
    client.force_login(reviewer)

    response = client.post(reverse("copy_export"), {"format": "shopify", "bom": "on"})

    assert response.status_code == 200
    assert response.streaming
    assert 'filename="copydesk-shopify-' in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeffHandle,Title,Body (HTML),")
    assert "<p>Mugs.</p>" in body
    batch = ExportBatch.objects.get()
    assert (batch.format, batch.status, batch.count, batch.bom) == ("shopify", "done", 1, True)
