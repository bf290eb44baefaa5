"""A job page left open while its job runs: it follows the job to the end without a reload."""

import re

import pytest
from playwright.sync_api import expect

from editorial import services
from editorial.models import JobItem
from tests.factories import ModelVersionFactory, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def store_every_result(job) -> None:
    """What a worker does for the job's one chunk: every item gets a candidate."""
    claim = services.generation_chunk_claim(job_id=job.pk, number=0, worker="browser-test")
    services.generation_results_store(job=job, outcomes=[
        services.ItemOutcome(item_id=item.pk, messages=[{"role": "user", "content": "…"}],
                             texts=["A sturdy kettle of stainless steel."],
                             completion_tokens=[8], prompt_tokens=20, seconds=0.5, seed=n)
        for n, item in enumerate(JobItem.objects.filter(job=job).order_by("pk"))
    ])
    services.generation_chunk_finish(claim=claim)


def test_a_job_that_finishes_while_its_page_is_open_shows_the_finished_job(
        log_in, screenshot, htmx_settled):
    editor = UserFactory(username="edith", roles=["Editor"])
    ModelVersionFactory(name="default-model", is_default=True)
    job = services.generation_job_request(
        products=[ProductFactory(sku="KET-1"), ProductFactory(sku="KET-2")],
        kinds=["description"], params={}, user=editor, enqueue=False,
    )
    page = log_in("edith", f"/jobs/{job.pk}/")
    drafts = page.locator("#job-drafts-heading").locator("xpath=ancestor::section[1]")
    finished = page.locator("dt", has_text="Finished").locator("xpath=following-sibling::dd[1]")
    expect(drafts.locator(".state")).to_have_text(["Generating", "Generating"])
    expect(finished).to_have_text("—")
    page.evaluate("window.notReloaded = true")
    polls = []
    page.on("request", lambda request: polls.append(request.url)
            if request.headers.get("hx-request") else None)

    store_every_result(job)

    expect(page.locator("#job-progress .job-status")).to_have_text("Succeeded")
    expect(drafts.locator(".state")).to_have_text(["Ready for edit", "Ready for edit"])
    expect(finished).not_to_have_text("—")
    expect(finished).to_have_text(re.compile(r"\d"))
    expect(page.get_by_role("link", name="Open this job's drafts in the queue")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    htmx_settled(page)
    screenshot(page, "job-finished-live")

    # The last answer stopped the polling: no more requests once the job is shown finished.
    seen = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == seen
    assert page.locator("#job-section").count() == 1
    assert page.locator("#job-progress").count() == 1
