"""The review queue: filters, search, sort, pages and state counts as the page shows them; claim,
assign and unassign; bulk approve / reject / assign with their per-draft reports; who may do
what; and a query count that does not grow with the number of drafts."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from editorial import selectors, services
from editorial.models import AuditEvent, Candidate, Draft, Product, ReviewDecision, Revision
from tests.factories import (
    BrandFactory,
    DraftFactory,
    ModelVersionFactory,
    UserFactory,
    draft_with_text,
    kind,
)
from tests.factories import in_review as submitted

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
QUEUE = "/drafts/"
BULK = "/drafts/bulk/"
State = Draft.State
CLEAN = "A sturdy kettle of stainless steel, edited by a person."
BLOCKED = "A sturdy kettle of stainless steel, guaranteed to please."  # "guaranteed": an error


# --- Helpers -----------------------------------------------------------------------------------

def get(client, params=None, **extra):
    response = client.get(QUEUE, params or {}, **extra)
    assert response.status_code == 200
    return response.content.decode()


def skus(html: str) -> list[str]:
    """The SKUs of the queue's rows, in the order shown."""
    return [unescape(s) for s in re.findall(r'<a href="/drafts/\d+/" data-row-link>([^<]*)</a>',
                                            html)]


def tab_counts(html: str) -> dict[str, int]:
    """The state tabs: {state: count}, and "all"."""
    counts = {"all": int(re.search(r'>All <span class="tab-count">(\d+)</span>', html)[1])}
    for state, count in re.findall(
        r'class="state-tab-(\w+)[^"]*" href="[^"]*"[^>]*>[^<]*<span class="tab-count">(\d+)<',
        html,
    ):
        counts[state] = int(count)
    return counts


def in_review(editor, text=CLEAN, **kwargs) -> Draft:
    return submitted(editor, text, **kwargs)


def flagged(draft: Draft, severity: str) -> Draft:
    version = ModelVersionFactory(name="flag-model")
    Candidate.objects.create(
        draft=draft, index=9, text="…", model_version=version,
        flags=[{"code": "c", "severity": severity, "message": "m", "start": -1, "end": -1}],
    )
    return draft


def seen(*drafts: Draft) -> list[str]:
    """What the queue posts for the rows it showed: each draft's revision at that time."""
    return [f"{d.pk}:{d.current_revision_id}" for d in drafts]


def report(html: str) -> str:
    match = re.search(r'<div class="bulk-report[^>]*>(.*?)</div>', html, re.S)
    assert match, "no report on the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", "", match[1])).split())


# --- Filters -----------------------------------------------------------------------------------

def test_state_tab_shows_only_drafts_in_that_state(client, editor):
    ready = DraftFactory(state=State.READY)
    review = DraftFactory(state=State.IN_REVIEW)
    client.force_login(editor)
    html = get(client, {"state": "in_review"})
    assert skus(html) == [review.product.sku]
    assert re.search(r'class="state-tab-in_review"[^>]*aria-current="true"', html)
    assert ready.product.sku in get(client, {"state": "ready"})


def test_brand_category_and_kind_filters(client, editor):
    acme, other = BrandFactory(name="Acme"), BrandFactory(name="Other")
    a = DraftFactory(product__brand=acme, product__category="kitchen")
    b = DraftFactory(product__brand=other, product__category="garden")
    c = DraftFactory(product__brand=acme, product__category="garden", kind=kind("title"))
    client.force_login(editor)
    assert sorted(skus(get(client, {"brand": acme.pk}))) == sorted([a.product.sku,
                                                                    c.product.sku])
    assert sorted(skus(get(client, {"category": "garden"}))) == sorted([b.product.sku,
                                                                        c.product.sku])
    assert skus(get(client, {"kind": "title"})) == [c.product.sku]
    assert skus(get(client, {"brand": acme.pk, "category": "garden"})) == [c.product.sku]


def test_the_filter_lists_are_read_once_with_a_plain_query(client, editor):
    """Each of the queue's short lists (brands, kinds, model versions) is one query however
    often the form reads it, and it is not streamed through a server-side cursor (which costs
    three round trips on PostgreSQL): a model version listed for the filter is read again by
    nobody."""
    from editorial.forms import QueueFilterForm

    BrandFactory(name="Acme"), BrandFactory(name="Other")
    ModelVersionFactory(name="old-model")
    form = QueueFilterForm({})
    with CaptureQueriesContext(connection) as queries:
        for _ in range(2):
            brands = [label for _value, label in form.fields["brand"].choices]
            versions = [label for _value, label in form.fields["model_version"].choices]
        html = str(form["brand"]) + str(form["model_version"])
    assert "Acme" in brands and "Other" in brands and "old-model" in map(str, versions)
    assert "Acme" in html and "old-model" in html
    assert len(queries) == 2
    assert not any(q["sql"].lstrip().upper().startswith("DECLARE") for q in queries)


def test_assignee_filter_mine_unassigned_and_a_named_editor(client, editor):
    other = UserFactory(username="otto", roles=["Editor"])
    mine = DraftFactory(assignee=editor, state=State.IN_EDIT)
    theirs = DraftFactory(assignee=other, state=State.IN_EDIT)
    nobody = DraftFactory()
    client.force_login(editor)
    assert skus(get(client, {"assignee": "mine"})) == [mine.product.sku]
    assert skus(get(client, {"assignee": "unassigned"})) == [nobody.product.sku]
    html = get(client, {"assignee": str(other.pk)})
    assert skus(html) == [theirs.product.sku]
    # The editors are offered by name in the filter, with "me" and "unassigned".
    assert f'<option value="{other.pk}" selected>otto</option>' in html
    assert 'value="mine"' in html and 'value="unassigned"' in html


def test_model_version_filter_matches_drafts_with_a_candidate_from_it(client, editor):
    old, new = ModelVersionFactory(name="old-model"), ModelVersionFactory(name="new-model")
    a, b = DraftFactory(), DraftFactory()
    Candidate.objects.create(draft=a, index=0, text="x", model_version=old)
    Candidate.objects.create(draft=b, index=0, text="y", model_version=new)
    Candidate.objects.create(draft=b, index=1, text="z", model_version=old)
    client.force_login(editor)
    assert skus(get(client, {"model_version": new.pk})) == [b.product.sku]
    assert sorted(skus(get(client, {"model_version": old.pk}))) == sorted(
        [a.product.sku, b.product.sku])


def test_flags_filter_counts_blocking_and_warning_flags_but_not_info(client, editor):
    blocking = flagged(DraftFactory(), "error")
    warning = flagged(DraftFactory(), "warning")
    info = flagged(DraftFactory(), "info")
    bare = DraftFactory()
    client.force_login(editor)
    html = get(client, {"flags": "flagged"})
    assert sorted(skus(html)) == sorted([blocking.product.sku, warning.product.sku])
    assert sorted(skus(get(client, {"flags": "clean"}))) == sorted([info.product.sku,
                                                                    bare.product.sku])
    # Flagged rows say so.
    assert html.count('class="tag tag-flagged"') == 2


def test_search_matches_sku_title_and_current_text(client, editor):
    by_sku = DraftFactory(product__sku="ZZ-PEAR-1", product__title="Plain")
    by_title = DraftFactory(product__title="Copper teapot")
    by_text = draft_with_text("Pours without a drip, every time.")
    DraftFactory(product__title="Toaster")
    client.force_login(editor)
    assert skus(get(client, {"q": "pear"})) == [by_sku.product.sku]
    assert skus(get(client, {"q": "COPPER"})) == [by_title.product.sku]
    assert skus(get(client, {"q": "without a drip"})) == [by_text.product.sku]


def test_search_finds_the_current_text_not_an_older_revision(client, editor):
    draft = draft_with_text("Original model words.")
    services.revision_save(draft=draft, user=editor, text="Rewritten by a person.",
                           base_revision_id=draft.current_revision_id)
    client.force_login(editor)
    assert skus(get(client, {"q": "rewritten"})) == [draft.product.sku]
    assert skus(get(client, {"q": "original model"})) == []


def test_an_unknown_filter_value_is_ignored_not_an_error(client, editor):
    draft = DraftFactory()
    client.force_login(editor)
    html = get(client, {"brand": "99999", "sort": "nonsense", "per_page": "7", "state": "x"})
    assert skus(html) == [draft.product.sku]


# --- Sort and pages ----------------------------------------------------------------------------

@pytest.fixture
def three(editor):
    b = DraftFactory(product__sku="B-2", product__title="Apple", state=State.IN_REVIEW)
    a = DraftFactory(product__sku="A-1", product__title="Cherry", state=State.REJECTED)
    c = DraftFactory(product__sku="C-3", product__title="Banana", state=State.READY)
    now = timezone.now()
    for minutes, draft in ((3, a), (1, b), (2, c)):  # b newest, a oldest
        Draft.objects.filter(pk=draft.pk).update(
            updated_at=now - timedelta(minutes=minutes)
        )
    return a, b, c


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("", ["A-1", "B-2", "C-3"]),
        ("sku", ["A-1", "B-2", "C-3"]),
        ("-sku", ["C-3", "B-2", "A-1"]),
        ("title", ["B-2", "C-3", "A-1"]),
        ("-title", ["A-1", "C-3", "B-2"]),
        ("updated", ["A-1", "C-3", "B-2"]),
        ("-updated", ["B-2", "C-3", "A-1"]),
        ("state", ["C-3", "B-2", "A-1"]),  # workflow order: ready, in review, rejected
        ("-state", ["A-1", "B-2", "C-3"]),
    ],
)
def test_sort(client, editor, three, sort, expected):
    client.force_login(editor)
    html = get(client, {"sort": sort})
    assert skus(html) == expected
    if sort:
        assert f'<option value="{sort}" selected>' in html


def test_page_size_is_selectable_and_pages_keep_the_filters(client, editor):
    brand = BrandFactory(name="Paged")
    for _ in range(30):
        DraftFactory(product__brand=brand)
    DraftFactory()  # another brand, filtered out
    client.force_login(editor)
    html = get(client, {"brand": brand.pk, "per_page": "25"})
    assert len(skus(html)) == 25
    assert "Page 1 of 2" in html
    assert '<option value="25" selected>' in html
    next_link = unescape(re.search(r'<a href="([^"]+)"[^>]*rel="next"', html)[1])
    assert f"brand={brand.pk}" in next_link and "per_page=25" in next_link
    html = client.get(next_link).content.decode()
    assert len(skus(html)) == 5 and "Page 2 of 2" in html
    assert len(skus(get(client, {"per_page": "100"}))) == 31
    assert len(skus(get(client))) == 31  # 50 by default
    assert '<option value="50" selected>' in get(client)


# --- State counts ------------------------------------------------------------------------------

def test_state_counts_follow_the_other_filters_but_not_the_state(client, editor):
    acme = BrandFactory(name="Acme")
    DraftFactory.create_batch(2, product__brand=acme, state=State.READY)
    DraftFactory(product__brand=acme, state=State.IN_REVIEW)
    DraftFactory.create_batch(4, state=State.READY)  # another brand
    client.force_login(editor)
    counts = tab_counts(get(client))
    assert counts["all"] == 7 and counts["ready"] == 6 and counts["in_review"] == 1
    counts = tab_counts(get(client, {"brand": acme.pk, "state": "in_review"}))
    assert counts["all"] == 3 and counts["ready"] == 2 and counts["in_review"] == 1
    assert counts["approved"] == 0


def test_state_tabs_keep_the_other_filters_in_their_links(client, editor):
    acme = BrandFactory(name="Acme")
    DraftFactory(product__brand=acme)
    client.force_login(editor)
    html = get(client, {"brand": acme.pk, "q": "kettle", "page": "1"})
    link = unescape(re.search(r'class="state-tab-in_review[^"]*" href="([^"]+)"', html)[1])
    assert link.startswith(QUEUE)
    assert f"brand={acme.pk}" in link and "q=kettle" in link and "state=in_review" in link
    assert "page=" not in link


# --- htmx and plain forms ----------------------------------------------------------------------

def test_htmx_filtering_returns_only_the_results_and_updates_the_state_field(client, editor):
    draft = DraftFactory(state=State.IN_REVIEW)
    client.force_login(editor)
    html = get(client, {"state": "in_review"}, **HTMX)
    assert "<html" not in html and 'id="queue-filters"' not in html
    assert 'id="queue-results"' in html and skus(html) == [draft.product.sku]
    assert re.search(r'<input type="hidden" name="state" id="id_state" value="in_review" '
                     r'hx-swap-oob="true">', html)


def test_the_full_page_is_a_plain_get_form_that_pushes_its_url_with_htmx(client, editor):
    client.force_login(editor)
    html = get(client, {"state": "ready", "brand": ""})
    form = re.search(r'<form id="queue-filters"[^>]*>', html)[0]
    assert 'method="get"' in form and f'action="{QUEUE}"' in form
    assert 'hx-push-url="true"' in form and 'hx-target="#queue-results"' in form
    for name in ("q", "brand", "category", "kind", "assignee", "model_version", "flags", "sort",
                 "per_page"):
        assert f'name="{name}"' in form or f'name="{name}"' in html
    assert '<input type="hidden" name="state" value="ready" id="id_state">' in html
    assert "hx-swap-oob" not in html
    assert "js/shortcuts.js" in html and 'id="shortcuts-help"' in html


# --- Permissions -------------------------------------------------------------------------------

def test_anonymous_users_are_sent_to_log_in(client):
    draft = DraftFactory()
    for response in (client.get(QUEUE), client.post(BULK, {"claim": draft.pk}),
                     client.get(reverse("shortcuts_help"))):
        assert response.status_code == 302 and "/login/" in response["Location"]
    draft.refresh_from_db()
    assert draft.assignee is None


def test_outsiders_get_403_for_the_page_the_fragment_and_every_action(client, outsider):
    draft = DraftFactory()
    client.force_login(outsider)
    assert client.get(QUEUE).status_code == 403
    assert client.get(QUEUE, {"state": "ready"}, **HTMX).status_code == 403
    assert client.get(reverse("shortcuts_help")).status_code == 403
    assert client.post(BULK, {"claim": draft.pk}, **HTMX).status_code == 403
    assert client.post(BULK, {"action": "approve", "drafts": [draft.pk]}).status_code == 403
    draft.refresh_from_db()
    assert draft.assignee is None


def test_editors_cannot_bulk_approve_or_reject_even_with_htmx(client, editor):
    draft = in_review(editor)
    client.force_login(editor)
    html = get(client)
    assert 'value="approve"' not in html and 'value="reject"' not in html
    for data in ({"action": "approve", "drafts": [draft.pk]},
                 {"action": "reject", "drafts": [draft.pk], "comment": "No."}):
        assert client.post(BULK, data, **HTMX).status_code == 403
        assert client.post(BULK, data).status_code == 403
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW
    assert not ReviewDecision.objects.exists()


def test_editors_cannot_assign_drafts_to_others(client, editor):
    other = UserFactory(username="otto", roles=["Editor"])
    draft = DraftFactory()
    client.force_login(editor)
    html = get(client)
    assert f'<option value="{other.pk}">otto</option>' not in re.search(
        r'<select name="assignee" id="id_assignee_bulk".*?</select>', html, re.S)[0]
    response = client.post(BULK, {"action": "assign", "drafts": [draft.pk],
                                  "assignee": str(other.pk)}, **HTMX)
    assert response.status_code == 400  # not a choice they have
    draft.refresh_from_db()
    assert draft.assignee is None


def test_the_assign_service_refuses_editors_assigning_others(editor):
    other = UserFactory(username="otto", roles=["Editor"])
    draft = DraftFactory()
    with pytest.raises(PermissionDenied):
        services.draft_assign(draft=draft, user=editor, assignee=other)
    with pytest.raises(PermissionDenied):
        services.draft_bulk_assign(drafts=[draft], user=editor, assignee=other)
    assert not AuditEvent.objects.filter(verb="draft.assign").exists()


def test_editors_cannot_unassign_someone_elses_draft(client, editor):
    other = UserFactory(username="otto", roles=["Editor"])
    draft = DraftFactory(assignee=other, state=State.IN_EDIT)
    client.force_login(editor)
    assert 'name="unassign"' not in get(client)
    assert client.post(BULK, {"unassign": draft.pk}, **HTMX).status_code == 403
    draft.refresh_from_db()
    assert draft.assignee == other


def test_bulk_actions_refuse_get(client, reviewer):
    client.force_login(reviewer)
    assert client.get(BULK).status_code == 405


# --- Claim, assign, unassign -------------------------------------------------------------------

def test_editor_claims_and_unassigns_from_the_queue_and_both_are_audited(client, editor):
    draft = DraftFactory(state=State.READY)
    client.force_login(editor)
    html = get(client)
    assert re.search(rf'<button type="submit" name="claim" value="{draft.pk}"', html)
    html = client.post(BULK, {"claim": draft.pk, "query": "state=ready"},
                       **HTMX).content.decode()
    draft.refresh_from_db()
    assert draft.assignee == editor and draft.state == State.IN_EDIT
    assert "1 draft claimed." in report(html)
    # The results re-render for the same filters: the claimed draft left "ready".
    assert skus(html) == []
    assert tab_counts(html)["in_edit"] == 1
    html = client.post(BULK, {"unassign": draft.pk}, **HTMX).content.decode()
    draft.refresh_from_db()
    assert draft.assignee is None and draft.state == State.READY
    assert "1 draft unassigned." in report(html)
    verbs = list(AuditEvent.objects.filter(object_id=str(draft.pk)).order_by("pk")
                 .values_list("verb", "actor"))
    assert verbs == [("draft.claim", editor.pk), ("draft.unassign", editor.pk)]


def test_reviewer_assigns_selected_drafts_to_an_editor_and_each_is_audited(
    client, reviewer, editor
):
    a, b = DraftFactory(state=State.READY), DraftFactory(state=State.IN_REVIEW)
    generating = DraftFactory(state=State.GENERATING)
    client.force_login(reviewer)
    html = get(client)
    assert f'<option value="{editor.pk}">edith</option>' in html
    html = client.post(BULK, {"action": "assign", "drafts": [a.pk, b.pk, generating.pk],
                              "assignee": str(editor.pk)}, **HTMX).content.decode()
    text = report(html)
    assert "2 drafts assigned to edith, 1 skipped:" in text
    assert f"{generating.product.sku}" in text and "cannot be assigned" in text
    a.refresh_from_db(), b.refresh_from_db(), generating.refresh_from_db()
    assert (a.assignee, a.state) == (editor, State.IN_EDIT)
    assert (b.assignee, b.state) == (editor, State.IN_REVIEW)
    assert generating.assignee is None
    events = AuditEvent.objects.filter(verb="draft.assign").order_by("pk")
    assert [(e.object_id, e.actor_id, e.data) for e in events] == [
        (str(a.pk), reviewer.pk, {"assignee": editor.pk, "previous": None}),
        (str(b.pk), reviewer.pk, {"assignee": editor.pk, "previous": None}),
    ]


def test_only_editor_group_members_can_be_assigned(reviewer):
    other_reviewer = UserFactory(username="rita", roles=["Reviewer"])
    draft = DraftFactory()
    with pytest.raises(services.WorkflowError, match="not an editor"):
        services.draft_assign(draft=draft, user=reviewer, assignee=other_reviewer)
    # Anyone who edits may take a draft themselves.
    services.draft_assign(draft=draft, user=reviewer, assignee=reviewer)
    draft.refresh_from_db()
    assert draft.assignee == reviewer


def test_reviewer_unassigns_an_editors_draft(client, reviewer, editor):
    draft = DraftFactory(assignee=editor, state=State.IN_EDIT)
    client.force_login(reviewer)
    assert re.search(rf'name="unassign" value="{draft.pk}"', get(client))
    client.post(BULK, {"unassign": draft.pk}, **HTMX)
    draft.refresh_from_db()
    assert draft.assignee is None
    event = AuditEvent.objects.get(verb="draft.unassign")
    assert event.actor == reviewer and event.data == {"previous": editor.pk}


# --- Bulk approve and reject -------------------------------------------------------------------

def test_bulk_approve_approves_clean_drafts_and_says_why_it_skipped_the_others(
    client, editor, reviewer
):
    clean = [in_review(editor, product__sku=f"OK-{n}") for n in range(3)]
    blocked = in_review(editor, text=BLOCKED, product__sku="BLOCKED-1")
    not_in_review = draft_with_text(product__sku="READY-1")
    client.force_login(reviewer)
    ids = [d.pk for d in [*clean, blocked, not_in_review]]
    response = client.post(BULK, {"action": "approve", "drafts": ids, "query": "sort=-sku",
                                  "seen": seen(*clean, blocked, not_in_review)}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    text = report(html)
    assert text.startswith("3 drafts approved, 2 skipped:")
    assert re.search(r"BLOCKED-1 · \w+: Blocking flags: .*guarantee", text)
    assert "READY-1 · Description: It is ready for edit, not in review." in text
    # The results are the same sorted queue, re-rendered.
    assert skus(html)[0] == "READY-1"
    for draft in clean:
        draft.refresh_from_db()
        assert draft.state == State.APPROVED
        assert draft.approved_revision_id == draft.current_revision_id
        assert draft.approved_by == reviewer
    blocked.refresh_from_db(), not_in_review.refresh_from_db()
    assert blocked.state == State.IN_REVIEW and not_in_review.state == State.READY
    decisions = ReviewDecision.objects.filter(decision="approve")
    assert sorted(d.revision_id for d in decisions) == sorted(d.current_revision_id
                                                             for d in clean)
    assert AuditEvent.objects.filter(verb="draft.approve", actor=reviewer).count() == 3


def test_bulk_approve_keeps_the_four_eyes_rule(client, reviewer, settings):
    settings.COPYDESK_FOUR_EYES = True
    own = in_review(reviewer)  # the reviewer wrote this revision
    client.force_login(reviewer)
    html = client.post(BULK, {"action": "approve", "drafts": [own.pk], "seen": seen(own)},
                       **HTMX).content.decode()
    assert "0 drafts approved, 1 skipped:" in report(html)
    assert "Four-eyes rule" in report(html)
    own.refresh_from_db()
    assert own.state == State.IN_REVIEW


def test_bulk_approve_approves_only_the_revision_the_queue_showed(client, editor, reviewer):
    """The queue showed revision 2; the editor saved 3 and resubmitted; the reviewer's bulk
    approve (posted from the page that showed 2) must not approve 3, which nobody reviewed."""
    draft = in_review(editor, text="The text the reviewer read.")
    client.force_login(reviewer)
    page = get(client, {"state": "in_review"})
    shown = re.findall(r'name="seen" value="([\d:]+)"', page)
    assert shown == [f"{draft.pk}:{draft.current_revision_id}"]

    services.draft_request_changes(draft=draft, user=reviewer,
                                   revision_id=draft.current_revision_id, comment="Shorter.")
    services.revision_save(draft=draft, user=editor, text="Totally different text, never reviewed.",
                           base_revision_id=draft.current_revision_id)
    services.draft_submit(draft=draft, user=editor)

    response = client.post(BULK, {"action": "approve", "drafts": [draft.pk], "seen": shown},
                           **HTMX)
    text = report(response.content.decode())
    assert text.startswith("0 drafts approved, 1 skipped:")
    assert "reload and review the new revision" in text
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW and draft.approved_revision is None
    assert not ReviewDecision.objects.filter(decision="approve").exists()


def test_bulk_reject_rejects_only_the_revision_the_queue_showed(editor, reviewer):
    draft = in_review(editor)
    shown = {draft.pk: draft.current_revision_id}
    services.revision_save(draft=draft, user=editor, text="Newer text.",
                           base_revision_id=draft.current_revision_id)
    services.draft_submit(draft=draft, user=editor)
    drafts = selectors.draft_bulk_list(draft_ids=[draft.pk])
    result = services.draft_bulk_reject(drafts=drafts, user=reviewer, seen=shown,
                                        comment="Off-brand.")
    assert result.done == [] and "reload" in result.skipped[0][1]
    assert not ReviewDecision.objects.exists()


def test_bulk_approve_without_the_revision_seen_approves_nothing(client, editor, reviewer):
    draft = in_review(editor)
    client.force_login(reviewer)
    response = client.post(BULK, {"action": "approve", "drafts": [draft.pk]}, **HTMX)
    assert "reload the queue" in report(response.content.decode())
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW


def test_bulk_reject_needs_a_comment_and_keeps_the_selection(client, editor, reviewer):
    draft = in_review(editor)
    client.force_login(reviewer)
    response = client.post(BULK, {"action": "reject", "drafts": [draft.pk]}, **HTMX)
    assert response.status_code == 400
    html = response.content.decode()
    assert "a comment is required to reject" in html
    assert re.search(rf'name="drafts" value="{draft.pk}" data-row-check checked', html)
    draft.refresh_from_db()
    assert draft.state == State.IN_REVIEW

    response = client.post(BULK, {"action": "reject", "drafts": [draft.pk],
                                  "comment": "Off-brand.", "seen": seen(draft)}, **HTMX)
    assert "1 draft rejected." in report(response.content.decode())
    draft.refresh_from_db()
    assert draft.state == State.REJECTED
    decision = ReviewDecision.objects.get()
    assert (decision.decision, decision.comment, decision.revision_id) == (
        "reject", "Off-brand.", draft.current_revision_id)


def test_a_bulk_action_without_a_selection_says_so(client, reviewer):
    DraftFactory()
    client.force_login(reviewer)
    response = client.post(BULK, {"action": "approve"}, **HTMX)
    assert response.status_code == 400
    assert "Select at least one draft." in response.content.decode()


def test_without_javascript_a_bulk_action_redirects_back_with_the_report(
    client, editor, reviewer
):
    ok = in_review(editor, product__sku="OK-1")
    blocked = in_review(editor, text=BLOCKED, product__sku="BLOCKED-1")
    client.force_login(reviewer)
    response = client.post(BULK, {"action": "approve", "drafts": [ok.pk, blocked.pk],
                                  "query": "state=in_review&sort=-sku",
                                  "seen": seen(ok, blocked)})
    assert response.status_code == 302
    assert response["Location"] == f"{QUEUE}?state=in_review&sort=-sku"
    html = client.get(response["Location"]).content.decode()
    assert "1 draft approved, 1 skipped:" in html
    assert "BLOCKED-1 · Description: Blocking flags:" in unescape(html)
    assert skus(html) == ["BLOCKED-1"]


# --- Escaping ----------------------------------------------------------------------------------

def test_product_data_and_model_text_in_rows_and_reports_are_escaped(client, editor, reviewer):
    xss = "<script>alert(1)</script>"
    draft = in_review(editor, text=f"Fine {xss} text.", product__sku=f"SKU-{xss}",
                      product__title=f"Kettle {xss}")
    Draft.objects.filter(pk=draft.pk).update(state=State.READY)
    client.force_login(reviewer)
    html = client.post(BULK, {"action": "approve", "drafts": [draft.pk]}, **HTMX).content.decode()
    assert xss not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # sku x2, title, excerpt


# --- Shortcuts help ----------------------------------------------------------------------------

def test_shortcuts_help_is_a_dialog_listing_the_keys(client, editor):
    client.force_login(editor)
    html = client.get(reverse("shortcuts_help")).content.decode()
    assert html.strip().startswith('<dialog id="shortcuts-help"')
    for key in ("j", "k", "Enter", "x", "e", "s", "a", "r", "?", "Esc"):
        assert f"<kbd>{key}</kbd>" in html


# --- Queries -----------------------------------------------------------------------------------

def make_drafts(count: int, *, editors, version) -> None:
    """``count`` drafts with a product, a brand, an assignee, a current revision and a flagged
    candidate each, in a handful of bulk inserts."""
    brand = BrandFactory(name="Bulk")
    start = Product.objects.count()
    products = Product.objects.bulk_create(
        Product(sku=f"BULK-{start + n:06d}", title=f"Bulk product {n}", brand=brand,
                category=f"cat-{n % 5}")
        for n in range(count)
    )
    states = [State.READY, State.IN_EDIT, State.IN_REVIEW, State.APPROVED]
    drafts = Draft.objects.bulk_create(
        Draft(product=p, kind_id="description", state=State.READY,
              assignee=editors[n % len(editors)])
        for n, p in enumerate(products)
    )
    Candidate.objects.bulk_create(
        Candidate(draft=d, index=0, text="Text", model_version=version,
                  flags=[{"code": "x", "severity": "warning", "message": "m"}], flagged=True)
        for d in drafts
    )
    revisions = Revision.objects.bulk_create(
        Revision(draft=d, number=1, text=f"Current text {d.pk}") for d in drafts
    )
    for n, (draft, revision) in enumerate(zip(drafts, revisions, strict=True)):
        draft.current_revision = revision
        draft.state = states[n % len(states)]
        if draft.state == State.APPROVED:
            draft.approved_revision = revision
    Draft.objects.bulk_update(drafts, ["current_revision", "state", "approved_revision"])
    # Bulk writes skip Draft.save: copy the product's fields and the text as the services do.
    Draft.objects.filter(pk__in=[d.pk for d in drafts]).refresh_copied()


@pytest.mark.parametrize("params", [
    {},
    {"per_page": "100", "sort": "-updated"},
    {"per_page": "100", "q": "bulk", "flags": "flagged", "assignee": "mine", "sort": "state"},
])
def test_the_queue_runs_the_same_number_of_queries_for_50_and_500_drafts(
    client, reviewer, params
):
    editors = [UserFactory(username=f"ed{n}", roles=["Editor"]) for n in range(3)] + [reviewer]
    version = ModelVersionFactory(name="bulk-model")
    client.force_login(reviewer)

    def count() -> tuple[int, int]:
        # The first view after many writes may fold the state tally's rows (a few queries
        # once, whatever the number of drafts): count a view after it.
        get(client, params)
        with CaptureQueriesContext(connection) as queries:
            html = get(client, params)
        return len(queries), len(skus(html))

    make_drafts(50, editors=editors, version=version)
    few, rows_few = count()
    make_drafts(450, editors=editors, version=version)
    many, rows_many = count()
    assert 0 < rows_few <= rows_many
    assert few == many


def test_the_editor_group_is_what_the_assignee_list_offers(client, reviewer):
    UserFactory(username="zed", roles=["Editor"])
    UserFactory(username="inactive", roles=["Editor"], is_active=False)
    UserFactory(username="rita", roles=["Reviewer"])
    DraftFactory()
    client.force_login(reviewer)
    html = get(client)
    bulk_select = re.search(r'<select name="assignee" id="id_assignee_bulk".*?</select>',
                            html, re.S)[0]
    assert ">zed<" in bulk_select
    assert ">inactive<" not in bulk_select and ">rita<" not in bulk_select
