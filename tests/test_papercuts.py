"""Small things readers saw on the demo: a job page that stayed stale when its job ended,
candidates of one job out of rank order, and the built-in content kinds in English in the
Chinese UI."""

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.template.defaultfilters import date as date_filter
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.functional import Promise
from rest_framework.test import APIClient

from editorial import selectors, services
from editorial.models import Candidate, ContentKind, Draft, GenerationJob, JobItem
from tests.factories import DraftFactory, ModelVersionFactory, ProductFactory, draft_with_text, kind

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
State = Draft.State


def finish_job(job: GenerationJob, *, failing: int = 0) -> GenerationJob:
    """Store results for every item as a worker does (the first ``failing`` items fail)."""
    claim = services.generation_chunk_claim(job_id=job.pk, number=0, worker="test")
    outcomes = [
        services.ItemOutcome(
            item_id=item.pk, messages=[{"role": "user", "content": "…"}],
            texts=[] if n < failing else ["A sturdy kettle of stainless steel."],
            completion_tokens=[] if n < failing else [8], prompt_tokens=20, seconds=0.5,
            seed=n, error="boom" if n < failing else "",
        )
        for n, item in enumerate(JobItem.objects.filter(job=job).order_by("pk"))
    ]
    services.generation_results_store(job=job, outcomes=outcomes)
    services.generation_chunk_finish(claim=claim)
    job.refresh_from_db()
    return job


def state_cells(html: str) -> list[str]:
    """The drafts table's states, in the order shown."""
    return re.findall(r'<span class="state state-\w+">([^<]*)</span>', html)


def finished_text(job: GenerationJob) -> str:
    return date_filter(timezone.localtime(job.finished_at), "DATETIME_FORMAT")


# --- 1. The job page follows its job to the end -----------------------------------------------


@pytest.fixture
def job(editor):
    ModelVersionFactory(name="default-model", is_default=True)
    return services.generation_job_request(
        products=[ProductFactory(sku="KET-1"), ProductFactory(sku="KET-2")],
        kinds=["description"], params={}, user=editor, enqueue=False,
    )


def test_the_last_poll_brings_the_finished_drafts_and_the_finished_time(client, editor, job):
    client.force_login(editor)
    url = reverse("job_detail", args=[job.pk])
    page = client.get(url).content.decode()
    assert state_cells(page) == ["Generating", "Generating"]
    assert re.search(r"<dt>Finished</dt><dd>—</dd>", page)
    assert 'id="job-section"' in page

    running = client.get(url, **HTMX)
    assert running.status_code == 200
    assert 'hx-trigger="every 1s"' in running.content.decode()
    assert "HX-Retarget" not in running.headers

    job = finish_job(job, failing=1)
    assert job.status == GenerationJob.Status.PARTIAL
    last = client.get(url, **HTMX)
    html = last.content.decode()
    assert last.status_code == 286  # htmx stops polling
    assert last.headers["HX-Retarget"] == "#job-section"
    assert last.headers["HX-Reswap"] == "outerHTML"
    assert "<html" not in html and "hx-trigger" not in html
    assert html.lstrip().startswith('<div id="job-section">')
    assert sorted(state_cells(html)) == ["Failed", "Ready for edit"]
    assert f"<dt>Finished</dt><dd>{finished_text(job)}</dd>" in html
    assert "Finished with failures" in html
    assert f'href="{reverse("draft_queue")}?job={job.pk}"' in html


def test_a_running_poll_stays_small_without_the_drafts_table(client, editor, job):
    client.force_login(editor)
    html = client.get(reverse("job_detail", args=[job.pk]), **HTMX).content.decode()
    assert 'id="job-progress"' in html
    assert state_cells(html) == [] and "KET-1" not in html


def test_cancelling_from_the_page_shows_the_drafts_failed_at_once(client, editor, job):
    client.force_login(editor)
    response = client.post(reverse("job_cancel", args=[job.pk]), **HTMX)
    html = response.content.decode()
    job.refresh_from_db()
    assert response.status_code == 286
    assert response.headers["HX-Retarget"] == "#job-section"
    assert state_cells(html) == ["Failed", "Failed"]
    assert f"<dt>Finished</dt><dd>{finished_text(job)}</dd>" in html


def test_the_job_page_names_its_kinds_by_label(client, editor):
    ModelVersionFactory(name="default-model", is_default=True)
    job = services.generation_job_request(
        products=[ProductFactory()], kinds=["slogan", "seo_title"], params={}, user=editor,
        enqueue=False,
    )
    client.force_login(editor)
    for url in (reverse("job_detail", args=[job.pk]), reverse("job_list"), reverse("home")):
        assert "Slogan / ad line, SEO title" in client.get(url).content.decode(), url


# --- 2. Candidates by job, then by rank --------------------------------------------------------


def test_candidates_of_one_job_are_listed_by_rank_whatever_their_creation_order(client, editor):
    draft = draft_with_text(product__sku="KET-9")
    version = ModelVersionFactory(name="factory-model")
    older_job = GenerationJob.objects.create(model_version=version, kinds=["description"])
    newer_job = GenerationJob.objects.create(model_version=version, kinds=["description"])
    start = timezone.now() - timedelta(hours=1)
    GenerationJob.objects.filter(pk=older_job.pk).update(created_at=start)
    GenerationJob.objects.filter(pk=newer_job.pk).update(created_at=start + timedelta(minutes=5))

    def candidate(job, rank, *, stored_after):
        row = Candidate.objects.create(draft=draft, job=job, index=rank + 1, rank=rank,
                                       text=f"job {job.pk} rank {rank}", model_version=version)
        Candidate.objects.filter(pk=row.pk).update(created_at=stored_after)
        return row

    # Within each job the worse-ranked candidate was stored a microsecond later.
    older = [candidate(older_job, r, stored_after=start + timedelta(microseconds=2 - r))
             for r in (0, 1)]
    newer = [candidate(newer_job, r, stored_after=start + timedelta(minutes=5, microseconds=r))
             for r in (1, 0)]
    newer.reverse()
    jobless = Candidate.objects.get(draft=draft, job=None)  # the first, stored long ago
    Candidate.objects.filter(pk=jobless.pk).update(created_at=start - timedelta(days=1))

    expected = [*newer, *older, jobless]
    assert [c.pk for c in selectors.draft_candidate_list(draft=draft)] == [c.pk for c in expected]

    client.force_login(editor)
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    shown = [int(pk) for pk in re.findall(r'<strong id="candidate-(\d+)-heading">', html)]
    assert shown == [c.pk for c in expected]
    headings = re.findall(r'<strong id="candidate-\d+-heading">([^<]*)</strong>', html)
    assert headings == ["Rank 1", "Rank 2", "Rank 1", "Rank 2", "Rank 1"]

    api = APIClient()
    api.force_authenticate(editor)
    listed = api.get(reverse("api_draft_detail", args=[draft.pk])).json()["candidates"]
    assert [c["id"] for c in listed] == [c.pk for c in expected]


# --- 3. The shipped kinds speak the reader's language ------------------------------------------

FAKE_ZH = {"Description": "描述", "Title": "标题", "Slogan / ad line": "标语 / 广告语"}


@pytest.fixture
def kind_catalogue(monkeypatch):
    """Stand-in translations of the shipped kinds' labels, for tests that must pass before the
    real ones are merged into the catalogue. Everything else is translated as usual."""
    real = translation._trans.pgettext

    def pgettext(context, message):
        if context == "content kind" and translation.get_language() == "zh-hans":
            return FAKE_ZH.get(message, message)
        return real(context, message)

    monkeypatch.setattr(translation._trans, "pgettext", pgettext)


@pytest.fixture
def chinese(client, editor):
    client.force_login(editor)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


def test_a_shipped_kinds_label_is_a_lazy_translation_of_its_seeded_label():
    description = kind("description")
    assert isinstance(description.display_label, Promise)
    assert description.display_label._args == ("content kind", "Description")
    with translation.override("en"):
        assert str(description.display_label) == "Description" == str(description)


def test_an_admins_own_kind_and_a_renamed_shipped_kind_show_as_stored(kind_catalogue):
    ContentKind.objects.filter(code="title").update(label="Product name")
    care = ContentKind.objects.create(code="care", label="Care instructions", instructions="…")
    # An admin's kind that reuses a shipped label under another code is still their own.
    faq = ContentKind.objects.create(code="faq_long", label="Description", instructions="…")
    with translation.override("zh-hans"):
        assert kind("title").display_label == "Product name"
        assert care.display_label == "Care instructions" == str(care)
        assert faq.display_label == "Description"
        assert str(kind("description").display_label) == "描述"


def test_chinese_readers_see_shipped_kinds_translated_on_every_page(chinese, editor, reviewer,
                                                                     kind_catalogue):
    draft = draft_with_text(product__sku="KET-1", product__title="Kettle")
    DraftFactory(product=draft.product, kind=kind("slogan"))
    ModelVersionFactory(name="default-model", is_default=True)
    job = services.generation_job_request(products=[draft.product], kinds=["title"], params={},
                                          user=editor, enqueue=False)

    queue = chinese.get(reverse("draft_queue")).content.decode()
    assert "<td>描述</td>" in queue and "<td>标语 / 广告语</td>" in queue
    assert re.search(r'<option value="description"[^>]*>描述</option>', queue)  # the filter
    assert ">Description<" not in queue

    page = chinese.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert re.search(r"<title>KET-1 · 描述", page)
    assert re.search(r'<nav class="breadcrumbs"[^>]*>.*<span>描述</span>', page, re.S)
    assert '<span class="subtitle">描述</span>' in page

    products = chinese.get(reverse("product_list")).content.decode()
    assert re.search(r'<input type="checkbox" name="kinds" value="title"[^>]*>\s*标题', products)

    for url in (reverse("job_detail", args=[job.pk]), reverse("home")):
        assert "标题" in chinese.get(url).content.decode(), url

    chinese.force_login(reviewer)
    export = chinese.get(reverse("copy_export")).content.decode()
    assert re.search(r'<option value="slogan"[^>]*>标语 / 广告语</option>', export)


def test_chinese_queue_and_draft_page_show_the_real_kind_translations(chinese):
    """Needs the kinds' translations merged into locale/zh_Hans (msgctxt "content kind")."""
    draft = draft_with_text(product__sku="KET-1")
    DraftFactory(product=draft.product, kind=kind("title"))
    DraftFactory(product=draft.product, kind=kind("slogan"))

    queue = chinese.get(reverse("draft_queue")).content.decode()
    assert "<td>描述</td>" in queue and "<td>标题</td>" in queue
    assert "<td>标语 / 广告语</td>" in queue

    page = chinese.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert re.search(r'<nav class="breadcrumbs"[^>]*>.*<span>描述</span>', page, re.S)
    assert '<span class="subtitle">描述</span>' in page
