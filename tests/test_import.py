"""Catalog import: generic CSV, Shopify product CSV and JSON Lines, through the service and the
``import_products`` command."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError

from editorial.catalog import (
    CatalogImportError,
    ImportReport,
    RowError,
    html_to_text,
    locale_normalize,
    products_import,
)
from editorial.models import AuditEvent, Brand, Product
from tests.factories import BrandFactory, ProductFactory

FIXTURES = Path(__file__).parent / "fixtures" / "import"
ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"

pytestmark = pytest.mark.django_db


def import_fixture(name: str, **kwargs) -> ImportReport:
    path = FIXTURES / name
    return products_import(data=path.read_bytes(), filename=str(path), **kwargs)


def import_text(text: str, filename: str = "products.csv", **kwargs) -> ImportReport:
    return products_import(data=text.encode("utf-8"), filename=filename, **kwargs)


def run_command(*args, **options) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("import_products", *args, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def errors(report: ImportReport) -> list[str]:
    return [str(error) for error in report.errors]


# --- Generic CSV -------------------------------------------------------------------------------

def test_generic_csv_imports_fields_and_other_columns_as_attributes():
    report = import_fixture("products.csv")

    assert report.summary() == "imported 3, updated 0, failed 0"
    assert report.detected_format == "csv"
    kettle = Product.objects.get(sku="KT-001")
    assert kettle.title == "Fjell Electric Kettle"
    assert kettle.brand.name == "Nordhavn Kitchen"
    assert kettle.category == "kitchen"
    assert kettle.locale == "en"
    assert kettle.source_text == "Boils 1.7 L quickly.\nAuto shut-off and boil-dry protection."
    # Empty cells (Colour) are not attributes; header names keep their spelling.
    assert kettle.attributes == {"Material": "stainless steel", "Capacity": "1.7 L"}
    assert kettle.source_format == "csv"
    assert kettle.raw["columns"][0] == " SKU "
    assert kettle.raw["rows"][0][0] == "KT-001"
    assert Product.objects.get(sku="KT-002").attributes == {
        "Material": "X50CrMoV15", "Colour": "black",
    }
    flask = Product.objects.get(sku="ZH-001")
    assert flask.title == "不锈钢保温杯"
    assert flask.locale == "zh-hans"
    assert flask.brand.name == "山水家居"
    assert flask.attributes["Colour"] == "白色"


def test_generic_csv_raw_keeps_header_and_cells_in_file_order():
    import_text("sku,title,zeta,alpha\nA-1,Alpha, z ,a\n")

    product = Product.objects.get(sku="A-1")
    assert product.raw == {"columns": ["sku", "title", "zeta", "alpha"],
                           "rows": [["A-1", "Alpha", " z ", "a"]]}
    assert list(product.attributes) in (["zeta", "alpha"], ["alpha", "zeta"])
    assert product.attributes == {"zeta": "z", "alpha": "a"}


def test_excel_csv_utf8_with_bom_and_crlf_imports():
    report = import_fixture("excel_bom.csv")

    assert report.summary() == "imported 2, updated 0, failed 0"
    table = Product.objects.get(sku="EX-1")
    assert table.title == "Café Table"
    assert table.attributes == {"colour": "natural"}
    assert table.raw["columns"] == ["sku", "title", "description", "colour"]


def test_semicolon_separated_csv_from_european_excel_imports():
    report = import_text("sku;title;colour\nSEMI-1;Chair, oak;brown\n")

    assert report.failed == 0
    product = Product.objects.get(sku="SEMI-1")
    assert (product.title, product.attributes) == ("Chair, oak", {"colour": "brown"})


def test_missing_required_column_is_refused_naming_file_and_column():
    with pytest.raises(CatalogImportError) as excinfo:
        import_text("sku,name\nA-1,Kettle\n", filename="catalog.csv")

    assert "catalog.csv" in str(excinfo.value)
    assert '"title"' in str(excinfo.value)
    assert not Product.objects.exists()


@pytest.mark.parametrize("data", [b"", b"   \n\n", b"\xef\xbb\xbf\r\n"])
def test_empty_file_is_refused(data):
    with pytest.raises(CatalogImportError, match="empty.csv is empty"):
        products_import(data=data, filename="empty.csv")


def test_header_only_file_imports_nothing():
    assert import_text("sku,title\n").summary() == "imported 0, updated 0, failed 0"


# --- JSON Lines --------------------------------------------------------------------------------

def test_jsonl_imports_with_stringified_attributes_and_original_record():
    report = import_fixture("products.jsonl")

    assert report.summary() == "imported 3, updated 0, failed 0"
    assert report.detected_format == "jsonl"
    socks = Product.objects.get(sku="JL-1")
    assert socks.source_format == "jsonl"
    assert socks.source_text == "Merino socks.\nCushioned sole."
    assert socks.attributes == {
        "material": "merino wool", "pairs": "3", "machine_washable": "true", "sizes": "S, M, L",
    }
    first_line = (FIXTURES / "products.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert socks.raw == {"record": json.loads(first_line)}
    board = Product.objects.get(sku="JL-2")
    assert (board.locale, board.brand.name) == ("zh-hans", "山水家居")
    assert board.attributes == {"材质": "楠竹", "尺寸": "40 × 28 cm"}
    # Keys other than the known fields are attributes too; no brand key means no brand.
    flask = Product.objects.get(sku="JL-3")
    assert flask.attributes == {"capacity": "750 ml", "colour": "forest green"}
    assert flask.brand is None
    assert flask.locale == "en"


def test_malformed_json_lines_are_reported_and_good_lines_import():
    report = import_fixture("bad_lines.jsonl")

    assert report.summary() == "imported 2, updated 0, failed 4"
    assert [error.line for error in report.errors] == [2, 3, 5, 6]
    messages = errors(report)
    assert messages[0].startswith("line 2: malformed JSON")
    assert messages[1] == 'line 3: "attributes" is not an object'
    assert messages[2] == "line 5: the line is not a JSON object"
    assert messages[3].startswith("line 6: malformed JSON") and "NaN" in messages[3]
    assert set(Product.objects.values_list("sku", flat=True)) == {"J-OK-1", "J-OK-2"}


def test_jsonl_field_that_is_not_a_string_is_a_row_error():
    report = import_text('{"sku": "X-1", "title": {"en": "Kettle"}}\n', filename="p.jsonl")

    assert errors(report) == ['line 1: field "title" must be a string']
    assert not Product.objects.exists()


# --- Shopify -----------------------------------------------------------------------------------

def test_shopify_export_becomes_one_product_per_handle_with_variants_folded():
    report = import_fixture("shopify.csv")

    assert report.summary() == "imported 3, updated 0, failed 0"
    assert report.detected_format == "shopify"
    tee = Product.objects.get(sku="summit-tee")
    assert tee.title == "Summit Merino Tee"
    assert tee.brand.name == "Fernway Outfitters"
    assert tee.category == "T-Shirts"
    assert tee.source_format == "shopify"
    assert tee.locale == "en"
    assert tee.attributes == {
        "Size": "S, M, L",
        "Color": "Charcoal, Sand",
        "tags": "merino, hiking, travel",
        "Material": "Merino wool",
    }


def test_shopify_rows_of_one_handle_apart_in_the_file_still_make_one_product():
    text = ("Handle,Title,Body (HTML),Vendor,Option1 Name,Option1 Value\n"
            "cup,青瓷茶杯,,New Vendor,Size,S\n"
            "mug,Mug,,New Vendor,Size,S\n"
            "cup,,,,,M\n"
            "jug,Jug,,,Size,S\n"
            "cup,,,,,L\n")

    report = import_text(text, filename="shop.csv")

    assert report.summary() == "imported 3, updated 0, failed 0"
    cup = Product.objects.get(sku="cup")
    assert cup.attributes == {"Size": "S, M, L"}
    assert [row[0] for row in cup.raw["rows"]] == ["cup", "cup", "cup"]
    # Products are written in the order of their first rows: the brand is the cup's first.
    assert Brand.objects.get(name="New Vendor").locale == "zh-hans"
    assert list(Product.objects.order_by("pk").values_list("sku", flat=True)) == [
        "cup", "mug", "jug"]


@pytest.mark.parametrize("fmt", ["csv", "shopify", "jsonl"])
def test_products_are_written_while_the_file_is_still_being_read(monkeypatch, fmt):
    from editorial.catalog import importing, writer

    read, written_after = [0], []
    parse = importing.PARSERS[fmt]

    def counting(source, filename):
        for record in parse(source, filename):
            read[0] += 1
            yield record

    def write_batch(batch, **kwargs):
        written_after.append(read[0])
        return original(batch, **kwargs)

    original = writer._write_batch
    monkeypatch.setattr(writer, "BATCH_SIZE", 10)
    monkeypatch.setitem(importing.PARSERS, fmt, counting)
    monkeypatch.setattr(writer, "_write_batch", write_batch)
    lines = {
        "csv": ["sku,title"] + [f"S-{n},Product {n}" for n in range(45)],
        "shopify": ["Handle,Title,Body (HTML),Option1 Name,Option1 Value"]
        + [f"s-{n},Product {n},,Size,{size}" for n in range(45) for size in "SM"],
        "jsonl": [json.dumps({"sku": f"S-{n}", "title": f"Product {n}"}) for n in range(45)],
    }[fmt]

    filename = "p.jsonl" if fmt == "jsonl" else "p.csv"
    report = import_text("\n".join(lines) + "\n", filename=filename)

    assert report.summary() == "imported 45, updated 0, failed 0"
    # Each batch of 10 is written as soon as its records are read, before the next ones.
    assert written_after == [10, 20, 30, 40, 45]


def test_a_bad_byte_far_into_a_large_file_refuses_it_before_anything_is_written():
    rows = "".join(f"BIG-{n:06d},Product {n},{'x' * 60}\n" for n in range(20000))
    data = ("sku,title,description\n" + rows).encode() + b"LAST,Caf\xe9,\n"
    assert len(data) > 1.5 * 2**20

    with pytest.raises(CatalogImportError, match=r"byte 0xe9 at line 20002\)"):
        products_import(data=data, filename="big.csv")
    assert not Product.objects.exists()
    assert not Brand.objects.exists()


def test_a_large_gb18030_file_is_read_as_chinese_whatever_slice_a_character_falls_in():
    rows = "".join(f"ZH-{n:05d},青瓷茶杯{n}号,山水家居\n" for n in range(60000))
    data = ("sku,title,brand\n" + rows).encode("gb18030")
    assert len(data) > 2**20

    report = products_import(data=data, filename="zh.csv")

    assert report.encoding == "gb18030" and report.summary() == (
        "imported 60000, updated 0, failed 0")
    assert Product.objects.get(sku="ZH-59999").title == "青瓷茶杯59999号"


def test_shopify_single_variant_products_have_no_placeholder_option():
    import_fixture("shopify.csv")

    flask = Product.objects.get(sku="trail-flask")
    assert flask.attributes == {}
    assert flask.source_text == "Double-walled steel.\nKeeps drinks cold for 24 hours."


def test_shopify_html_body_becomes_plain_lines():
    import_fixture("shopify.csv")

    assert Product.objects.get(sku="summit-tee").source_text.splitlines() == [
        "Built for long days",
        "Light merino wool that breathes & dries fast.",
        "Merino wool, 150 g/m²",
        "Odour-resistant – wear it again",
        "Care: cold wash, dry flat.",
        "Made in Portugal.",
    ]


def test_shopify_raw_rows_are_kept_in_file_order():
    import_fixture("shopify.csv")

    tee = Product.objects.get(sku="summit-tee")
    header = (FIXTURES / "shopify.csv").read_text(encoding="utf-8").splitlines()[0]
    assert tee.raw["columns"] == header.split(",")
    rows = tee.raw["rows"]
    assert len(rows) == 6
    assert [row[14] for row in rows] == [
        "FW-TEE-S-CH", "FW-TEE-M-CH", "FW-TEE-L-CH", "FW-TEE-S-SA", "FW-TEE-M-SA", "",
    ]
    assert rows[0][2].startswith("<h2>Built for long days</h2>")
    assert rows[5][16] == "https://cdn.example.com/tee-3.jpg"
    assert all(len(row) == len(tee.raw["columns"]) for row in rows)


def test_shopify_chinese_product_gets_chinese_locale_and_category_from_type():
    import_fixture("shopify.csv")

    board = Product.objects.get(sku="bamboo-board")
    assert board.locale == "zh-hans"
    assert board.category == "厨房用品"
    assert board.source_text == "整块楠竹制成，不易开裂。\n尺寸：40 × 28 厘米\n可双面使用"
    assert board.attributes == {"tags": "厨房, 竹制"}
    assert board.brand.locale == "zh-hans"


def test_shopify_category_falls_back_to_product_category():
    text = ("Handle,Title,Body (HTML),Vendor,Type,Product Category\n"
            "mug,Mug,<p>A mug.</p>,Acme,,Home & Garden > Kitchen\n")

    import_text(text)

    assert Product.objects.get(sku="mug").category == "Home & Garden > Kitchen"


def test_shopify_locale_option_overrides_detection():
    import_fixture("shopify.csv", locale="en-GB")

    assert Product.objects.get(sku="bamboo-board").locale == "en"


def test_shopify_product_without_title_is_reported_at_its_first_row():
    text = ("Handle,Title,Body (HTML),Option1 Name,Option1 Value\n"
            "ok,Good,<p>x</p>,Size,S\n"
            "no-title,,<p>y</p>,Size,S\n"
            "no-title,,,,M\n"
            ",Orphan,,,\n")

    report = import_text(text)

    assert errors(report) == ["line 3: missing Title", "line 5: missing Handle"]
    assert list(Product.objects.values_list("sku", flat=True)) == ["ok"]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("<p>One</p><p>Two &amp; three</p>", "One\nTwo & three"),
        ("<ul><li>A</li><li>B&nbsp;C</li></ul>", "A\nB C"),
        ("Line one<br/>Line&#8203;two<br>  spaced   out  ", "Line one\nLine\u200btwo\nspaced out"),
        ("<div>Keep <em>inline</em> words</div><style>p{}</style>", "Keep inline words"),
        ("Plain text\nwith its own lines &lt;3", "Plain text\nwith its own lines <3"),
        ("<p>Unclosed <b>tags", "Unclosed tags"),
        ("", ""),
    ],
)
def test_html_to_text(body, text):
    assert html_to_text(body) == text


# --- Format detection --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("filename", "text", "detected"),
    [
        ("p.jsonl", '{"sku": "A", "title": "B"}\n', "jsonl"),
        ("p.ndjson", '{"sku": "A", "title": "B"}\n', "jsonl"),
        ("p.csv", "sku,title\nA,B\n", "csv"),
        ("p.csv", "Handle, TITLE ,Body (HTML)\nA,B,<p>c</p>\n", "shopify"),
        ("p.csv", "handle,title,sku\nA,B,C\n", "csv"),
    ],
)
def test_auto_format_is_detected_from_extension_and_header(filename, text, detected):
    report = import_text(text, filename=filename)

    assert report.detected_format == detected
    assert report.failed == 0


def test_format_can_be_forced():
    report = import_text('{"sku": "F-1", "title": "Forced"}\n', filename="export.txt",
                         fmt="jsonl")

    assert report.detected_format == "jsonl"
    assert Product.objects.get(sku="F-1").source_format == "jsonl"


# --- Re-import ---------------------------------------------------------------------------------

def test_reimport_updates_products_instead_of_duplicating_them():
    import_fixture("products.csv")
    changed = (FIXTURES / "products.csv").read_text(encoding="utf-8").replace(
        "Skarp Chef's Knife", "Skarp Chef's Knife 20 cm"
    )

    report = import_text(changed)

    assert report.summary() == "imported 0, updated 3, failed 0"
    assert report.unchanged == 2
    assert Product.objects.count() == 3
    assert Product.objects.get(sku="KT-002").title == "Skarp Chef's Knife 20 cm"
    assert Brand.objects.filter(name="Nordhavn Kitchen").count() == 1


def test_reimport_replaces_fields_and_raw_of_existing_product():
    product = ProductFactory(sku="KT-001", title="Old", category="old", source_text="old")

    report = import_fixture("products.csv")

    assert report.summary() == "imported 2, updated 1, failed 0"
    product.refresh_from_db()
    assert product.title == "Fjell Electric Kettle"
    assert product.category == "kitchen"
    assert product.brand.name == "Nordhavn Kitchen"
    assert product.attributes == {"Material": "stainless steel", "Capacity": "1.7 L"}
    assert product.source_format == "csv"
    assert product.raw["rows"][0][1] == "Fjell Electric Kettle"


def test_columns_the_file_lacks_leave_existing_fields_alone():
    brand = BrandFactory(name="Keep Me")
    ProductFactory(sku="K-1", brand=brand, category="kitchen", source_text="Keep this text.")

    import_text("sku,title\nK-1,New title\n")

    product = Product.objects.get(sku="K-1")
    assert (product.title, product.brand, product.category, product.source_text) == (
        "New title", brand, "kitchen", "Keep this text.",
    )


def test_shopify_reimport_updates_by_handle():
    import_fixture("shopify.csv")

    report = import_fixture("shopify.csv")

    assert report.summary() == "imported 0, updated 3, failed 0"
    assert Product.objects.count() == 3


# --- Brands and locales ------------------------------------------------------------------------

def test_brand_option_overrides_brand_and_creates_it_with_first_product_locale():
    report = import_fixture("products.jsonl", brand_name="Copydesk Test Brand")

    assert report.failed == 0
    brand = Brand.objects.get(name="Copydesk Test Brand")
    assert brand.locale == "en"  # JL-1, the first product, is English
    assert set(Product.objects.values_list("brand__name", flat=True)) == {"Copydesk Test Brand"}
    assert not Brand.objects.filter(name__in=["Fernway Outfitters", "山水家居"]).exists()


def test_new_brand_gets_locale_of_its_first_product():
    import_text("sku,title,brand,locale\nZ-1,保温杯,新品牌,zh\nZ-2,Cup,新品牌,en\n")

    assert Brand.objects.get(name="新品牌").locale == "zh-hans"


def test_existing_brand_is_reused_case_insensitively():
    brand = BrandFactory(name="Nordhavn Kitchen")

    import_text("sku,title,brand\nN-1,Kettle,nordhavn kitchen\n")

    assert Product.objects.get(sku="N-1").brand == brand
    assert Brand.objects.count() == 1


@pytest.mark.parametrize(
    ("value", "locale"),
    [("en", "en"), ("en-US", "en"), ("EN_gb", "en"), ("zh", "zh-hans"), ("zh-CN", "zh-hans"),
     ("zh-Hans", "zh-hans"), ("zh_hans", "zh-hans"), ("zh-Hans-CN", "zh-hans"),
     ("zh-TW", None), ("zh-Hant", None), ("fr", None), ("", None)],
)
def test_locale_values_are_normalised(value, locale):
    assert locale_normalize(value) == locale


def test_unknown_locale_is_a_row_error():
    report = import_text("sku,title,locale\nL-1,Kettle,fr\nL-2,茶壶,zh_CN\n")

    assert errors(report) == ['line 2: unknown locale "fr" (use en or zh-hans)']
    assert Product.objects.get(sku="L-2").locale == "zh-hans"


def test_locale_is_detected_when_the_file_does_not_say():
    import_text("sku,title,description\n"
                "D-1,不锈钢保温杯 500ml,316不锈钢内胆 USB-C\n"
                "D-2,Travel mug,Keeps coffee hot. 保温\n")

    assert Product.objects.get(sku="D-1").locale == "zh-hans"
    assert Product.objects.get(sku="D-2").locale == "en"


# --- Bad rows ----------------------------------------------------------------------------------

def test_bad_rows_are_reported_with_line_numbers_while_good_rows_import():
    report = import_fixture("bad_rows.csv")

    assert errors(report) == [
        "line 3: missing sku",
        "line 4: missing title",
        'line 5: unknown locale "fr" (use en or zh-hans)',
        'line 8: duplicate sku "OK-1" (first on line 2); this row was skipped',
    ]
    assert report.summary() == "imported 3, updated 0, failed 4"
    assert set(Product.objects.values_list("sku", flat=True)) == {"OK-1", "OK-2", "OK-3"}
    # The first row of a duplicated SKU wins.
    assert Product.objects.get(sku="OK-1").title == "Good one"
    assert Product.objects.get(sku="OK-2").source_text == "First line.\nSecond line."


def test_error_after_a_multiline_cell_names_the_line_where_its_record_starts():
    text = 'sku,title,description\nM-1,One,"a\nb\nc"\nM-2,,"d\ne"\n'

    report = import_text(text)

    assert errors(report) == ["line 5: missing title"]


def test_oversized_field_is_a_row_error_and_the_row_writes_nothing():
    text = ("sku,title,description\n"
            "BIG-1,Too long," + "x" * 25001 + "\n"
            "OK-1,Fine,Short.\n")

    report = import_text(text)

    assert errors(report) == ['line 2: field "description" is 25001 characters (limit 20000)']
    assert report.errors[0].field == "description"
    assert list(Product.objects.values_list("sku", flat=True)) == ["OK-1"]


def test_model_length_limits_are_row_errors():
    text = ("sku,title,category\n"
            + "S" * 256 + ",Title,\n"
            + "T-1," + "t" * 501 + ",\n"
            + "C-1,Title," + "c" * 201 + "\n")

    report = import_text(text)

    assert errors(report) == [
        'line 2: field "sku" is 256 characters (limit 255)',
        'line 3: field "title" is 501 characters (limit 500)',
        'line 4: field "category" is 201 characters (limit 200)',
    ]
    assert not Product.objects.exists()


def test_field_limit_follows_the_setting(settings):
    settings.COPYDESK_MAX_IMPORT_FIELD_CHARS = 10

    report = import_text("sku,title,notes\nL-1,Kettle,eleven char\n")

    assert errors(report) == ['line 2: field "notes" is 11 characters (limit 10)']


def test_a_field_over_the_csv_module_limit_is_a_row_error_too():
    text = "sku,title,description\nHUGE-1,Huge," + "x" * 200_000 + "\nOK-1,Fine,Short.\n"

    report = import_text(text)

    assert [error.line for error in report.errors] == [2]
    assert list(Product.objects.values_list("sku", flat=True)) == ["OK-1"]


def test_row_with_more_cells_than_the_header_is_a_row_error():
    report = import_text("sku,title\nX-1,Kettle,surprise\nX-2,Kettle,\n")

    assert errors(report) == ["line 2: the row has 3 cells but the header has 2 columns"]
    assert list(Product.objects.values_list("sku", flat=True)) == ["X-2"]


def test_characters_a_database_cannot_store_are_row_errors():
    text = ('{"sku": "NUL-1", "title": "a\\u0000b"}\n'
            '{"sku": "SUR-1", "title": "x", "attributes": {"k": "\\ud800"}}\n'
            '{"sku": "OK-1", "title": "fine"}\n')

    report = import_text(text, filename="p.jsonl")

    assert [error.line for error in report.errors] == [1, 2]
    assert "U+0000" in report.errors[0].message
    assert list(Product.objects.values_list("sku", flat=True)) == ["OK-1"]


# --- Encodings ---------------------------------------------------------------------------------

def test_gbk_file_from_chinese_excel_is_read_as_gb18030():
    report = import_fixture("gbk.csv")

    assert report.summary() == "imported 2, updated 0, failed 0"
    assert report.encoding == "gb18030"
    assert any("GB18030" in notice for notice in report.notices)
    kettle = Product.objects.get(sku="GBK-1")
    assert kettle.title == "不锈钢电水壶"
    assert kettle.source_text == "快速烧水，304不锈钢内胆。"
    assert kettle.attributes == {"材质": "不锈钢"}
    assert kettle.brand.name == "山水家居"
    assert kettle.locale == "zh-hans"


def test_latin1_file_is_refused_and_nothing_is_stored():
    path = FIXTURES / "latin1.csv"
    with pytest.raises(CatalogImportError) as excinfo:
        products_import(data=path.read_bytes(), filename="latin1.csv")

    assert str(excinfo.value) == (
        "latin1.csv is not UTF-8 (byte 0xe8 at line 2); save it as CSV UTF-8 and import again."
    )
    assert not Product.objects.exists()
    assert not Brand.objects.exists()


def test_binary_file_is_refused():
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\xff\xfe\x00"

    with pytest.raises(CatalogImportError, match=r"logo.csv is not UTF-8 \(byte 0x89 at line 1\)"):
        products_import(data=data, filename="logo.csv")
    assert not Product.objects.exists()


def test_position_of_a_bad_byte_is_counted_after_the_bom():
    data = "\ufeffsku,title\nA-1,ok\nA-2,Caf".encode() + b"\xe9\n"

    with pytest.raises(CatalogImportError, match=r"byte 0xe9 at line 3"):
        products_import(data=data, filename="p.csv")
    assert not Product.objects.exists()


# --- Service extras ----------------------------------------------------------------------------

def test_import_writes_an_audit_event(editor):
    report = import_fixture("products.csv", user=editor)

    event = AuditEvent.objects.get(verb="catalog.import")
    assert event.actor == editor
    assert event.data["created"] == report.created == 3
    assert event.data["format"] == "csv"


def test_user_without_import_permission_is_refused(outsider):
    with pytest.raises(PermissionDenied):
        import_fixture("products.csv", user=outsider)
    assert not Product.objects.exists()


def test_a_database_error_in_a_batch_fails_only_the_row_that_caused_it(monkeypatch):
    from django.db import IntegrityError

    from editorial.catalog import writer

    original = writer._write_batch

    def write_batch(batch, **kwargs):
        result = original(batch, **kwargs)  # writes, then fails like a concurrent insert would
        if any(record.sku == "BOOM" for record, _ in batch):
            raise IntegrityError("UNIQUE constraint failed: editorial_product.sku")
        return result

    monkeypatch.setattr(writer, "_write_batch", write_batch)

    report = import_text("sku,title,brand\nA-1,One,New Brand\nBOOM,Two,Boom Brand\nA-3,Three,\n")

    assert report.summary() == "imported 2, updated 0, failed 1"
    assert report.errors[0].line == 3
    assert report.errors[0].message.startswith("could not be saved: UNIQUE constraint failed")
    assert set(Product.objects.values_list("sku", flat=True)) == {"A-1", "A-3"}
    assert list(Brand.objects.values_list("name", flat=True)) == ["New Brand"]


def test_unknown_locale_option_is_refused():
    with pytest.raises(CatalogImportError, match="Unknown locale 'klingon'"):
        import_text("sku,title\nA-1,One\n", locale="klingon")


def test_row_error_and_report_read_as_users_see_them():
    report = ImportReport(created=2, updated=1, errors=[RowError(7, "missing sku")])

    assert report.failed == 1
    assert report.summary() == "imported 2, updated 1, failed 1"
    assert str(report.errors[0]) == "line 7: missing sku"


def test_large_csv_imports_in_a_bounded_number_of_queries(django_assert_max_num_queries):
    ProductFactory(sku="BULK-00000", title="existing")
    rows = "".join(f"BULK-{n:05d},Product {n},Bulk Brand,cat,desc {n},red\n" for n in range(1200))
    text = "sku,title,brand,category,description,colour\n" + rows

    # SQLite splits each bulk insert into ~80-row statements; no query is made per row.
    with django_assert_max_num_queries(40):
        report = import_text(text)

    assert report.summary() == "imported 1199, updated 1, failed 0"
    assert Product.objects.get(sku="BULK-01199").attributes == {"colour": "red"}
    assert Product.objects.get(sku="BULK-00000").title == "Product 0"


# --- The command -------------------------------------------------------------------------------

def test_command_imports_and_prints_the_summary():
    stdout, stderr = run_command(str(FIXTURES / "products.csv"))

    assert stdout.strip().splitlines()[-1] == "imported 3, updated 0, failed 0"
    assert stderr == ""
    assert Product.objects.count() == 3


def test_command_prints_row_errors_to_stderr_and_fails():
    stdout, stderr = io.StringIO(), io.StringIO()

    with pytest.raises(CommandError) as excinfo:
        call_command("import_products", str(FIXTURES / "bad_rows.csv"), stdout=stdout,
                     stderr=stderr)

    assert excinfo.value.returncode == 1
    assert stdout.getvalue().strip().splitlines()[-1] == "imported 3, updated 0, failed 4"
    assert stderr.getvalue().splitlines() == [
        "line 3: missing sku",
        "line 4: missing title",
        'line 5: unknown locale "fr" (use en or zh-hans)',
        'line 8: duplicate sku "OK-1" (first on line 2); this row was skipped',
    ]
    assert Product.objects.count() == 3


def test_command_options_format_and_brand():
    path = FIXTURES / "products.jsonl"

    stdout, _ = run_command(str(path), format="jsonl", brand="Command Brand")

    assert stdout.strip().endswith("imported 3, updated 0, failed 0")
    assert set(Product.objects.values_list("brand__name", flat=True)) == {"Command Brand"}


def test_command_says_when_a_file_was_read_as_gb18030():
    stdout, _ = run_command(str(FIXTURES / "gbk.csv"))

    lines = stdout.strip().splitlines()
    assert "GB18030" in lines[0]
    assert lines[-1] == "imported 2, updated 0, failed 0"


def test_command_refuses_a_file_that_is_not_utf8():
    with pytest.raises(CommandError, match="latin1.csv is not UTF-8"):
        run_command(str(FIXTURES / "latin1.csv"))
    assert not Product.objects.exists()


def test_command_names_a_missing_file(tmp_path):
    missing = tmp_path / "nope.csv"

    with pytest.raises(CommandError, match="nope.csv: no such file"):
        run_command(str(missing))


def test_command_exit_status_is_non_zero_from_the_shell(tmp_path):
    missing = tmp_path / "nope.csv"

    result = subprocess.run(
        [sys.executable, "manage.py", "import_products", str(missing)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 1
    assert "nope.csv: no such file" in result.stderr


# --- Demo data ---------------------------------------------------------------------------------

def test_demo_catalog_imports_without_errors():
    stdout, stderr = run_command(str(DEMO / "catalog.jsonl"))

    lines = (DEMO / "catalog.jsonl").read_text(encoding="utf-8").split("\n")
    expected = sum(1 for line in lines if line.strip())
    assert stderr == ""
    assert stdout.strip().endswith(f"imported {expected}, updated 0, failed 0")
    assert Product.objects.filter(source_format="jsonl").count() == expected
    # The learning benchmark trains and evaluates on it: enough products, both languages,
    # facts and reference copy on every one.
    assert expected >= 40
    assert set(Product.objects.values_list("locale", flat=True)) == {"en", "zh-hans"}
    assert Product.objects.values("brand").distinct().count() >= 4
    assert not Product.objects.filter(source_text="").exists()
    assert not Product.objects.filter(attributes={}).exists()


def test_demo_shopify_sample_imports_without_errors():
    report = products_import(data=(DEMO / "shopify_sample.csv").read_bytes(),
                             filename="shopify_sample.csv")

    assert report.errors == []
    assert report.detected_format == "shopify"
    assert report.created > 0
    assert Product.objects.filter(source_format="shopify").count() == report.created
    for product in Product.objects.filter(source_format="shopify"):
        assert product.title and product.source_text and "<" not in product.source_text
