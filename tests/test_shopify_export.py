"""Shopify product CSV export: the rows a Shopify export sent us come back, variants and order
kept, byte-for-byte but for the approved copy in Body (HTML), SEO Title and SEO Description, so
the file can be imported straight back into Shopify."""

import csv
import io
import os
import re
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from editorial import exporters, services
from editorial.catalog import products_import
from editorial.exporters import ArchiveRequired, copy_export, html_paragraphs
from editorial.models import CatalogImport, Draft, ExportBatch, Product
from tests import factories
from tests.factories import ProductFactory, draft_with_text, kind

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "demo" / "shopify_sample.csv"
COPY_COLUMNS = {"Body (HTML)", "SEO Title", "SEO Description"}


def approve(product, code, text, *, editor, reviewer):
    """A generated draft of ``product`` whose text an editor saved, submitted and a reviewer
    approved, all through the services."""
    return factories.approve(draft_with_text("Model text.", product=product, kind=kind(code)),
                             editor=editor, reviewer=reviewer, text=text)


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
    for product in products:
        # The content checks refuse English copy for a Chinese product: the body is in the
        # product's language.
        intro = "新文案" if product.locale == "zh-hans" else "New copy for"
        approve(product, "description", f"{intro} {product.sku}.\nSecond paragraph.",
                editor=editor, reviewer=reviewer)
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
            assert body.endswith(f" {sent[handle]}.</p><p>Second paragraph.</p>")
            assert body.startswith(("<p>New copy for ", "<p>新文案 "))
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
    # No tags: HTML in copy is a blocking flag now, so approved copy carries only & < > " '.
    approve(product, "description",
            'Tom & Jerry\'s "sturdy" mug\n\nBold < claim > 2 < 3 & more',
            editor=editor, reviewer=reviewer)

    _, out = shopify_export()

    header, *rows = rows_of(out)
    body = rows[0][header.index("Body (HTML)")]
    assert body == ("<p>Tom &amp; Jerry's \"sturdy\" mug</p>"
                    "<p>Bold &lt; claim &gt; 2 &lt; 3 &amp; more</p>")
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


def test_the_formula_guard_changes_the_copy_but_never_the_cells_the_shop_sent(editor,
                                                                             reviewer):
    import_csv(SMALL.replace("@home", '"-sale, @home"'))
    product = Product.objects.get(sku="kettle")
    approve(product, "seo_title", "=HYPERLINK(A1)", editor=editor, reviewer=reviewer)

    _, guarded = shopify_export()
    _, raw = shopify_export(formula_guard=False)

    header, first, second = rows_of(guarded)
    assert first[header.index("SEO Title")] == "'=HYPERLINK(A1)"
    # Shopify's own cells go back byte for byte: its import would keep a quote as text.
    assert first[header.index("Tags")] == "-sale, @home"
    assert first[header.index("Variant Inventory Qty")] == "-3"
    assert second[header.index("Variant Inventory Qty")] == "+4"
    # Only the approved kinds change: the body stays as imported.
    assert first[header.index("Body (HTML)")] == "<p>Old</p>"
    header, first, _ = rows_of(raw)
    assert first[header.index("SEO Title")] == "=HYPERLINK(A1)"
    assert first[header.index("Tags")] == "-sale, @home"


def test_the_export_page_offers_to_turn_the_formula_guard_off(client, editor, reviewer):
    import_csv(SMALL)
    # Not "+50% off": an invented number is a blocking flag now.
    approve(Product.objects.get(sku="kettle"), "seo_title", "+2 kettles for 1", editor=editor,
            reviewer=reviewer)
    client.force_login(reviewer)

    page = client.get(reverse("copy_export")).content.decode()
    guarded = client.post(reverse("copy_export"), {"format": "shopify"})
    plain = client.post(reverse("copy_export"), {"format": "shopify", "no_formula_guard": "on"})

    assert 'name="no_formula_guard"' in page
    assert "Write copy starting with = + - @ as it is" in page
    header, first, _ = rows_of(b"".join(guarded.streaming_content).decode())
    assert first[header.index("SEO Title")] == "'+2 kettles for 1"
    assert first[header.index("Tags")] == "@home"
    header, first, _ = rows_of(b"".join(plain.streaming_content).decode())
    assert first[header.index("SEO Title")] == "+2 kettles for 1"
    assert first[header.index("Tags")] == "@home"
    assert list(ExportBatch.objects.order_by("pk").values_list("formula_guard", flat=True)) == [
        True, False]
    assert "no formula guard" in client.get(reverse("copy_export")).content.decode()


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


def test_products_from_files_with_different_columns_need_a_zip_not_one_csv(editor, reviewer):
    import_csv(SMALL)
    import_csv("Handle,Title,Body (HTML)\nteapot,Teapot,<p>Old</p>\n", filename="teapots.csv")
    for sku in ("kettle", "teapot"):
        approve(Product.objects.get(sku=sku), "description", f"{sku} copy", editor=editor,
                reviewer=reviewer)

    with pytest.raises(ArchiveRequired, match="different columns.*zip.*teapots.csv"):
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


# --- An edit after approval never brings the imported copy back --------------------------------

@pytest.mark.parametrize("changed_only", [False, True])
def test_a_description_edited_after_approval_keeps_its_approved_body_in_later_exports(
        editor, reviewer, changed_only):
    import_csv(SMALL)
    kettle = Product.objects.get(sku="kettle")
    body = approve(kettle, "description", "Approved body.", editor=editor, reviewer=reviewer)
    header, first, _ = rows_of(shopify_export()[1])
    assert first[header.index("Body (HTML)")] == "<p>Approved body.</p>"
    # An editor starts a new version of the description; it is not approved.
    services.revision_save(draft=body, user=editor, text="Unapproved rewrite.",
                           base_revision_id=body.current_revision_id)
    # Something else of the product is approved, so the product goes out again.
    approve(kettle, "seo_title", "Steel kettle", editor=editor, reviewer=reviewer)

    batch, out = shopify_export(changed_only=changed_only)

    header, first, second = rows_of(out)
    assert first[header.index("Body (HTML)")] == "<p>Approved body.</p>"
    assert first[header.index("SEO Title")] == "Steel kettle"
    assert "<p>Old</p>" not in out and "Unapproved rewrite." not in out
    assert second == ["kettle", "", "", "", "K-2", "+4", ""]
    body.refresh_from_db()
    assert body.state == Draft.State.IN_EDIT
    assert body.exported_revision_id == body.approved_revision_id
    # Submitted for review, it still exports the approved text.
    services.draft_submit(draft=body, user=editor)
    header, first, _ = rows_of(shopify_export()[1])
    assert first[header.index("Body (HTML)")] == "<p>Approved body.</p>"


# --- Imports with different columns ------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "import"
HOME = FIXTURES / "shopify_home_and_garden.csv"
JEWELRY = FIXTURES / "shopify_jewelery.csv"


def import_both():
    """Shopify's two sample layouts (46 and 47 columns), one vendor: no brand or locale filter
    tells them apart."""
    import_csv(HOME.read_text(encoding="utf-8"), filename="home-and-garden.csv")
    import_csv(JEWELRY.read_text(encoding="utf-8"), filename="jewelery.csv")
    return (CatalogImport.objects.get(filename="home-and-garden.csv"),
            CatalogImport.objects.get(filename="jewelery.csv"))


def approve_in_both(editor, reviewer):
    for sku in ("clay-plant-pot", "silver-hoop-earrings"):
        approve(Product.objects.get(sku=sku), "description", f"New copy for {sku}.",
                editor=editor, reviewer=reviewer)


def expected_rows(path, copy):
    """The file's rows with ``copy`` ({handle: body}) in the first row of each product."""
    header, *rows = rows_of(path.read_text(encoding="utf-8"))
    seen = set()
    for row in rows:
        if row[0] in copy and row[0] not in seen:
            row[header.index("Body (HTML)")] = f"<p>{copy[row[0]]}</p>"
        seen.add(row[0])
    return [header, *(row for row in rows if row[0] in copy)]


def zip_files(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


def test_each_import_is_recorded_on_the_products_it_sent(editor):
    home, jewelry = import_both()

    assert (home.format, len(home.columns), len(jewelry.columns)) == ("shopify", 46, 47)
    assert {p.sku: p.catalog_import for p in Product.objects.all()} == {
        "clay-plant-pot": home, "linen-cushion-cover": home,
        "silver-hoop-earrings": jewelry, "pearl-pendant": jewelry}
    assert Product.objects.values("brand").distinct().count() == 1  # "Company 123"
    # Sent again unchanged, a product now comes from the newer import, still "unchanged".
    report = products_import(data=HOME.read_bytes(), filename="home-and-garden.csv",
                             fmt="shopify", user=editor)
    again = CatalogImport.objects.order_by("-pk").first()
    assert (report.updated, report.unchanged) == (2, 2)
    assert again.created_by == editor and again != home
    assert set(Product.objects.filter(catalog_import=again).values_list("sku", flat=True)) == {
        "clay-plant-pot", "linen-cushion-cover"}


def test_two_shopify_layouts_export_as_a_zip_with_one_csv_each(editor, reviewer):
    import_both()
    approve_in_both(editor, reviewer)

    stream = io.BytesIO()
    batch = copy_export(stream=stream, fmt="shopify", archive=True)

    files = zip_files(stream.getvalue())
    assert sorted(files) == ["1-home-and-garden.csv", "2-jewelery.csv"]
    assert rows_of(files["1-home-and-garden.csv"]) == expected_rows(
        HOME, {"clay-plant-pot": "New copy for clay-plant-pot."})
    assert rows_of(files["2-jewelery.csv"]) == expected_rows(
        JEWELRY, {"silver-hoop-earrings": "New copy for silver-hoop-earrings."})
    # Cells Shopify sent that look like formulas go back as they came.
    assert "-sale, silver" in rows_of(files["2-jewelery.csv"])[1]
    assert "=Hoops in sterling silver" in rows_of(files["2-jewelery.csv"])[1]
    assert batch.count == 2
    assert Draft.objects.filter(state=Draft.State.EXPORTED).count() == 2


def test_an_export_filtered_by_import_is_one_csv_of_that_file(editor, reviewer):
    _, jewelry = import_both()
    approve_in_both(editor, reviewer)

    batch, out = shopify_export(filters={"import": "jewelery.csv"})

    assert rows_of(out) == expected_rows(
        JEWELRY, {"silver-hoop-earrings": "New copy for silver-hoop-earrings."})
    assert batch.filters == {"import": str(jewelry.pk)} and batch.count == 1


def test_the_command_writes_a_zip_or_one_import_and_says_which(editor, reviewer, tmp_path):
    import_both()
    approve_in_both(editor, reviewer)

    with pytest.raises(CommandError, match=r"different columns.*--out FILE\.zip.*--import"):
        call_command("export_copy", "--format", "shopify", "--out", str(tmp_path / "all.csv"),
                     stdout=io.StringIO())
    assert os.listdir(tmp_path) == []
    call_command("export_copy", "--format", "shopify", "--out", str(tmp_path / "all.zip"),
                 stdout=io.StringIO())
    call_command("export_copy", "--format", "shopify", "--out", str(tmp_path / "home.csv"),
                 "--import", "home-and-garden.csv", stdout=io.StringIO())

    files = zip_files((tmp_path / "all.zip").read_bytes())
    assert sorted(files) == ["1-home-and-garden.csv", "2-jewelery.csv"]
    assert len(rows_of(files["2-jewelery.csv"])[0]) == 47
    assert rows_of((tmp_path / "home.csv").read_text(encoding="utf-8")) == expected_rows(
        HOME, {"clay-plant-pot": "New copy for clay-plant-pot."})


def test_the_export_page_streams_a_zip_or_the_chosen_import(client, editor, reviewer):
    home, _ = import_both()
    approve_in_both(editor, reviewer)
    client.force_login(reviewer)

    page = client.get(reverse("copy_export")).content.decode()
    both = client.post(reverse("copy_export"), {"format": "shopify", "bom": "on"})
    one = client.post(reverse("copy_export"), {"format": "shopify", "catalog_import": home.pk})

    assert 'name="catalog_import"' in page
    assert f'<option value="{home.pk}">#{home.pk} home-and-garden.csv · ' in page
    assert both["Content-Type"] == "application/zip"
    assert re.search(r'filename="copydesk-shopify-[\d-]+\.zip"', both["Content-Disposition"])
    files = zip_files(b"".join(both.streaming_content))
    assert sorted(files) == ["1-home-and-garden.csv", "2-jewelery.csv"]
    assert all(text.startswith("\ufeffHandle,") for text in files.values())
    assert one["Content-Type"].startswith("text/csv")
    assert rows_of(b"".join(one.streaming_content).decode()) == expected_rows(
        HOME, {"clay-plant-pot": "New copy for clay-plant-pot."})
    assert f"import #{home.pk}" in client.get(reverse("copy_export")).content.decode()


def test_a_background_export_of_two_layouts_is_a_zip_file(client, editor, reviewer, tmp_path,
                                                          settings):
    settings.COPYDESK_EXPORT_DIR = tmp_path
    import_both()
    approve_in_both(editor, reviewer)
    batch = exporters.export_batch_create(user=reviewer, fmt="shopify", background=True)

    assert exporters.export_batch_run(batch_id=batch.pk) == 2

    batch.refresh_from_db()
    assert batch.file == f"export-{batch.pk}.zip" and os.listdir(tmp_path) == [batch.file]
    client.force_login(reviewer)
    download = client.get(reverse("export_batch_download", args=[batch.pk]))
    assert download["Content-Type"] == "application/zip"
    assert re.search(r'filename="copydesk-shopify-[\d-]+\.zip"',
                     download["Content-Disposition"])
    files = zip_files(b"".join(download.streaming_content))
    assert rows_of(files["2-jewelery.csv"]) == expected_rows(
        JEWELRY, {"silver-hoop-earrings": "New copy for silver-hoop-earrings."})
    assert '<span class="tag">zip</span>' in client.get(reverse("copy_export")).content.decode()
