import csv
import io
import json
import os
from datetime import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from editorial import exporters, services
from editorial.exporters import EXPORT_COLUMNS, approved_copy_rows, copy_export
from editorial.exporters import files as export_files
from editorial.exporters import rows as export_rows
from editorial.models import AuditEvent, CatalogImport, Draft, ExportBatch, Product, Revision
from tests.factories import (
    BrandFactory,
    ModelVersionFactory,
    ProductFactory,
    approve,
    draft_with_text,
    kind,
)

pytestmark = pytest.mark.django_db


def approved_draft(editor, reviewer, text="A kettle made of stainless steel.", **kwargs):
    return approve(draft_with_text(text, **kwargs), editor=editor, reviewer=reviewer)


def export(fmt="csv", **kwargs):
    stream = io.StringIO(newline="")
    batch = copy_export(stream=stream, fmt=fmt, **kwargs)
    return batch, stream.getvalue()


def csv_rows(text):
    return list(csv.reader(io.StringIO(text, newline="")))


def jsonl_rows(text):
    return [json.loads(line) for line in text.splitlines()]


def test_a_draft_edited_after_approval_still_exports_its_approved_revision(editor, reviewer):
    draft = approved_draft(editor, reviewer, "Approved kettle text.")
    approved = draft.approved_revision
    services.revision_save(draft=draft, user=editor, text="Unapproved rewrite.",
                           base_revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_EDIT
    edited_at = draft.updated_at

    batch, out = export()
    _, lines = export("jsonl")

    (row,) = csv_rows(out)[1:]
    assert row[EXPORT_COLUMNS.index("text")] == "Approved kettle text."
    assert row[EXPORT_COLUMNS.index("revision")] == "1"
    assert [record["text"] for record in jsonl_rows(lines)] == ["Approved kettle text."]
    assert "Unapproved rewrite." not in out + lines
    assert batch.count == 1
    draft.refresh_from_db()
    # The unapproved edit still waits for review: the export does not move the draft.
    assert draft.state == Draft.State.IN_EDIT and draft.updated_at == edited_at
    assert draft.exported_revision == approved == draft.approved_revision
    assert draft.current_revision.text == "Unapproved rewrite."


@pytest.mark.parametrize("decision", ["in_review", "changes_requested", "rejected"])
def test_a_draft_back_in_review_after_approval_exports_its_last_approved_text(
        editor, reviewer, decision):
    draft = approved_draft(editor, reviewer, "Approved kettle text.")
    services.revision_save(draft=draft, user=editor, text="Second try.",
                           base_revision_id=draft.current_revision_id)
    services.draft_submit(draft=draft, user=editor)
    draft.refresh_from_db()
    if decision == "changes_requested":
        services.draft_request_changes(draft=draft, user=reviewer,
                                       revision_id=draft.current_revision_id, comment="Shorter.")
    elif decision == "rejected":
        services.draft_reject(draft=draft, user=reviewer,
                              revision_id=draft.current_revision_id, comment="No.")

    _, out = export()
    _, lines = export("jsonl")

    assert [row[EXPORT_COLUMNS.index("text")] for row in csv_rows(out)[1:]] == [
        "Approved kettle text."]
    assert [record["text"] for record in jsonl_rows(lines)] == ["Approved kettle text."]
    draft.refresh_from_db()
    assert draft.state == decision


def test_a_reapproved_draft_exports_the_new_text(editor, reviewer):
    draft = approved_draft(editor, reviewer, "First approved text.")
    draft = approve(draft, editor=editor, reviewer=reviewer, text="Second approved text.")

    batch, out = export()

    rows = csv_rows(out)
    assert rows[0] == EXPORT_COLUMNS
    assert len(rows) == 2
    row = dict(zip(EXPORT_COLUMNS, rows[1], strict=True))
    assert row["text"] == "Second approved text."
    assert row["revision"] == "2"
    # Revision 2 was typed by the editor; it descends from the model's revision 1.
    assert row["model_version"] == "factory-model"
    draft.refresh_from_db()
    assert draft.state == Draft.State.EXPORTED
    assert draft.exported_revision_id == draft.approved_revision_id
    assert draft.exported_revision.text == "Second approved text."


def test_csv_has_the_columns_and_who_approved_when(editor, reviewer):
    draft = approved_draft(editor, reviewer, "Boils fast.")

    _, out = export()

    header, row = csv_rows(out)
    assert header == EXPORT_COLUMNS
    row = dict(zip(header, row, strict=True))
    assert row == {
        "sku": draft.product.sku,
        "title": draft.product.title,
        "kind": "description",
        "locale": "en",
        "text": "Boils fast.",
        "revision": "1",
        "approved_by": "rey",
        "approved_at": draft.approved_at.isoformat(),
        "model_version": "factory-model",
    }
    assert datetime.fromisoformat(row["approved_at"]) == draft.approved_at


def test_jsonl_is_one_object_a_line_with_unescaped_chinese(editor, reviewer):
    approved_draft(editor, reviewer, "不锈钢电水壶，快速烧水。", product__locale="zh-hans")
    approved_draft(editor, reviewer, "A second kettle.")

    batch, out = export("jsonl")

    assert "不锈钢电水壶" in out  # ensure_ascii=False
    rows = jsonl_rows(out)
    assert len(rows) == 2 == batch.count
    assert {tuple(row) for row in rows} == {tuple(EXPORT_COLUMNS)}
    chinese = next(row for row in rows if row["locale"] == "zh-hans")
    assert chinese["text"] == "不锈钢电水壶，快速烧水。"
    assert chinese["revision"] == 1
    assert chinese["approved_by"] == "rey"
    assert chinese["model_version"] == "factory-model"


def test_jsonl_keeps_each_record_on_one_line(editor, reviewer):
    approved_draft(editor, reviewer, "Line one\nline two\u2028still two")

    _, out = export("jsonl")

    assert out.count("\n") == 1
    assert jsonl_rows(out)[0]["text"] == "Line one\nline two\u2028still two"


def test_csv_neutralises_formulas(editor, reviewer):
    approved_draft(editor, reviewer, "=HYPERLINK(A1)", product__sku="@SUM(A1)",
                   product__title="+cmd|' /C calc'!A0")
    approved_draft(editor, reviewer, "\t=1+1", product__sku="SKU-TAB", product__title="-2+3")

    _, out = export()

    rows = [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in csv_rows(out)[1:]]
    by_sku = {row["sku"]: row for row in rows}
    assert set(by_sku) == {"'@SUM(A1)", "SKU-TAB"}
    assert by_sku["'@SUM(A1)"]["text"] == "'=HYPERLINK(A1)"
    assert by_sku["'@SUM(A1)"]["title"] == "'+cmd|' /C calc'!A0"
    assert by_sku["SKU-TAB"]["text"] == "'\t=1+1"
    assert by_sku["SKU-TAB"]["title"] == "'-2+3"
    for row in rows:
        for value in row.values():
            assert not value.startswith(exporters.FORMULA_PREFIXES)


def test_jsonl_is_not_formula_escaped(editor, reviewer):
    approved_draft(editor, reviewer, "=1+1")

    _, out = export("jsonl")

    assert jsonl_rows(out)[0]["text"] == "=1+1"


def test_formula_guard_can_be_turned_off_for_bullet_lists(editor, reviewer):
    approved_draft(editor, reviewer, "- Boils fast\n- Steel body")

    _, out = export(formula_guard=False)

    assert csv_rows(out)[1][4] == "- Boils fast\n- Steel body"


def test_chinese_commas_quotes_and_newlines_round_trip_through_csv(editor, reviewer):
    text = '这款水壶，"快速"烧水, 容量 1.7 L。\n第二行; 还有 "引号"\n\n最后'
    approved_draft(editor, reviewer, text, product__title='Kettle, "steel", 1.7 L',
                   product__locale="zh-hans")

    _, out = export()

    (row,) = csv_rows(out)[1:]
    assert row[EXPORT_COLUMNS.index("text")] == text
    assert row[EXPORT_COLUMNS.index("title")] == 'Kettle, "steel", 1.7 L'


def test_bom_is_written_for_excel(editor, reviewer):
    approved_draft(editor, reviewer, "Text")

    _, out = export(bom=True)

    assert out.startswith("\ufeff")
    decoded = out.encode("utf-8").decode("utf-8-sig")
    assert csv_rows(decoded)[0] == EXPORT_COLUMNS
    _, plain = export()
    assert not plain.startswith("\ufeff")


def test_bom_is_refused_for_jsonl():
    with pytest.raises(services.WorkflowError):
        export("jsonl", bom=True)


def test_unknown_format_is_refused():
    with pytest.raises(services.WorkflowError):
        export("xlsx")


def test_export_is_recorded_as_a_batch_and_audited(editor, reviewer):
    approved_draft(editor, reviewer, "One")
    approved_draft(editor, reviewer, "Two", kind=kind("title"))

    batch, _ = export("jsonl", user=reviewer, filters={"kind": "", "brand": None},
                      destination="download")

    batch.refresh_from_db()
    assert batch.count == 2
    assert batch.format == ExportBatch.Format.JSONL
    assert batch.created_by == reviewer
    assert batch.filters == {}
    assert batch.destination == "download"
    event = AuditEvent.objects.get(verb="export.create")
    assert event.actor == reviewer
    assert event.object_type == "exportbatch" and event.object_id == str(batch.pk)
    assert event.data["count"] == 2


def test_editors_cannot_export_and_nothing_is_marked(editor, reviewer):
    draft = approved_draft(editor, reviewer)

    with pytest.raises(PermissionDenied):
        export(user=editor)

    draft.refresh_from_db()
    assert draft.state == Draft.State.APPROVED
    assert not ExportBatch.objects.exists()


def test_exported_drafts_are_exported_again(editor, reviewer):
    approved_draft(editor, reviewer)
    export()

    batch, out = export()

    assert batch.count == 1
    assert len(csv_rows(out)) == 2


def test_rows_are_ordered_by_sku_then_kind_position(editor, reviewer):
    b_title = approved_draft(editor, reviewer, "b title", product__sku="B", kind=kind("title"))
    b_product = b_title.product
    approved_draft(editor, reviewer, "b description", product=b_product)
    a_product = ProductFactory(sku="A")
    approved_draft(editor, reviewer, "a slogan", product=a_product, kind=kind("slogan"))
    approved_draft(editor, reviewer, "a bullets", product=a_product, kind=kind("bullets"))

    rows = list(approved_copy_rows())

    assert [(row["sku"], row["kind"]) for row in rows] == [
        ("A", "bullets"), ("A", "slogan"), ("B", "description"), ("B", "title"),
    ]


def test_export_pages_cover_every_draft_once(editor, reviewer, monkeypatch):
    monkeypatch.setattr(export_rows, "PAGE_SIZE", 2)
    codes = ["description", "title", "bullets"]
    expected = []
    for sku in ["P1", "P2", "P3"]:
        product = ProductFactory(sku=sku)
        for code in codes:
            approved_draft(editor, reviewer, f"{sku} {code}", product=product, kind=kind(code))
            expected.append((sku, code))
    expected.sort(key=lambda pair: (pair[0], codes.index(pair[1])))

    batch, out = export("jsonl")

    assert [(row["sku"], row["kind"]) for row in jsonl_rows(out)] == expected
    assert batch.count == 9
    assert Draft.objects.filter(state=Draft.State.EXPORTED).count() == 9


def test_filters_by_brand_kind_and_locale(editor, reviewer):
    acme = BrandFactory(name="Acme")
    approved_draft(editor, reviewer, "acme en", product__brand=acme)
    approved_draft(editor, reviewer, "acme zh title", product__brand=acme,
                   product__locale="zh-hans", kind=kind("title"))
    approved_draft(editor, reviewer, "other", product__brand=BrandFactory(name="Other"))

    def texts(**filters):
        return sorted(row["text"] for row in approved_copy_rows(filters=filters))

    assert texts(brand="Acme") == ["acme en", "acme zh title"]
    assert texts(kind="title") == ["acme zh title"]
    assert texts(locale="en") == ["acme en", "other"]
    assert texts(brand="Acme", locale="en") == ["acme en"]

    batch, out = export(filters={"brand": "Acme", "kind": "title"})
    assert batch.count == 1 and batch.filters == {"brand": "Acme", "kind": "title"}
    assert Draft.objects.filter(state=Draft.State.EXPORTED).count() == 1


@pytest.mark.parametrize("filters", [{"brand": "Nobody"}, {"kind": "poem"}, {"locale": "fr"},
                                     {"colour": "red"}])
def test_bad_filters_are_refused(filters):
    with pytest.raises(services.WorkflowError):
        approved_copy_rows(filters=filters)


def test_model_version_is_found_through_the_revision_chain(editor, reviewer):
    # Revision 3 (approved) <- 2 <- 1 (from a candidate of "chain-model").
    draft = draft_with_text("model text")
    version = ModelVersionFactory(name="chain-model")
    draft.current_revision.candidate.model_version = version
    draft.current_revision.candidate.save()
    services.revision_save(draft=draft, user=editor, text="edit one",
                           base_revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    approve(draft, editor=editor, reviewer=reviewer, text="edit two")
    # A draft whose approved revision has no parent falls back to its first revision.
    orphan = draft_with_text("orphan model text")
    lone = Revision.objects.create(draft=orphan, number=2, text="typed from scratch",
                                   author=editor)
    orphan.current_revision = lone
    orphan.save()
    approve(orphan, editor=editor, reviewer=reviewer)

    rows = {row["text"]: row for row in approved_copy_rows()}

    assert rows["edit two"]["model_version"] == "chain-model"
    assert rows["edit two"]["revision"] == 3
    assert rows["typed from scratch"]["model_version"] == "factory-model"


def test_rows_take_a_constant_number_of_queries(editor, reviewer):
    def make(n):
        for i in range(n):
            draft = approved_draft(editor, reviewer, f"text {i}")
            # Half of them were edited before approval, so their model version needs the walk.
            if i % 2:
                approve(draft, editor=editor, reviewer=reviewer, text=f"edited {i}")

    def count_queries():
        with CaptureQueriesContext(connection) as ctx:
            rows = list(approved_copy_rows())
        return len(ctx.captured_queries), rows

    make(2)
    few, _ = count_queries()
    make(6)
    many, rows = count_queries()
    assert len(rows) == 8
    assert many == few


# --- Management command -----------------------------------------------------------------------

def test_command_writes_the_file_and_reports(editor, reviewer, tmp_path):
    approved_draft(editor, reviewer, "这款水壶，快速烧水。", product__locale="zh-hans")
    approved_draft(editor, reviewer, "Second")
    out_file = tmp_path / "copy.csv"
    stdout = io.StringIO()

    call_command("export_copy", "--format", "csv", "--out", str(out_file), stdout=stdout)

    assert stdout.getvalue().strip() == f"exported 2 drafts to {out_file}"
    data = out_file.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    rows = csv_rows(data.decode("utf-8"))
    assert rows[0] == EXPORT_COLUMNS and len(rows) == 3
    assert "这款水壶，快速烧水。" in data.decode("utf-8")
    assert os.listdir(tmp_path) == ["copy.csv"]
    batch = ExportBatch.objects.get()
    assert batch.created_by is None and batch.destination == str(out_file)
    assert Draft.objects.filter(state=Draft.State.EXPORTED).count() == 2


def test_command_writes_a_bom_and_filters(editor, reviewer, tmp_path):
    approved_draft(editor, reviewer, "title", kind=kind("title"))
    approved_draft(editor, reviewer, "description")
    out_file = tmp_path / "titles.csv"

    call_command("export_copy", "--format", "csv", "--out", str(out_file), "--bom",
                 "--kind", "title", stdout=io.StringIO())

    data = out_file.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = csv_rows(data.decode("utf-8-sig"))
    assert [row[EXPORT_COLUMNS.index("kind")] for row in rows[1:]] == ["title"]


def test_command_jsonl_to_stdout(editor, reviewer):
    approved_draft(editor, reviewer, "Stdout text")
    stdout, stderr = io.StringIO(), io.StringIO()

    call_command("export_copy", "--format", "jsonl", "--out", "-", stdout=stdout, stderr=stderr)

    assert [row["text"] for row in jsonl_rows(stdout.getvalue())] == ["Stdout text"]
    assert "exported 1 drafts to stdout" in stderr.getvalue()


def test_a_failed_command_leaves_no_half_file_and_marks_nothing(editor, reviewer, tmp_path,
                                                               monkeypatch):
    draft = approved_draft(editor, reviewer, "One")
    approved_draft(editor, reviewer, "Two")
    out_file = tmp_path / "copy.jsonl"
    out_file.write_text("previous export\n", encoding="utf-8")
    real_line = export_files._jsonl_line
    calls = []

    def fail_on_second_row(row):
        calls.append(row)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_line(row)

    monkeypatch.setattr(export_files, "_jsonl_line", fail_on_second_row)

    with pytest.raises(OSError, match="disk full"):
        call_command("export_copy", "--format", "jsonl", "--out", str(out_file),
                     stdout=io.StringIO())

    assert out_file.read_text(encoding="utf-8") == "previous export\n"
    assert os.listdir(tmp_path) == ["copy.jsonl"]
    draft.refresh_from_db()
    assert draft.state == Draft.State.APPROVED and draft.exported_revision is None
    assert not ExportBatch.objects.exists()


def test_command_reports_bad_filters(tmp_path):
    with pytest.raises(CommandError, match="no brand"):
        call_command("export_copy", "--format", "csv", "--out", str(tmp_path / "x.csv"),
                     "--brand", "Nobody", stdout=io.StringIO())
    assert os.listdir(tmp_path) == []


def test_formula_guard_leaves_plain_numbers_alone(editor, reviewer):
    approved_draft(editor, reviewer, "-3", product__sku="NEG", product__title="+1.5")
    approved_draft(editor, reviewer, "-3+4", product__sku="SUM", product__title="-1e5")

    _, out = export()

    rows = {row[0]: dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in csv_rows(out)[1:]}
    # A spreadsheet reads these as numbers, and a shop must get its numbers back unchanged.
    assert (rows["NEG"]["text"], rows["NEG"]["title"]) == ("-3", "+1.5")
    # Anything else starting with a formula character is still neutralised.
    assert (rows["SUM"]["text"], rows["SUM"]["title"]) == ("'-3+4", "'-1e5")


def test_command_exports_only_what_changed(editor, reviewer, tmp_path):
    first = approved_draft(editor, reviewer, "first", product__sku="A")
    approved_draft(editor, reviewer, "second", product__sku="B")
    call_command("export_copy", "--format", "csv", "--out", str(tmp_path / "all.csv"),
                 stdout=io.StringIO())
    approve(first, editor=editor, reviewer=reviewer, text="first, again")
    out_file = tmp_path / "changed.csv"

    call_command("export_copy", "--format", "csv", "--out", str(out_file), "--changed-only",
                 stdout=io.StringIO())

    rows = csv_rows(out_file.read_text(encoding="utf-8"))
    assert [row[EXPORT_COLUMNS.index("text")] for row in rows[1:]] == ["first, again"]
    assert ExportBatch.objects.order_by("-pk").first().changed_only


def test_command_exports_the_products_of_one_import(editor, reviewer, tmp_path):
    from editorial.catalog import products_import

    products_import(data=b"sku,title\nA-1,Kettle\n", filename="spring.csv")
    products_import(data=b"sku,title\nB-1,Teapot\n", filename="/uploads/summer.csv")
    for sku in ("A-1", "B-1"):
        approved_draft(editor, reviewer, f"Copy for {sku}.", product=Product.objects.get(sku=sku))
    summer = CatalogImport.objects.get(filename="summer.csv")

    for value in ("summer.csv", str(summer.pk)):
        out_file = tmp_path / f"{value}.out.csv"
        call_command("export_copy", "--format", "csv", "--out", str(out_file), "--import", value,
                     stdout=io.StringIO())
        rows = csv_rows(out_file.read_text(encoding="utf-8"))
        assert [row[EXPORT_COLUMNS.index("text")] for row in rows[1:]] == ["Copy for B-1."]
    assert ExportBatch.objects.order_by("-pk").first().filters == {"import": str(summer.pk)}

    with pytest.raises(CommandError, match=r"no import 'autumn.csv'.*summer\.csv.*spring\.csv"):
        call_command("export_copy", "--format", "csv", "--out", str(tmp_path / "x.csv"),
                     "--import", "autumn.csv", stdout=io.StringIO())
