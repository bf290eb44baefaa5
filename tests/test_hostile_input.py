"""Hostile input costs bounded work (issue 12, item 10): 40,000 adversarial characters are
answered in well under a second, or refused with a message that says the limit and the length —
by the checks themselves, the live check, the editor's save, the API, and a draft page whose
stored revisions are that long (data from before there was a limit)."""

import random
import re
import time
from html import unescape

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from editorial import services
from editorial.diffing import diff_new_text, diff_old_text, mark_flags, text_diff
from editorial.models import DraftComment, Revision
from generation.checks import MAX_FLAGS_PER_CODE, check_text, max_text_chars
from generation.prompts import KindSpec, ProductFacts
from tests.factories import draft_with_text
from tests.sample_facts import facts_fixture

HTMX = {"HTTP_HX_REQUEST": "true"}
SECONDS = 1.0  # generous: each of these takes a few hundredths of a second
LENGTH = 40_000
# The factories' brand limits descriptions to 700 characters: the desk takes 4 × 700.
DRAFT_MAX = 2_800

HOSTILE = {
    "a-": "a-",
    "a@": "a@",
    "1.": "1.",
    "a.": "a.",
    "digits": "1",
    "cjk": "茶",
    "cjk words": "玻璃茶壶容量六百毫升",
    "http": "http://",
    "www.": "www.",
    "host/": "a.com/",
    "emails": "x@y.co ",
    "model codes": "Ab1-",
    "braces": "{",
    "backticks": "`",
    "headings": "\n# x",
    "tags": "<a",
    "table": "|---",
    "labels": "\nTitle: ",
    "overclaims": "best ",
    "absolute terms": "最",
    "numbers": "12 ",
    "spaces": " ",
    "origins": "made in 2 Portuguese ",
    "nationalities": "Portuguese stoneware ",
    "chinese origins": "来自福建，",
    "short clauses": "乳化，",
    "colours": "sea green mugs in green, ",
    "joined colours": "blue-grey-",
    "colours in a run": "green ",
    "chinese colours": "雾霾蓝色，",
    "chinese colour runs": "红白",
    "clauses in other words": "配方含植物油，配方含有植物油，",
    "english clauses in other words": "it heats up quickly, it heats up very quickly, ",
    "denied parts": "without blades ",
    "quick and slow": "heats up quickly, takes longer to heat up, ",
}


def hostile(unit: str, length: int = LENGTH) -> str:
    return (unit * (length // len(unit) + 1))[:length]


def timed(call):
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def page_text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


bottle = facts_fixture("small_bottle")
teapot = facts_fixture("small_teapot")


DESCRIPTION = KindSpec("description", "product description", "Describe it.", 1000)


# --- The checks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_checks_read_40000_hostile_characters_in_well_under_a_second(unit, bottle, teapot):
    text = hostile(unit)
    for facts in (bottle, teapot):
        flags, seconds = timed(lambda facts=facts: check_text(text, facts=facts,
                                                              kind=DESCRIPTION))
        assert seconds < SECONDS, f"{seconds:.2f} s"
        assert {f.code for f in flags} & {"too_long", "empty"}  # only spaces: empty
        # A finding repeated thousands of times is listed a few times, then counted.
        per_code = {}
        for flag in flags:
            per_code[(flag.code, flag.severity)] = per_code.get((flag.code, flag.severity), 0) + 1
        assert max(per_code.values()) <= MAX_FLAGS_PER_CODE


# Products with a colour and with parts, so the colour and contradiction checks compare.
COLOURED = {
    "en": ProductFacts(sku="MUG-1", title="Stoneware mug", attributes={"colour": "sea grey"}),
    "zh": ProductFacts(sku="BED-1", title="纯棉四件套", attributes={"颜色": "燕麦色"},
                       locale="zh-hans"),
    "parts": ProductFacts(sku="KN-1", title="Chef's knife",
                          attributes={"blade_length": "20 cm", "handle": "oak", "lid": "glass"}),
}


@pytest.mark.parametrize("unit", ["sea green mugs in green, ", "blue-grey-", "green ",
                                  "雾霾蓝色，", "红白", "颜色为绿色，", "without blades ",
                                  "with no lid, ", "heats up quickly, takes longer to heat up, "])
def test_colours_and_parts_of_a_product_are_read_in_well_under_a_second(unit):
    text = hostile(unit)
    for facts in COLOURED.values():
        flags, seconds = timed(lambda facts=facts: check_text(text, facts=facts,
                                                              kind=DESCRIPTION))
        assert seconds < SECONDS, f"{seconds:.2f} s"


def test_a_repeated_finding_is_counted_once_past_the_first_ones(bottle):
    flags = check_text("Mail x@y.co now. " * 100, facts=bottle, kind=DESCRIPTION)
    assert len([f for f in flags if f.code == "email"]) == MAX_FLAGS_PER_CODE
    (more,) = [f for f in flags if f.code == "more_flags"]
    assert more.severity == "info" and more.whole_text
    assert more.message == "80 more findings of this kind (email) are not listed."


def test_a_long_finding_is_quoted_short_but_marked_whole(bottle):
    text = "Visit " + "http://" * 5000
    (url,) = [f for f in check_text(text, facts=bottle, kind=DESCRIPTION) if f.code == "url"]
    assert (url.start, url.end) == (6, len(text))
    assert len(url.message) < 150 and "…" in url.message


def test_the_limit_is_a_few_times_the_kinds_limit_within_a_ceiling():
    assert max_text_chars(700) == 2_800
    assert max_text_chars(80) == 2_000  # room to draft even a title
    assert max_text_chars(100_000) == 20_000
    assert max_text_chars(0) == 20_000  # no limit: the ceiling


# --- Diffs and highlights -----------------------------------------------------------------------

@pytest.mark.parametrize("unit", ["a-", "1.", "茶", "a b ", "Hello world. "])
def test_two_40000_character_texts_are_diffed_in_well_under_a_second(unit):
    old = hostile(unit)
    new = hostile(unit, LENGTH - 10) + "0123456789"
    segments, seconds = timed(lambda: text_diff(old, new))
    assert seconds < SECONDS, f"{seconds:.2f} s"
    assert diff_old_text(segments) == old and diff_new_text(segments) == new
    assert segments.coarse


def test_short_texts_are_still_diffed_word_by_word():
    segments = text_diff("A quick kettle.", "A very quick kettle.")
    assert segments.level == "words"
    assert [(s.op, s.text) for s in segments] == [
        ("equal", "A"), ("insert", " very"), ("equal", " quick kettle.")]


def test_a_long_text_with_one_change_is_diffed_by_sentence():
    sentences = [f"Sentence number {i} is here. " for i in range(2000)]
    old = "".join(sentences)
    new = old.replace("number 1000 is", "number 1000 was")
    segments = text_diff(old, new)
    assert segments.level == "sentences"
    assert [(s.op, s.text) for s in segments if s.op != "equal"] == [
        ("delete", "Sentence number 1000 is here. "),
        ("insert", "Sentence number 1000 was here. ")]


@pytest.mark.parametrize("pairs, level", [(10**9, "sentences"), (0, "whole")])
def test_coarse_diffs_never_lose_or_invent_text(monkeypatch, pairs, level):
    from editorial import diffing

    monkeypatch.setattr(diffing, "DETAIL_MAX_CHARS", 0)
    monkeypatch.setattr(diffing, "MAX_PAIRS", pairs)
    rng = random.Random(12)
    alphabet = list("ab .!?\n。，") + ["茶", "壶", "  "]
    levels = set()
    for _ in range(300):
        old = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        new = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        segments = text_diff(old, new)
        assert diff_old_text(segments) == old and diff_new_text(segments) == new
        assert all(text for _, text in segments)
        assert all(a.op != b.op for a, b in zip(segments, segments[1:], strict=False))
        # Past MAX_PAIRS the diff is whole, unless one side's changed part is empty.
        assert segments.level in ({level} if level == "sentences" else {level, "sentences"})
        levels.add(segments.level)
    assert level in levels


def test_thousands_of_flags_are_laid_over_a_long_text_in_well_under_a_second():
    text = hostile("a-")
    flags = [{"start": i, "end": i + 3, "severity": "error", "message": "m"}
             for i in range(0, LENGTH, 5)]
    marked, seconds = timed(lambda: mark_flags(text, flags))
    assert seconds < SECONDS, f"{seconds:.2f} s"
    assert "".join(segment.text for segment in marked.segments) == text


# --- The live check, the editor's save, comments ------------------------------------------------

@pytest.fixture
def warm(client, editor):
    """A logged-in client whose first request (template compilation, jieba) is behind it."""
    client.force_login(editor)
    warm_draft = draft_with_text("玻璃茶壶 and a kettle.")
    client.get(reverse("draft_detail", args=[warm_draft.pk]))
    client.post(reverse("draft_check", args=[warm_draft.pk]), {"text": "茶壶 kettle"}, **HTMX)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("unit", ["a-", "a@", "1.", "茶", "http://", "{"])
def test_the_live_check_refuses_40000_characters_saying_the_limit_and_the_length(warm, unit):
    draft = draft_with_text("A kettle made of stainless steel.")
    response, seconds = timed(lambda: warm.post(reverse("draft_check", args=[draft.pk]),
                                                {"text": hostile(unit)}, **HTMX))
    assert response.status_code == 200
    assert seconds < SECONDS, f"{seconds:.2f} s"
    text = page_text(response.content.decode())
    assert (f"The text is {LENGTH} characters long; at most {DRAFT_MAX} characters can be "
            "checked or saved for this copy. Shorten it.") in text
    # Only the length was checked: one error, the length.
    assert "Checks: 1 error, 0 warnings, 0 notes." in text


@pytest.mark.django_db
@pytest.mark.parametrize("unit", ["a-", "a@", "1.", "茶", "http://"])
def test_hostile_text_within_the_limit_is_checked_in_full_and_fast(warm, unit):
    draft = draft_with_text("A kettle made of stainless steel.")
    response, seconds = timed(lambda: warm.post(reverse("draft_check", args=[draft.pk]),
                                                {"text": hostile(unit, DRAFT_MAX)}, **HTMX))
    assert response.status_code == 200
    assert seconds < SECONDS, f"{seconds:.2f} s"
    assert "can be checked or saved" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("unit", ["a-", "1.", "茶", "http://"])
def test_saving_40000_characters_is_refused_and_nothing_is_stored(warm, unit):
    draft = draft_with_text("A kettle made of stainless steel.")
    response, seconds = timed(lambda: warm.post(
        reverse("draft_save", args=[draft.pk]),
        {"text": hostile(unit), "base_revision_id": draft.current_revision_id}))
    assert response.status_code == 400
    assert seconds < SECONDS, f"{seconds:.2f} s"
    assert (f"The text is {LENGTH} characters long; at most {DRAFT_MAX} characters can be "
            "checked or saved for this copy. Shorten it.") in page_text(response.content.decode())
    assert Revision.objects.filter(draft=draft).count() == 1


@pytest.mark.django_db
def test_a_text_of_exactly_the_limit_is_saved(warm):
    draft = draft_with_text("A kettle made of stainless steel.")
    text = hostile("Kettle. ", DRAFT_MAX).strip() + "."
    text = text[:DRAFT_MAX]
    response = warm.post(reverse("draft_save", args=[draft.pk]),
                         {"text": text, "base_revision_id": draft.current_revision_id})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.current_revision.text == text.strip()


@pytest.mark.django_db
def test_a_40000_character_comment_is_refused_saying_the_limit_and_the_length(warm):
    draft = draft_with_text("A kettle made of stainless steel.")
    response, seconds = timed(lambda: warm.post(reverse("draft_comment", args=[draft.pk]),
                                                {"text": hostile("a-")}, **HTMX))
    assert response.status_code == 400
    assert seconds < SECONDS, f"{seconds:.2f} s"
    assert (f"This text is {LENGTH} characters long; at most {DraftComment.MAX_LENGTH} "
            "characters are allowed.") in page_text(response.content.decode())
    assert not DraftComment.objects.filter(draft=draft).exists()


@pytest.mark.django_db
def test_a_40000_character_review_comment_is_refused(client, editor, reviewer):
    draft = draft_with_text("A kettle made of stainless steel.")
    services.draft_submit(draft=draft, user=editor)
    client.force_login(reviewer)
    response = client.post(reverse("draft_review", args=[draft.pk]), {
        "decision": "request_changes", "revision_id": draft.current_revision_id,
        "comment": hostile("a-")})
    assert response.status_code == 400
    assert (f"This text is {LENGTH} characters long; at most {DraftComment.MAX_LENGTH} "
            "characters are allowed.") in page_text(response.content.decode())
    draft.refresh_from_db()
    assert draft.state == "in_review"


# --- The API ------------------------------------------------------------------------------------

def api_client(user) -> APIClient:
    client = APIClient()
    _token, key = services.api_token_create(user=user, name="tests")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("length", [LENGTH, DRAFT_MAX + 1])
def test_the_api_refuses_a_text_over_the_drafts_limit_saying_the_limit_and_the_length(
    editor, length
):
    draft = draft_with_text("A kettle made of stainless steel.")
    client = api_client(editor)
    response, seconds = timed(lambda: client.post(
        reverse("api_draft_revisions", args=[draft.pk]),
        {"text": hostile("a-", length), "base_revision": draft.current_revision_id},
        format="json"))
    assert response.status_code == 400
    assert seconds < SECONDS, f"{seconds:.2f} s"
    assert response.json()["text"] == [
        f"The text is {length} characters long; at most {DRAFT_MAX} characters can be checked "
        "or saved for this copy. Shorten it."]
    assert Revision.objects.filter(draft=draft).count() == 1


@pytest.mark.django_db
def test_the_api_refuses_a_40000_character_review_comment(reviewer, editor):
    draft = draft_with_text("A kettle made of stainless steel.")
    services.draft_submit(draft=draft, user=editor)
    response = api_client(reviewer).post(
        reverse("api_draft_approve", args=[draft.pk]),
        {"revision": draft.current_revision_id, "comment": hostile("a-")}, format="json")
    assert response.status_code == 400
    assert response.json()["comment"] == [
        f"This text is {LENGTH} characters long; at most 5000 characters are allowed."]


# --- Old data: a draft page over two 40,000-character revisions --------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("unit", ["a-", "a@", "1.", "茶", "http://", "a b "])
def test_a_draft_page_over_two_40000_character_revisions_opens_in_well_under_a_second(
    warm, reviewer, client, unit
):
    """Stored straight into the database, as by an API without a limit: every viewer's page
    stays fast, and says that the text is too long."""
    draft = draft_with_text("A kettle made of stainless steel.")
    first = Revision.objects.create(draft=draft, number=2, text=hostile(unit),
                                    parent=draft.current_revision)
    second = Revision.objects.create(draft=draft, number=3, parent=first,
                                     text=hostile(unit, LENGTH - 7) + " edited")
    draft.current_revision = second
    draft.save()
    url = reverse("draft_detail", args=[draft.pk])
    response, seconds = timed(lambda: warm.get(url))
    assert response.status_code == 200
    assert seconds < SECONDS, f"{seconds:.2f} s"
    text = page_text(response.content.decode())
    assert f"The text is {LENGTH} characters long; at most {DRAFT_MAX}" in text
    assert "too long to compare" in text

    # Comparing the two revisions explicitly, and a reviewer's view, are as fast.
    response, seconds = timed(lambda: warm.get(url, {"old": 2, "new": 3}))
    assert response.status_code == 200 and seconds < SECONDS, f"{seconds:.2f} s"
    client.force_login(reviewer)
    response, seconds = timed(lambda: client.get(url))
    assert response.status_code == 200 and seconds < SECONDS, f"{seconds:.2f} s"
