"""The draft editor as editors use it: live checks highlighted at their spans, the diff against
the candidate, revision history with any-two diffs and restore, comments, presence, bounded
queries and the accessibility hooks (labels, focus after swaps, live regions, shortcuts)."""

import re
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from editorial import services
from editorial.models import (
    AuditEvent,
    Candidate,
    Draft,
    DraftComment,
    DraftPresence,
    ReviewDecision,
    Revision,
)
from tests.factories import (
    BrandFactory,
    ModelVersionFactory,
    ProductFactory,
    UserFactory,
    draft_with_text,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
XSS = "<script>alert(1)</script>"


def page(client, draft, **params) -> str:
    response = client.get(reverse("draft_detail", args=[draft.pk]), params)
    assert response.status_code == 200
    return response.content.decode()


def check(client, draft, text, **extra) -> str:
    response = client.post(reverse("draft_check", args=[draft.pk]), {"text": text, **extra},
                           **HTMX)
    assert response.status_code == 200
    return response.content.decode()


def marks(html: str) -> list[tuple[str, str, str]]:
    """(severity, flag numbers, text) of each highlighted piece."""
    return [
        (severity, numbers, unescape(text))
        for severity, numbers, text in re.findall(
            r'<mark class="flag-mark flag-mark-(\w+)" title="[^"]*" data-flags="([\d ]+)"'
            r'[^>]*>(.*?)</mark>', html, re.S)
    ]


def element(html: str, element_id: str) -> str:
    """The element with this id, up to its own closing tag (nested same tags counted)."""
    start = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>', html)
    assert start, f"no #{element_id}"
    tag, depth = start.group(1), 0
    for match in re.finditer(rf"<(/?){tag}\b[^>]*>", html[start.start():]):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return html[start.start():start.start() + match.end()]
    raise AssertionError(f"#{element_id} is not closed")


def textarea_text(html: str) -> str:
    match = re.search(r"<textarea[^>]*>(.*?)</textarea>", html, re.S)
    assert match, "no textarea"
    return unescape(match.group(1)).strip()


def hidden_value(html: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden {name}"
    return match.group(1)


# --- Live checks --------------------------------------------------------------------------------

def test_live_checks_highlight_each_flag_at_its_span_with_its_message(client, editor):
    product = ProductFactory(brand=BrandFactory(name="Banning", banned_terms=["cheap"]))
    draft = draft_with_text("A kettle made of stainless steel.", product=product)
    client.force_login(editor)
    html = check(client, draft, "A cheap kettle, guaranteed to boil.")
    live = element(html, "live-checks")
    assert [(sev, text) for sev, _, text in marks(live)] == [
        ("error", "cheap"), ("error", "guaranteed"),
    ]
    # Each mark carries its message as a tooltip and points at its entry in the list.
    mark = re.search(r'<mark [^>]*>cheap</mark>', live).group(0)
    assert 'title="The banned term &quot;cheap&quot; is used' in mark
    number = re.search(r'aria-describedby="(live-flag-\d+)"', mark).group(1)
    entry = re.search(rf'<li class="flag flag-error" id="{number}">(.*?)</li>', live, re.S)
    assert entry and "banned term" in entry.group(1) and "banned_term" in entry.group(1)
    # The text between the marks is there too, unchanged.
    plain = re.sub(r"<[^>]+>", "", re.search(r'<div class="text-block marked-text">(.*?)</div>',
                                             live, re.S).group(1))
    assert unescape(plain) == "A cheap kettle, guaranteed to boil."


def test_overlapping_flags_split_the_highlight_and_list_every_message(client, editor):
    brand = BrandFactory(name="Overlap", banned_terms=["steel kettle", "kettle"])
    draft = draft_with_text("A kettle.", product=ProductFactory(brand=brand))
    client.force_login(editor)
    html = check(client, draft, "A steel kettle.")
    pieces = marks(element(html, "live-checks"))
    assert [(text, len(numbers.split())) for _, numbers, text in pieces] == [
        ("steel ", 1), ("kettle", 2),
    ]
    both = re.search(r'<mark [^>]*data-flags="\d+ \d+"[^>]*>kettle</mark>', html).group(0)
    assert "&quot;steel kettle&quot;" in both and "&quot;kettle&quot; is used" in both


def test_live_checks_escape_the_text_and_the_messages(client, editor):
    brand = BrandFactory(name="XSS brand", banned_terms=["<b>bold</b>"])
    draft = draft_with_text("Model text.", product=ProductFactory(brand=brand))
    client.force_login(editor)
    html = check(client, draft, f"{XSS} and <b>bold</b> https://example.com/?a=<i>")
    assert XSS not in html and "<b>bold</b>" not in html and "<i>" not in html
    # The tags are flagged as HTML now (issue 13), so marks split the text: read it untagged.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in re.sub(r"<[^>]+>", "", html)
    assert "<b>bold</b>" in "".join(t for s, _, t in marks(html) if s == "error")


def test_live_checks_show_the_character_count_against_the_brand_limit(client, editor):
    brand = BrandFactory(name="Short", length_limits={"description": 20})
    draft = draft_with_text("Short text.", product=ProductFactory(brand=brand))
    client.force_login(editor)
    html = check(client, draft, "This sentence is far longer than twenty.")
    status = element(html, "check-status")
    assert 'hx-swap-oob="innerHTML"' in status
    assert "40 of 20 characters." in status and "1 error" in status
    # The characters past the limit are the ones highlighted.
    assert ("error", " longer than twenty.") in [(s, t) for s, _, t in marks(html)]
    html = check(client, draft, "Fits.")
    assert "5 of 20 characters." in element(html, "check-status")


def test_the_kind_limit_applies_when_the_brand_sets_none(client, editor):
    draft = draft_with_text("Short text.", product=ProductFactory(brand=None))
    client.force_login(editor)
    html = page(client, draft)
    limit = draft.kind.max_chars
    assert f"11 of {limit} characters." in element(html, "check-status")
    assert re.search(rf'data-limit="{limit}"', html)


def test_live_checks_also_update_the_diff_against_the_chosen_candidate(client, editor):
    draft = draft_with_text("A quick kettle.")
    origin = draft.candidates.get()
    client.force_login(editor)
    html = page(client, draft)
    assert hidden_value(html, "origin_candidate_id") == str(origin.pk)
    html = check(client, draft, "A very quick kettle!", origin_candidate_id=origin.pk)
    diff = element(html, "live-diff")
    assert 'hx-swap-oob="true"' in diff
    assert "<ins> very</ins>" in diff and "<del>.</del><ins>!</ins>" in diff
    # A candidate of another draft is not used.
    other = draft_with_text("Other draft's candidate.").candidates.get()
    html = check(client, draft, "A very quick kettle!", origin_candidate_id=other.pk)
    assert 'id="live-diff"' not in html


def test_the_page_announces_live_check_results_politely(client, editor):
    draft = draft_with_text("A kettle.")
    client.force_login(editor)
    html = page(client, draft)
    status = element(html, "check-status")
    assert 'role="status"' in status and 'aria-live="polite"' in status
    assert re.search(r'<textarea[^>]*aria-describedby="char-count check-status"', html)
    trigger = re.search(r'<div hx-post="[^"]*/check/"[^>]*>', html).group(0)
    assert 'hx-trigger="input changed delay:600ms from:find textarea"' in trigger
    assert 'hx-sync="this:replace"' in trigger


def test_candidates_show_their_flags_highlighted_too(client, editor):
    draft = draft_with_text("Plain model text.")
    Candidate.objects.create(
        draft=draft, index=1, rank=1, text="The best kettle",
        model_version=ModelVersionFactory(name="factory-model"),
        flags=[{"code": "overclaim", "severity": "warning", "message": "Superlative",
                "start": 4, "end": 8}],
    )
    client.force_login(editor)
    html = page(client, draft)
    assert re.search(r'<mark class="flag-mark flag-mark-warning" title="Superlative" '
                     r'data-flags="1" aria-describedby="candidate-\d+-flag-1">best</mark>', html)


# --- Diff against the candidate -----------------------------------------------------------------

def test_chinese_edits_are_diffed_by_word(client, editor):
    product = ProductFactory(locale="zh-hans", title="不锈钢水壶")
    draft = draft_with_text("这款不锈钢水壶烧水很快。", product=product)
    services.revision_save(draft=draft, user=editor, text="这款铝制水壶烧水很快。",
                           base_revision_id=draft.current_revision_id)
    client.force_login(editor)
    diff = element(page(client, draft), "live-diff")
    assert "<del>不锈钢</del><ins>铝制</ins>" in diff


def test_diff_markup_escapes_model_output(client, editor):
    draft = draft_with_text(f"Model {XSS}")
    services.revision_save(draft=draft, user=editor, text="Model <img src=x onerror=alert(1)>",
                           base_revision_id=draft.current_revision_id)
    client.force_login(editor)
    html = page(client, draft)
    assert XSS not in html and "<img src=x" not in html
    diff = element(html, "live-diff")
    assert "<del>&lt;/script</del>" in diff and "<ins>img src=x onerror=</ins>" in diff


# --- History: any two revisions, restore -------------------------------------------------------

def history_draft(editor):
    draft = draft_with_text("One kettle.")
    for text in ("Two kettles.", "Three kettles, boiling.", "Four kettles."):
        draft.refresh_from_db()
        services.revision_save(draft=draft, user=editor, text=text,
                               base_revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    return draft


def test_history_compares_any_two_revisions(client, editor):
    draft = history_draft(editor)
    client.force_login(editor)
    html = page(client, draft)
    # By default: the current revision against the one it was made from.
    assert "Revision 3 → revision 4" in element(html, "revision-diff")
    assert '<label for="id_compare_old">From revision:</label>' in html
    response = client.get(reverse("draft_compare", args=[draft.pk]), {"old": 1, "new": 3},
                          **HTMX)
    fragment = response.content.decode()
    assert response.status_code == 200 and "<html" not in fragment
    assert "Revision 1 → revision 3" in fragment
    assert "<del>One kettle</del><ins>Three kettles, boiling</ins>" in fragment
    assert "data-focus" in fragment  # focus moves to the result
    # Backwards works too, and without JavaScript it is the page itself.
    fragment = client.get(reverse("draft_compare", args=[draft.pk]), {"old": 4, "new": 2},
                          **HTMX).content.decode()
    assert "<del>Four</del><ins>Two</ins>" in fragment
    response = client.get(reverse("draft_compare", args=[draft.pk]), {"old": 1, "new": 2})
    assert response.status_code == 302 and "old=1" in response.url
    full = page(client, draft, old=1, new=2)
    assert "Revision 1 → revision 2" in element(full, "revision-diff")


def test_comparing_unknown_revisions_falls_back_to_the_default(client, editor):
    draft = history_draft(editor)
    client.force_login(editor)
    fragment = client.get(reverse("draft_compare", args=[draft.pk]), {"old": 99, "new": "x"},
                          **HTMX).content.decode()
    assert "Revision 3 → revision 4" in fragment


def test_restore_makes_an_older_text_current_as_a_new_revision(client, editor):
    draft = history_draft(editor)
    old = draft.revisions.get(number=2)
    client.force_login(editor)
    html = page(client, draft)
    assert "Restore revision 2" in html and "Restore revision 4" not in html
    response = client.post(reverse("revision_restore", args=[draft.pk]),
                           {"revision_id": old.pk, "base_revision_id": draft.current_revision_id},
                           **HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Revision 2 restored as revision 5." in html
    assert textarea_text(html) == "Two kettles."
    draft.refresh_from_db()
    restored = draft.current_revision
    assert (restored.number, restored.text, restored.author, restored.parent) == (
        5, "Two kettles.", editor, old)
    assert draft.revisions.count() == 5  # nothing rewritten
    event = AuditEvent.objects.get(verb="revision.restore")
    assert event.data["restored_number"] == 2 and event.data["number"] == 5


def test_restore_against_a_stale_revision_is_a_conflict_and_writes_nothing(client, editor):
    draft = history_draft(editor)
    loaded = draft.current_revision_id
    other = UserFactory(username="otto", roles=["Editor"])
    services.revision_save(draft=draft, user=other, text="Otto's kettles.", base_revision_id=loaded)
    client.force_login(editor)
    response = client.post(reverse("revision_restore", args=[draft.pk]),
                           {"revision_id": draft.revisions.get(number=1).pk,
                            "base_revision_id": loaded}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 409
    assert "Someone else saved while you were editing" in html
    assert "Otto&#x27;s kettles." in html
    # The text to restore waits in the editor, based on the revision now current.
    assert textarea_text(html) == "One kettle."
    theirs = Draft.objects.get(pk=draft.pk).current_revision
    assert hidden_value(html, "base_revision_id") == str(theirs.pk)
    assert theirs.text == "Otto's kettles."
    assert draft.revisions.count() == 5


def test_restoring_the_current_text_is_refused(editor):
    draft = history_draft(editor)
    same = Revision.objects.create(draft=draft, number=9, text="Four kettles.", author=editor)
    with pytest.raises(services.WorkflowError, match="same text"):
        services.revision_restore(draft=draft, user=editor, revision=same,
                                  base_revision_id=draft.current_revision_id)


def test_restore_needs_the_editor_role_and_a_revision_of_this_draft(client, editor, outsider):
    draft = history_draft(editor)
    elsewhere = draft_with_text("Another draft.").current_revision
    client.force_login(outsider)
    response = client.post(reverse("revision_restore", args=[draft.pk]),
                           {"revision_id": draft.revisions.get(number=1).pk,
                            "base_revision_id": draft.current_revision_id})
    assert response.status_code == 403
    client.force_login(editor)
    response = client.post(reverse("revision_restore", args=[draft.pk]),
                           {"revision_id": elsewhere.pk,
                            "base_revision_id": draft.current_revision_id})
    assert response.status_code == 404
    assert Draft.objects.get(pk=draft.pk).current_revision.number == 4


def test_restore_after_approval_needs_a_new_approval(editor, reviewer):
    draft = history_draft(editor)
    services.draft_submit(draft=draft, user=editor)
    services.draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    approved = draft.approved_revision_id
    services.revision_restore(draft=draft, user=editor, revision=draft.revisions.get(number=1),
                              base_revision_id=draft.current_revision_id)
    draft.refresh_from_db()
    assert draft.state == Draft.State.IN_EDIT
    assert draft.approved_revision_id == approved


# --- Comments ----------------------------------------------------------------------------------

def test_comment_is_added_to_the_thread_escaped(client, editor):
    draft = draft_with_text()
    client.force_login(editor)
    response = client.post(reverse("draft_comment", args=[draft.pk]),
                           {"text": f"Check the {XSS} claim."}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<section id="thread"')
    assert XSS not in html and "Check the &lt;script&gt;alert(1)&lt;/script&gt; claim." in html
    comment = DraftComment.objects.get()
    assert (comment.draft, comment.author) == (draft, editor)
    # Focus goes to the new comment; the form is empty again.
    assert re.search(rf'id="thread-comment-{comment.pk}"[^>]*tabindex="-1" data-focus', html)
    assert re.search(r'<textarea name="text"[^>]*id="id_comment_text">\s*</textarea>', html)
    assert AuditEvent.objects.filter(verb="comment.add").exists()
    assert "Check the &lt;script&gt;" in page(client, draft)


def test_comment_without_javascript_redirects_to_the_thread(client, editor):
    draft = draft_with_text()
    client.force_login(editor)
    response = client.post(reverse("draft_comment", args=[draft.pk]), {"text": "Plain post."})
    assert response.status_code == 302 and response.url.endswith("#thread")


def test_an_empty_comment_is_a_field_error(client, editor):
    draft = draft_with_text()
    client.force_login(editor)
    response = client.post(reverse("draft_comment", args=[draft.pk]), {"text": "   "}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 400
    assert "errorlist" in html and "data-focus" in html
    assert not DraftComment.objects.exists()


def test_outsiders_cannot_comment(client, outsider):
    draft = draft_with_text()
    client.force_login(outsider)
    response = client.post(reverse("draft_comment", args=[draft.pk]), {"text": "Hi"}, **HTMX)
    assert response.status_code == 403
    assert not DraftComment.objects.exists()


def test_review_decisions_and_comments_share_one_thread_in_order(client, editor, reviewer):
    draft = draft_with_text()
    services.comment_add(draft=draft, user=editor, text="First: is 1.7 L right?")
    services.draft_submit(draft=draft, user=editor)
    draft.refresh_from_db()
    services.draft_request_changes(draft=draft, user=reviewer,
                                   revision_id=draft.current_revision_id,
                                   comment="Second: say <b>1.7 L</b>.")
    services.comment_add(draft=draft, user=editor, text="Third: done.")
    client.force_login(editor)
    thread = element(page(client, draft), "thread")
    first = thread.index("First: is 1.7 L right?")
    second = thread.index("Second: say &lt;b&gt;1.7 L&lt;/b&gt;.")
    third = thread.index("Third: done.")
    assert first < second < third
    assert "Request changes" in thread[first:second + 200]


# --- Presence ----------------------------------------------------------------------------------

def writes(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries
            if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def test_presence_beats_write_at_most_every_ten_seconds(editor):
    draft = draft_with_text()
    start = timezone.now()
    services.presence_beat(draft=draft, user=editor, now=start)
    row = DraftPresence.objects.get()
    assert row.since == row.last_seen == start
    with CaptureQueriesContext(connection) as queries:
        services.presence_beat(draft=draft, user=editor, now=start + timedelta(seconds=9))
    assert writes(queries) == []
    services.presence_beat(draft=draft, user=editor, now=start + timedelta(seconds=15))
    row.refresh_from_db()
    assert row.last_seen == start + timedelta(seconds=15) and row.since == start
    # Back after a gap longer than the window: a new visit.
    later = start + timedelta(minutes=5)
    services.presence_beat(draft=draft, user=editor, now=later)
    row.refresh_from_db()
    assert row.since == row.last_seen == later
    assert DraftPresence.objects.count() == 1


def test_someone_else_editing_is_shown_with_since_when(client, editor):
    draft = draft_with_text()
    alice = UserFactory(username="alice", roles=["Editor"])
    gone = UserFactory(username="gone", roles=["Editor"])
    now = timezone.now()
    since = timezone.localtime(now).replace(hour=12, minute=3, second=0)
    DraftPresence.objects.create(draft=draft, user=alice, since=since, last_seen=now)
    DraftPresence.objects.create(draft=draft, user=gone, since=since,
                                 last_seen=now - timedelta(seconds=60))
    DraftPresence.objects.create(draft=draft, user=editor, since=since, last_seen=now)
    client.force_login(editor)
    html = page(client, draft)
    box = element(html, "presence")
    assert "alice is also editing this draft (since 12:03)" in box
    assert "gone" not in box and "edith" not in box
    assert 'hx-trigger="load, every 15s"' in box and 'aria-live="polite"' in box


def test_the_heartbeat_records_presence_and_answers_who_else_is_here(client, editor):
    draft = draft_with_text()
    alice = UserFactory(username="alice", roles=["Editor"])
    client.force_login(alice)
    response = client.post(reverse("draft_presence", args=[draft.pk]), **HTMX)
    assert response.status_code == 200 and response.content.decode().strip() == ""
    client.force_login(editor)
    response = client.post(reverse("draft_presence", args=[draft.pk]), **HTMX)
    html = response.content.decode()
    assert "<html" not in html and "alice is also editing this draft" in html
    assert set(DraftPresence.objects.values_list("user__username", flat=True)) == {
        "alice", "edith"}
    # Leaving (as the page closes) removes the row at once.
    client.force_login(alice)
    assert client.post(reverse("draft_presence", args=[draft.pk]),
                       {"leave": "1"}).status_code == 204
    client.force_login(editor)
    html = client.post(reverse("draft_presence", args=[draft.pk]), **HTMX).content.decode()
    assert "alice" not in html


def test_the_heartbeat_needs_a_role(client, outsider):
    draft = draft_with_text()
    client.force_login(outsider)
    assert client.post(reverse("draft_presence", args=[draft.pk]), **HTMX).status_code == 403
    assert not DraftPresence.objects.exists()


# --- Query counts ------------------------------------------------------------------------------

def busy_draft(n: int, editor, reviewer) -> Draft:
    draft = draft_with_text("Start text.")
    authors = [UserFactory(roles=["Editor"]) for _ in range(3)]
    for i in range(n):
        version = ModelVersionFactory(name=f"model-{n}-{i}")
        Candidate.objects.create(
            draft=draft, index=i + 1, rank=i + 1, text=f"Candidate {i} is the best kettle.",
            model_version=version,
            flags=[{"code": "overclaim", "severity": "warning", "message": "best",
                    "start": 15, "end": 19}],
        )
        revision = Revision.objects.create(draft=draft, number=i + 2, text=f"Edit {i}.",
                                           author=authors[i % 3])
        DraftComment.objects.create(draft=draft, author=authors[i % 3], text=f"Comment {i}")
        ReviewDecision.objects.create(draft=draft, revision=revision, reviewer=reviewer,
                                      decision="request_changes", comment=f"Fix {i}")
        if i < 3:
            DraftPresence.objects.create(draft=draft, user=authors[i], since=timezone.now(),
                                         last_seen=timezone.now())
    Draft.objects.filter(pk=draft.pk).update(current_revision=revision)
    return draft


def count_queries(client, draft) -> int:
    with CaptureQueriesContext(connection) as queries:
        page(client, draft)
    return len(queries)


def test_the_draft_page_runs_the_same_queries_for_3_or_30_revisions(
    client, editor, reviewer, django_assert_max_num_queries
):
    few = busy_draft(3, editor, reviewer)
    many = busy_draft(30, editor, reviewer)
    assert many.revisions.count() == 31 and many.candidates.count() == 31
    client.force_login(editor)
    count_queries(client, few)  # warm caches (content types, sessions)
    assert count_queries(client, few) == count_queries(client, many)
    with django_assert_max_num_queries(count_queries(client, few)):
        html = page(client, many)
    assert "Comment 29" in html and "r31" in html and "Candidate 29" in html


# --- Accessibility hooks ----------------------------------------------------------------------

class FieldCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields: list[dict] = []
        self.label_for: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label" and attrs.get("for"):
            self.label_for.add(attrs["for"])
        if tag in {"textarea", "select"} or (
            tag == "input" and attrs.get("type") not in {"hidden", "submit", "button"}
        ):
            self.fields.append({"tag": tag, **attrs})


def unlabelled(html: str) -> list[dict]:
    parser = FieldCollector()
    parser.feed(html)
    return [
        field for field in parser.fields
        if field.get("id") not in parser.label_for
        and not field.get("aria-label") and not field.get("aria-labelledby")
    ]


def test_every_field_on_the_draft_page_has_a_label(client, editor, reviewer):
    draft = history_draft(editor)
    client.force_login(editor)
    html = page(client, draft)
    assert unlabelled(html) == []
    services.draft_submit(draft=draft, user=editor)
    client.force_login(reviewer)
    html = page(client, draft)
    assert 'name="comment"' in html and unlabelled(html) == []


def test_shortcut_hooks_are_on_the_editor(client, editor):
    draft = draft_with_text()
    client.force_login(editor)
    html = page(client, draft)
    assert re.search(r'<textarea name="text"[^>]*data-shortcut="edit"', html)
    assert re.search(r'<button type="submit" class="primary" data-shortcut="save">Save</button>',
                     html)


def test_focus_moves_to_the_saved_notice_after_an_htmx_save(client, editor):
    draft = draft_with_text("Model text.")
    client.force_login(editor)
    html = client.post(reverse("draft_save", args=[draft.pk]),
                       {"text": "New text.", "base_revision_id": draft.current_revision_id},
                       **HTMX).content.decode()
    assert re.search(r'<p class="message message-success" role="status" tabindex="-1" '
                     r'data-focus>Saved revision 2.</p>', html)
    # The live checks never take the focus from the editor.
    assert "data-focus" not in check(client, draft, "Typing on.")


def test_a_stale_save_swaps_in_the_conflict_view_with_both_texts_and_the_focus(client, editor):
    draft = draft_with_text("Model text.")
    loaded = draft.current_revision_id
    otto = UserFactory(username="otto", roles=["Editor"])
    services.revision_save(draft=draft, user=otto, text="Otto's text.", base_revision_id=loaded)
    client.force_login(editor)
    response = client.post(reverse("draft_save", args=[draft.pk]),
                           {"text": "Edith's text.", "base_revision_id": loaded}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 409 and "<html" not in html  # the fragment, swapped in
    conflict = re.search(r'<section class="panel conflict"[^>]*>', html).group(0)
    assert 'tabindex="-1"' in conflict and "data-focus" in conflict
    assert 'class="text-block their-text">Otto&#x27;s text.<' in html
    assert 'class="text-block your-text">Edith&#x27;s text.<' in html
    assert textarea_text(html) == "Edith's text."


def test_an_empty_save_moves_focus_to_the_editor_with_its_error(client, editor):
    draft = draft_with_text("Model text.")
    client.force_login(editor)
    html = client.post(reverse("draft_save", args=[draft.pk]),
                       {"text": " ", "base_revision_id": draft.current_revision_id},
                       **HTMX).content.decode()
    assert re.search(r'<textarea name="text"[^>]*data-focus', html)


def test_every_new_url_refuses_anonymous_and_outsiders(client, outsider):
    draft = draft_with_text()
    posts = [reverse(name, args=[draft.pk]) for name in
             ("revision_restore", "draft_comment", "draft_presence")]
    compare = reverse("draft_compare", args=[draft.pk])
    for url in posts:
        response = client.post(url, **HTMX)
        assert response.status_code == 200 and response["HX-Redirect"].startswith(
            reverse("login")), url
    assert client.get(compare).status_code == 302
    client.force_login(outsider)
    for url in posts:
        assert client.post(url, **HTMX).status_code == 403, url
    assert client.get(compare, **HTMX).status_code == 403
