"""One draft at a time: retry a failed draft alone, and regenerate from the editor with other
parameters while the text stays."""

import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from editorial.models import Candidate, Draft, GenerationJob, ModelVersion
from editorial.services import (
    ItemOutcome,
    WorkflowError,
    draft_regenerate,
    draft_retry_generation,
    generation_job_request,
    generation_results_store,
    model_version_register,
    revision_save,
)
from editorial.workers.generation import run_job_inline
from tests.factories import ModelVersionFactory, ProductFactory, draft_with_text

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def failed_draft(editor, **params):
    version = ModelVersionFactory(name="retry-model")
    job = generation_job_request(
        products=[ProductFactory()], kinds=["title"],
        params={"candidates": 3, "temperature": 0.9, **params}, user=editor,
        model_version=version,
    )
    outcomes = [ItemOutcome(item_id=item.pk, messages=[], texts=[], completion_tokens=[],
                            prompt_tokens=0, seconds=0, seed=1, error="CUDA out of memory")
                for item in job.items.all()]
    generation_results_store(job=job, outcomes=outcomes)
    draft = Draft.objects.get(job_items__job=job)
    assert (draft.state, draft.error) == (Draft.State.FAILED, "CUDA out of memory")
    return draft, job


# --- Retry -------------------------------------------------------------------------------------

def test_a_failed_draft_is_retried_alone_with_the_params_of_its_job(editor):
    draft, failed = failed_draft(editor)
    ProductFactory()  # another product, not part of the retry
    job = draft_retry_generation(draft=draft, user=editor)
    assert job.pk != failed.pk
    assert list(job.items.values_list("draft_id", flat=True)) == [draft.pk]
    assert (job.params, job.model_version, job.kinds) == (failed.params, failed.model_version,
                                                          ["title"])
    draft.refresh_from_db()
    assert (draft.state, draft.error) == (Draft.State.GENERATING, "")


def test_retry_falls_back_to_the_default_model_when_the_old_one_is_retired(editor):
    draft, failed = failed_draft(editor)
    ModelVersion.objects.filter(pk=failed.model_version_id).update(
        status=ModelVersion.Status.RETIRED
    )
    default = ModelVersionFactory(name="default-model", is_default=True)
    assert draft_retry_generation(draft=draft, user=editor).model_version == default


def test_only_failed_drafts_can_be_retried(editor, outsider):
    draft = draft_with_text()
    with pytest.raises(WorkflowError, match="Only failed drafts"):
        draft_retry_generation(draft=draft, user=editor)
    failed, _ = failed_draft(editor)
    with pytest.raises(PermissionDenied):
        draft_retry_generation(draft=failed, user=outsider)
    assert GenerationJob.objects.count() == 1


def test_retry_button_on_the_failed_draft_page(client, editor):
    draft, _ = failed_draft(editor)
    client.force_login(editor)
    url = reverse("draft_detail", args=[draft.pk])
    html = client.get(url).content.decode()
    assert reverse("draft_retry", args=[draft.pk]) in html
    assert "CUDA out of memory" in html
    response = client.post(reverse("draft_retry", args=[draft.pk]), **HTMX)
    assert response.status_code == 200
    job = GenerationJob.objects.latest("pk")
    assert f"Job #{job.pk}" in response.content.decode()
    assert reverse("draft_retry", args=[draft.pk]) not in response.content.decode()


def test_admin_action_retries_the_failed_drafts_and_reports_the_others(client, admin_user,
                                                                        editor):
    draft, _ = failed_draft(editor)
    ready = draft_with_text()
    client.force_login(admin_user)
    response = client.post(reverse("admin:editorial_draft_changelist"), {
        "action": "retry_generation", ACTION_CHECKBOX_NAME: [draft.pk, ready.pk],
    }, follow=True)
    html = response.content.decode()
    assert "Generation of 1 draft was sent again." in html
    assert "Only failed drafts can be retried" in html
    draft.refresh_from_db()
    assert draft.state == Draft.State.GENERATING


# --- Regenerate --------------------------------------------------------------------------------

def test_regenerate_creates_a_one_draft_job_with_the_new_params_and_keeps_the_text(
    client, editor, django_capture_on_commit_callbacks
):
    ModelVersionFactory(name="default-model", is_default=True)
    other = ModelVersionFactory(name="other-model")
    draft = draft_with_text("Model text.")
    revision_save(draft=draft, user=editor, text="Edited text.",
                  base_revision_id=draft.current_revision_id)
    client.force_login(editor)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("draft_regenerate", args=[draft.pk]), {
            "candidates": "3", "best_of": "8", "temperature": "1.1", "top_k": "20",
            "top_p": "0.8", "max_new_tokens": "40", "seed": "99", "model_version": other.pk,
        })
    assert len(callbacks) == 1  # the chunk goes to the broker after commit
    assert response.status_code == 302
    job = GenerationJob.objects.get()
    assert list(job.items.values_list("draft_id", flat=True)) == [draft.pk]
    assert job.model_version == other
    assert {k: job.params[k] for k in ("candidates", "best_of", "temperature", "top_k", "top_p",
                                       "max_new_tokens", "seed")} == {
        "candidates": 3, "best_of": 8, "temperature": 1.1, "top_k": 20, "top_p": 0.8,
        "max_new_tokens": 40, "seed": 99}
    draft.refresh_from_db()
    assert (draft.state, draft.current_revision.text) == (Draft.State.IN_EDIT, "Edited text.")


def test_regenerate_shows_param_errors_next_to_the_fields(client, editor):
    ModelVersionFactory(name="default-model", is_default=True)
    draft = draft_with_text()
    client.force_login(editor)
    response = client.post(reverse("draft_regenerate", args=[draft.pk]), {
        "temperature": "0", "top_p": "1.5", "candidates": "2",
    }, **HTMX)
    html = response.content.decode()
    assert response.status_code == 400
    for name, message in (("temperature", "must be &gt; 0 when sampling"),
                          ("top_p", "must be &gt; 0 and &lt;= 1")):
        field = re.search(rf'<div class="field">\s*<label for="id_regenerate_{name}".*?</div>',
                          html, re.S)
        assert field, f"no {name} field"
        assert message in field.group(0)
    assert "<details open>" in html
    assert not GenerationJob.objects.exists()


def test_regenerate_form_starts_from_the_last_jobs_params(client, editor):
    draft, _ = failed_draft(editor, seed=4321)
    client.force_login(editor)
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert re.search(r'name="seed" value="4321"', html)
    assert re.search(r'name="candidates" value="3"', html)


def test_people_without_a_role_cannot_regenerate(client, outsider, editor):
    draft = draft_with_text()
    client.force_login(outsider)
    assert client.post(reverse("draft_regenerate", args=[draft.pk]), {}).status_code == 403
    with pytest.raises(PermissionDenied):
        draft_regenerate(draft=draft, user=outsider, params={})


def test_regenerated_candidates_appear_on_the_draft_page(client, editor, tiny_model_dir):
    model_version_register(name="tiny", path=str(tiny_model_dir),
                           source=ModelVersion.Source.LOCAL, make_default=True)
    draft = draft_with_text("Model text.")
    before = set(draft.candidates.values_list("pk", flat=True))
    client.force_login(editor)
    response = client.post(reverse("draft_regenerate", args=[draft.pk]), {
        "candidates": "2", "max_new_tokens": "6", "seed": "3",
    }, **HTMX)
    assert response.status_code == 200
    job = GenerationJob.objects.get()
    html = response.content.decode()
    assert f"Job #{job.pk}" in html and 'hx-trigger="every 2s"' in html  # progress polls

    run_job_inline(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.SUCCEEDED
    new = Candidate.objects.filter(draft=draft).exclude(pk__in=before)
    assert 1 <= new.count() <= 2 and all(c.job_id == job.pk for c in new)
    page = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    for candidate in new:
        assert f'value="{candidate.pk}"' in page  # "Use this candidate" for each new one
    draft.refresh_from_db()
    assert draft.current_revision.text == "Model text."
    fragment = client.get(reverse("draft_jobs", args=[draft.pk]), **HTMX)
    assert fragment.status_code == 286  # polling stops: the job is done
