"""Usable first drafts (issue 13): each stored candidate is judged usable (no error flag), the
draft takes its best candidate's verdict, the draft page says plainly whether the first draft is
usable and why not, and the queue filters and marks drafts by it."""

import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from editorial.models import Candidate, Draft
from editorial.services import ItemOutcome, generation_job_request, generation_results_store
from tests.factories import DraftFactory, ModelVersionFactory, ProductFactory

pytestmark = pytest.mark.django_db

QUEUE = "/drafts/"
CLEAN = "A kettle made of stainless steel that boils 1.7 L."
MARKDOWN = "### Kettle\nA kettle made of stainless steel that boils 1.7 L."
INVENTED = "A kettle made of stainless steel that boils 3.5 L since 1998."


def generated(editor, *texts, product=None, example_facts=()) -> Draft:
    """A description draft whose generation stored ``texts`` as candidates (written from the
    examples of ``example_facts``' products)."""
    product = product or ProductFactory()
    job = generation_job_request(products=[product], kinds=["description"],
                                 params={"candidates": len(texts)}, user=editor,
                                 model_version=ModelVersionFactory(name="usable-model"))
    generation_results_store(job=job, outcomes=[
        ItemOutcome(item_id=item.pk, messages=[], texts=list(texts),
                    completion_tokens=[5] * len(texts), prompt_tokens=20, seconds=0.1, seed=1,
                    example_facts=list(example_facts))
        for item in job.items.all()
    ])
    return Draft.objects.get(product=product, kind="description")


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def section(html: str, element_id: str) -> str:
    match = re.search(rf'<section id="{element_id}".*?</section>', html, re.S)
    assert match, f"no #{element_id} on the page"
    return text_of(match.group(0))


# --- Stored with the candidates -------------------------------------------------------------------

def test_each_candidate_is_judged_and_the_draft_takes_its_best_candidates_verdict(editor):
    draft = generated(editor, MARKDOWN, CLEAN)
    by_text = {c.text: c for c in Candidate.objects.filter(draft=draft)}
    assert by_text[CLEAN].usable is True and by_text[CLEAN].rank == 0
    assert by_text[MARKDOWN].usable is False
    assert draft.usable is True
    assert draft.current_revision.text == CLEAN


def test_a_draft_whose_best_candidate_has_an_error_is_not_usable(editor):
    draft = generated(editor, MARKDOWN, INVENTED)
    assert draft.usable is False
    assert not Candidate.objects.filter(draft=draft, usable=True).exists()


def test_a_new_generation_judges_the_draft_again(editor):
    product = ProductFactory()
    assert generated(editor, MARKDOWN, product=product).usable is False
    assert generated(editor, CLEAN, product=product).usable is True


def test_a_candidate_naming_an_example_product_is_not_usable_and_says_which(client, editor):
    from editorial.facts import product_facts
    from generation.prompts import ProductFacts

    product = ProductFactory(title="Stål Frying Pan 28 cm", attributes={"diameter": "28 cm"},
                             source_text="")
    example = ProductFacts(sku="OTHER-1", title="Fjell Electric Kettle 1.7 L",
                           brand="Nordhavn Kitchen", attributes={"capacity": "1.7 L"})
    assert "Kettle" not in str(product_facts(product))
    text = f"The Fjell frying pan from {product.brand.name}, 28 cm across."
    draft = generated(editor, text, product=product, example_facts=[example])
    assert draft.usable is False
    flags = Candidate.objects.get(draft=draft).flags
    assert [f["params"]["found"] for f in flags if f["code"] == "example_fact"] == ["Fjell"]
    client.force_login(editor)
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert ('"Fjell" is a fact of another product (Fjell Electric Kettle 1.7 L) from the '
            "examples, not of this one.") in section(html, "first-draft")


# --- The draft page -----------------------------------------------------------------------------

def test_the_draft_page_says_the_first_draft_is_not_usable_and_why(client, editor):
    draft = generated(editor, MARKDOWN, INVENTED)
    client.force_login(editor)
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    verdict = section(html, "first-draft")
    assert verdict.startswith("The model's first draft is not usable.")
    best = Candidate.objects.get(draft=draft, rank=0)
    errors = [f for f in best.flags if f["severity"] == "error"]
    assert f"{len(errors)} error" in verdict
    for flag in errors:
        assert flag["message"] in verdict


def test_the_draft_page_says_the_first_draft_is_usable(client, editor):
    draft = generated(editor, CLEAN)
    client.force_login(editor)
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    verdict = section(html, "first-draft")
    assert verdict.startswith("The model's first draft is usable.")
    assert "in the product's language, invents no number, has no error flag" in verdict


def test_candidates_stored_before_the_verdict_are_judged_from_their_flags(client, editor):
    draft = generated(editor, MARKDOWN)
    Candidate.objects.filter(draft=draft).update(usable=None)
    Draft.objects.filter(pk=draft.pk).update(usable=None)
    client.force_login(editor)
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert section(html, "first-draft").startswith("The model's first draft is not usable.")


def test_a_draft_without_candidates_says_nothing_about_a_first_draft(client, editor):
    draft = DraftFactory()
    client.force_login(editor)
    html = client.get(reverse("draft_detail", args=[draft.pk])).content.decode()
    assert 'id="first-draft"' not in html


# --- The queue ----------------------------------------------------------------------------------

def queue_rows(html: str) -> dict[str, str]:
    """{SKU: the row's first-draft marker} for each row of the queue."""
    rows = {}
    for row in re.findall(r"<tr data-queue-row.*?</tr>", html, re.S):
        sku = re.search(r"data-row-link>([^<]*)</a>", row).group(1)
        marker = re.search(r'<td class="col-usable">(.*?)</td>', row, re.S).group(1)
        rows[unescape(sku)] = text_of(marker)
    return rows


@pytest.fixture
def three(editor):
    usable = generated(editor, CLEAN, product=ProductFactory(sku="USABLE-1"))
    unusable = generated(editor, MARKDOWN, product=ProductFactory(sku="UNUSABLE-1"))
    waiting = DraftFactory(product=ProductFactory(sku="WAITING-1"))
    return usable, unusable, waiting


def test_the_queue_marks_each_row_usable_not_usable_or_not_yet_judged(client, editor, three):
    client.force_login(editor)
    rows = queue_rows(client.get(QUEUE).content.decode())
    assert rows == {"USABLE-1": "Usable", "UNUSABLE-1": "Not usable", "WAITING-1": "—"}


@pytest.mark.parametrize("value, expected", [
    ("usable", ["USABLE-1"]),
    ("unusable", ["UNUSABLE-1"]),
    ("", ["UNUSABLE-1", "USABLE-1", "WAITING-1"]),
    ("nonsense", ["UNUSABLE-1", "USABLE-1", "WAITING-1"]),  # a stale bookmark: ignored
])
def test_the_queue_filters_by_usable_first_draft_without_javascript(
    client, editor, three, value, expected
):
    client.force_login(editor)
    html = client.get(QUEUE, {"usable": value}).content.decode()
    assert sorted(queue_rows(html)) == expected
    select = re.search(r'<select name="usable".*?</select>', html, re.S).group(0)
    assert "First draft" in html
    if value in {"usable", "unusable"}:
        assert re.search(rf'<option value="{value}" selected>', select)


def test_the_usable_filter_works_with_the_other_filters(client, editor, three):
    usable, unusable, _waiting = three
    Draft.objects.filter(pk=unusable.pk).update(state=Draft.State.IN_EDIT)
    client.force_login(editor)
    html = client.get(QUEUE, {"usable": "unusable", "state": "ready"}).content.decode()
    assert queue_rows(html) == {}
    html = client.get(QUEUE, {"usable": "unusable", "state": "in_edit"}).content.decode()
    assert list(queue_rows(html)) == ["UNUSABLE-1"]
    html = client.get(QUEUE, {"usable": "usable", "q": "USABLE"}).content.decode()
    assert list(queue_rows(html)) == ["USABLE-1"]
    # The state tabs count what the usable filter leaves.
    assert re.search(r'class="state-tab-ready"[^>]*>[^<]*<span class="tab-count">1<', html)


def test_the_usable_filter_costs_no_query_per_row(client, editor):
    client.force_login(editor)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(QUEUE, {"usable": "unusable"})
        assert response.status_code == 200
        return len(queries)

    for _ in range(3):
        DraftFactory(usable=False)
    few = count()
    for _ in range(30):
        DraftFactory(usable=False)
        DraftFactory(usable=True)
    assert count() == few
