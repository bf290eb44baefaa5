"""The UI in English and Simplified Chinese.

The catalog guards fail the build when a UI string is added without a translation, when a
translation is fuzzy or missing, or when the committed .mo is not what the .po compiles to.
The page tests check what users see: Chinese pages, and a language switcher that works without
JavaScript."""

import ast
import gettext
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from editorial import services
from editorial.models import Draft
from tests.conftest import CI
from tests.factories import DraftFactory, ModelVersionFactory, draft_with_text
from tests.test_metrics import generated, review

ROOT = Path(settings.BASE_DIR)
LOCALE = "zh_Hans"
CATALOG_DIR = ROOT / "locale" / LOCALE / "LC_MESSAGES"
# What `manage.py makemessages` is run with (see README/Makefile): these hold no UI strings.
IGNORED_DIRS = {".venv", "var", "test-artifacts", "locale", "node_modules", "__pycache__"}
MESSAGE_FILE_SUFFIXES = {"django": {".py", ".html", ".txt"}, "djangojs": {".js"}}

GETTEXT = all(shutil.which(tool) for tool in ("xgettext", "msgmerge", "msguniq", "msgfmt"))
needs_gettext = pytest.mark.skipif(
    not GETTEXT and not CI, reason="GNU gettext is not installed (apt-get install gettext)"
)


# --- A small .po reader ---------------------------------------------------------------------------


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        where = f" ({self.references[0]})" if self.references else ""
        context = f"[{self.msgctxt}] " if self.msgctxt else ""
        return f"{context}{self.msgid!r}{where}"

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(self.msgstr) and "fuzzy" not in self.flags


def parse_po(text: str) -> list[Entry]:
    """The entries of a .po file (obsolete "#~" entries left out), header included."""
    entries: list[Entry] = []
    entry, target = Entry(), None

    def finish() -> None:
        nonlocal entry, target
        if entry.msgid or entry.msgstr:
            entries.append(entry)
        entry, target = Entry(), None

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            finish()
        elif line.startswith("#~"):
            continue
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#:"):
            entry.references += line[2:].split()
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            value = ast.literal_eval(line)
            if target == "msgid":
                entry.msgid += value
            elif target == "msgctxt":
                entry.msgctxt = (entry.msgctxt or "") + value
            elif target == "msgid_plural":
                entry.msgid_plural = (entry.msgid_plural or "") + value
            elif target:
                entry.msgstr[-1] += value
        else:
            keyword, _, rest = line.partition(" ")
            if keyword in ("msgctxt", "msgid") and entry.msgstr:
                finish()  # a new entry without a blank line before it
            target = keyword
            value = ast.literal_eval(rest)
            if keyword == "msgid":
                entry.msgid = value
            elif keyword == "msgctxt":
                entry.msgctxt = value
            elif keyword == "msgid_plural":
                entry.msgid_plural = value
            elif keyword.startswith("msgstr"):
                entry.msgstr.append(value)
    finish()
    return entries


def messages(path: Path) -> list[Entry]:
    return [e for e in parse_po(path.read_text(encoding="utf-8")) if e.msgid]


def untranslated(entries: list[Entry]) -> list[str]:
    return [e.label for e in entries if not e.translated]


def test_po_reader_sees_plural_context_fuzzy_and_multiline_entries():
    entries = parse_po(
        'msgid ""\nmsgstr ""\n"Language: zh_Hans\\n"\n\n'
        '#: a.py:1\n#, fuzzy, python-format\nmsgid "%(n)d draft"\nmsgid_plural "%(n)d drafts"\n'
        'msgstr[0] "%(n)d 份草稿"\n\n'
        'msgctxt "severity"\nmsgid ""\n"long "\n"text"\nmsgstr ""\n\n'
        '#~ msgid "gone"\n#~ msgstr "旧"\n'
    )
    header, plural, context = entries
    assert header.msgstr == ["Language: zh_Hans\n"]
    assert (plural.msgid_plural, plural.msgstr, plural.translated) == (
        "%(n)d drafts", ["%(n)d 份草稿"], False)
    assert (context.msgctxt, context.msgid, context.translated) == ("severity", "long text", False)


# --- The committed catalog ------------------------------------------------------------------------


def committed_catalogs() -> list[Path]:
    return sorted(CATALOG_DIR.glob("*.po"))


def test_the_chinese_catalog_exists_and_everything_in_it_is_translated():
    assert (CATALOG_DIR / "django.po").exists(), "run makemessages -l zh_Hans"
    for po in committed_catalogs():
        entries = messages(po)
        assert entries, f"{po.name} is empty"
        missing = untranslated(entries)
        assert not missing, f"untranslated or fuzzy in {po.name}:\n" + "\n".join(missing)
        header = parse_po(po.read_text(encoding="utf-8"))[0]
        assert header.msgid == "" and "fuzzy" not in header.flags
        assert "Plural-Forms: nplurals=1; plural=0;" in header.msgstr[0]


def test_translations_keep_every_placeholder():
    """A dropped %(name)s or {name} breaks formatting (or hides a figure) at run time."""
    placeholder = re.compile(r"%\(\w+\)[sd]|\{\w*\}")
    wrong = []
    for po in committed_catalogs():
        for entry in messages(po):
            wanted = sorted(placeholder.findall(entry.msgid_plural or entry.msgid))
            for text in entry.msgstr:
                if sorted(placeholder.findall(text)) != wanted:
                    wrong.append(f"{entry.label}: {text!r}")
    assert not wrong, "\n".join(wrong)


@needs_gettext
def test_the_committed_mo_is_what_the_po_compiles_to(tmp_path):
    for po in committed_catalogs():
        committed = po.with_suffix(".mo")
        assert committed.exists(), f"{committed.name} is missing: run compilemessages"
        fresh = tmp_path / committed.name
        # The same msgfmt call compilemessages makes.
        subprocess.run(["msgfmt", "--check-format", "-o", str(fresh), str(po)], check=True)
        with committed.open("rb") as a, fresh.open("rb") as b:
            old, new = gettext.GNUTranslations(a)._catalog, gettext.GNUTranslations(b)._catalog
        stale = sorted(str(key) for key in set(old) | set(new) if old.get(key) != new.get(key))
        assert not stale, f"{committed.name} is stale (run compilemessages); differs on:\n" + (
            "\n".join(stale[:20])
        )


def copy_sources(destination: Path) -> None:
    """The files makemessages reads, as it walks the project (hidden folders are skipped by
    its default ignore patterns)."""
    suffixes = set().union(*MESSAGE_FILE_SUFFIXES.values())
    for folder, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS and not d.startswith(".")]
        for name in filenames:
            if Path(name).suffix in suffixes:
                source = Path(folder) / name
                target = destination / source.relative_to(ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)


@needs_gettext
def test_every_ui_string_in_the_code_is_in_the_catalog_and_translated(tmp_path, monkeypatch):
    """Runs makemessages over a copy of the project with a copy of the catalog, so a string
    added to a template or view without a translation fails here (and the working tree is not
    touched)."""
    copy_sources(tmp_path)
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    monkeypatch.chdir(tmp_path)
    with override_settings(LOCALE_PATHS=[tmp_path / "locale"]):
        call_command("makemessages", locale=[LOCALE], verbosity=0)
        call_command("makemessages", locale=[LOCALE], domain="djangojs", verbosity=0)
    catalogs = tmp_path / "locale" / LOCALE / "LC_MESSAGES"
    found = messages(catalogs / "django.po")
    assert len(found) >= len(messages(CATALOG_DIR / "django.po")) * 0.8, "extraction failed"
    for po in sorted(catalogs.glob("*.po")):
        missing = untranslated(messages(po))
        assert not missing, (
            f"UI strings without a Chinese translation in locale/{LOCALE}/LC_MESSAGES/{po.name} "
            f"(run makemessages -l {LOCALE}, translate, compilemessages):\n" + "\n".join(missing)
        )


# --- What users see -------------------------------------------------------------------------------


def chinese(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


@pytest.mark.django_db
def test_login_page_is_in_chinese_for_a_chinese_browser(client):
    html = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert '<html lang="zh-hans">' in html
    assert "登录 Copydesk" in html
    assert "Log in to Copydesk" not in html


@pytest.mark.django_db
def test_login_page_stays_english_by_default(client):
    html = client.get(reverse("login")).content.decode()
    assert '<html lang="en">' in html and "Log in to Copydesk" in html


@pytest.mark.django_db
def test_dashboard_and_its_charts_are_in_chinese(client, editor, reviewer):
    version = ModelVersionFactory(name="v1")
    review(generated(version, "The quick brown fox"), editor, reviewer, text="The quick red fox")
    DraftFactory(state=Draft.State.IN_REVIEW)
    chinese(client).force_login(editor)
    html = client.get(reverse("home")).content.decode()
    for text in (
        "<title>概览 · Copydesk</title>",  # page title
        ">队列</a>",  # navigation
        "各状态草稿数",  # the state chart
        "待编辑", "审核中", "已批准",  # state labels in the chart
        "各模型版本的采纳率",  # chart titles
        "各模型版本的平均编辑距离",
        "以表格查看：各模型版本的采纳率",  # the table alternative
        "95% 置信区间",
        "批准用时中位数",
        "退出登录",
    ):
        assert text in html, text
    for english in ("Drafts by state", "Ready for edit", "Acceptance rate per model version",
                    "Log out"):
        assert english not in html, english


@pytest.mark.django_db
def test_language_switcher_is_a_labelled_form_in_the_header(client, editor):
    client.force_login(editor)
    html = client.get(reverse("draft_queue") + "?state=ready").content.decode()
    header = re.search(r'<header class="site-header">(.*?)</header>', html, re.S).group(1)
    form = re.search(r'<form class="language-form"(.*?)</form>', header, re.S)
    assert form, "no language switcher in the header"
    form = form.group(0)
    assert f'action="{reverse("set_language")}" method="post"' in form
    assert 'name="csrfmiddlewaretoken"' in form
    assert '<input name="next" type="hidden" value="/drafts/?state=ready">' in form
    assert '<label for="language-select">Language</label>' in form
    assert '<select id="language-select" name="language">' in form
    assert '<option value="zh-hans" lang="zh-hans">简体中文</option>' in form
    assert '<option value="en" lang="en" selected>English</option>' in form
    assert '<button type="submit"' in form  # works without JavaScript


@pytest.mark.django_db
def test_switching_language_keeps_the_page_and_changes_the_ui(client, editor):
    client.force_login(editor)
    page = reverse("draft_queue") + "?state=ready"
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": page})
    assert response.status_code == 302 and response["Location"] == page
    html = client.get(page).content.decode()
    assert '<html lang="zh-hans">' in html and ">队列</a>" in html
    assert '<option value="zh-hans" lang="zh-hans" selected>简体中文</option>' in html

    client.post(reverse("set_language"), {"language": "en", "next": page})
    html = client.get(page).content.decode()
    assert '<html lang="en">' in html and ">Queue</a>" in html


@pytest.mark.django_db
def test_anonymous_visitors_can_switch_the_login_page_to_chinese(client):
    login = reverse("login")
    client.get(login)  # sets the CSRF cookie the form carries
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": login})
    assert response["Location"] == login
    assert "登录 Copydesk" in client.get(login).content.decode()


def _is_gettext_call(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in {"_", "gettext", "gettext_lazy", "ngettext"})


def test_every_workflow_refusal_is_translated():
    """A WorkflowError's message is shown to the user as it is: it must be built from gettext
    (or ``gettext(...) % {...}``), never from a bare or f-string literal."""
    bare = []
    for path in sorted((ROOT / "editorial").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "WorkflowError" and node.args):
                continue
            message = node.args[0]
            if isinstance(message, ast.BinOp) and isinstance(message.op, ast.Mod):
                message = message.left
            if not _is_gettext_call(message) and not isinstance(message, ast.Name):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bare == [], f"WorkflowError messages without gettext: {bare}"


@pytest.mark.django_db
def test_workflow_refusals_reach_chinese_editors_in_chinese(client, editor):
    draft = draft_with_text("A kettle made of stainless steel.")
    first = draft.current_revision_id
    client.force_login(editor)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    save = reverse("draft_save", args=[draft.pk])
    assert client.post(save, {"text": "Steel kettle.", "base_revision_id": first}
                       ).status_code == 302
    stale = client.post(save, {"text": "不锈钢水壶。", "base_revision_id": first})
    assert stale.status_code == 409
    assert "你编辑期间有其他人保存了修改" in stale.content.decode()

    # The API answers in the language the shop's system asks for.
    _token, key = services.api_token_create(user=editor, name="zh")
    api = APIClient(HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT_LANGUAGE="zh-hans")
    refused = api.post(reverse("api_draft_revisions", args=[draft.pk]),
                       {"text": "又一版。", "base_revision": first}, format="json")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "你编辑期间，其他人保存了修订版本 2。你的文本已保存为修订版本 4。")

    submit = reverse("draft_submit", args=[draft.pk])
    assert client.post(submit).status_code == 302
    again = client.post(submit)
    assert again.status_code == 409
    assert "状态为“审核中”的草稿不能提交。" in again.content.decode()


@pytest.mark.django_db
def test_check_flags_reach_chinese_editors_in_chinese(client, editor):
    from editorial import selectors

    text = "Mail me@example.com about this kettle."
    draft = draft_with_text(text)
    candidate = draft.current_revision.candidate
    stored_before_templates = {"code": "legacy", "severity": "info", "message": "An old note.",
                               "start": -1, "end": -1}
    candidate.flags = [*selectors.draft_text_checks(draft=draft, text=text),
                       stored_before_templates]
    candidate.save()
    client.force_login(editor)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"

    page = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert "文本包含电子邮件地址（“me@example.com”）。" in page
    assert "The text contains an e-mail address" not in page
    assert "An old note." in page  # no template stored: its English message, as it was

    live = client.post(reverse("draft_check", args=[draft.pk]),
                       {"text": "Call (555) 123-4567 today."}, headers={"HX-Request": "true"})
    assert "文本包含电话号码（“(555) 123-4567”）。" in live.content.decode()

    _token, key = services.api_token_create(user=editor, name="zh")
    url = reverse("api_draft_detail", args=[draft.pk])
    for language, expected in (("zh-hans", "文本包含电子邮件地址（“me@example.com”）。"),
                               ("en", 'The text contains an e-mail address ("me@example.com").')):
        api = APIClient(HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT_LANGUAGE=language)
        flags = api.get(url).json()["candidates"][0]["flags"]
        email = next(flag for flag in flags if flag["code"] == "email")
        assert email["message"] == expected
        assert email["params"] == {"found": "me@example.com"}


@pytest.mark.django_db
def test_import_problems_reach_chinese_editors_in_chinese(client, editor):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(editor)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    rows = "sku,title,colour\nK-1,水壶,红色\n,缺少货号,蓝色\nK-1,又一个水壶,绿色\n"
    report = client.post(reverse("catalog_import"), {
        "file": SimpleUploadedFile("catalog.csv", rows.encode("gb18030")), "format": "auto"})
    html = report.content.decode()
    assert report.status_code == 200
    assert "catalog.csv 不是 UTF-8 编码；已按 GB18030（中文）读取。" in html
    assert "缺少 sku" in html
    assert "sku“K-1”重复（首次出现在第 2 行）；已跳过此行" in html

    refused = client.post(reverse("catalog_import"), {
        "file": SimpleUploadedFile("catalog.csv", b"name,colour\nKettle,red\n"), "format": "csv"})
    assert refused.status_code == 400
    assert "catalog.csv 缺少必需的列" in refused.content.decode()


@pytest.mark.django_db
def test_the_server_error_page_speaks_the_readers_language(editor, monkeypatch):
    from django.test import Client

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr("editorial.selectors.draft_state_counts", broken)
    client = Client(raise_request_exception=False)
    client.force_login(editor)
    english = client.get(reverse("home"))
    assert english.status_code == 500
    assert "Something went wrong" in english.content.decode()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    chinese = client.get(reverse("home"))
    html = chinese.content.decode()
    assert chinese.status_code == 500
    assert '<html lang="zh-hans">' in html and "boom" not in html
    assert "出错了" in html and "Something went wrong" not in html


@pytest.mark.django_db
def test_decoding_parameter_errors_reach_chinese_editors_in_chinese(client, editor):
    from editorial.models import GenerationJob
    from generation import params
    from tests.factories import ProductFactory

    assert params._SEED_RANGE.endswith(str(params.MAX_SEED))
    ModelVersionFactory(name="default-model", is_default=True)
    product = ProductFactory()
    client.force_login(editor)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    form = client.post(reverse("generate"), {
        "scope": "selected", "products": [product.pk], "kinds": ["description"],
        "temperature": "0", "candidates": "9"})
    html = form.content.decode()
    assert form.status_code == 400
    assert "采样时必须大于 0" in html and "必须在 1 到 8 之间" in html

    _token, key = services.api_token_create(user=editor, name="zh")
    api = APIClient(HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT_LANGUAGE="zh-hans")
    refused = api.post(reverse("api_job_list"), {
        "skus": [product.sku], "kinds": ["description"], "params": {"temperature": 0}},
        format="json")
    assert refused.status_code == 400
    assert refused.json()["params"] == {"temperature": ["采样时必须大于 0"]}
    assert not GenerationJob.objects.exists()


@pytest.mark.django_db
def test_the_check_summary_reads_as_one_chinese_sentence(client, editor):
    draft = draft_with_text("Mail me@example.com about this kettle.")
    client.force_login(editor)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert "检查结果：1 个错误，1 个警告，0 个提示。" in html
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert "Checks: 1 error, 1 warning, 0 notes." in html


@pytest.mark.django_db
def test_stored_failure_reasons_reach_chinese_readers_in_chinese(client, admin_user, settings):
    from datetime import timedelta

    from django.utils import timezone

    from editorial.models import FineTuneRun, GenerationJob
    from tests.factories import ProductFactory

    ModelVersionFactory(name="default-model", is_default=True)
    job = services.generation_job_request(products=[ProductFactory()], kinds=["description"],
                                          params={}, user=admin_user, enqueue=False)
    services.generation_job_cancel(job=job, user=admin_user)
    draft = GenerationJob.objects.get(pk=job.pk).items.get().draft
    assert draft.error == "Generation was cancelled."

    run = services.finetune_run_request(base=job.model_version, name="v2", hyperparameters={},
                                        user=admin_user, enqueue=False)
    services.finetune_run_start(run_id=run.pk)
    FineTuneRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=2))
    assert services.generation_jobs_resume(queue_depth=lambda: 0).runs_failed == [run.pk]

    client.force_login(admin_user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    assert "生成已取消。" in client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    page = client.get(reverse("finetune_detail", args=[run.pk])).content.decode()
    assert "工作进程在微调时停止了" in page and "中断时正在加载模型和训练数据。" in page
