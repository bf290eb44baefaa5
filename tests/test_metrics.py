"""Model-version metrics: the edit-distance measure, the intervals, and the per-version figures
read from planted drafts (approved as they were, approved after edits, rejected, pending)."""

import importlib
import random
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from editorial import metrics, services, tallies
from editorial.metrics import (
    APPROVED,
    REJECTED,
    DraftOutcome,
    Mean,
    Rate,
    compare,
    levenshtein,
    model_version_metrics,
    normalized_edit_distance,
    summarize,
    t_quantile_975,
    tokens,
    wilson_interval,
)
from editorial.models import Candidate, Draft, Revision, VersionReviewTally
from tests.factories import DraftFactory, ModelVersionFactory, ProductFactory

# --- Edit distance ------------------------------------------------------------------------------


def test_english_is_split_into_words_and_chinese_into_characters():
    assert tokens("A 2200 W kettle, stainless-steel.") == [
        "A", "2200", "W", "kettle", ",", "stainless", "-", "steel", ".",
    ]
    assert tokens("不锈钢水壶，容量1.7升") == [
        "不", "锈", "钢", "水", "壶", "，", "容", "量", "1", ".", "7", "升",
    ]
    assert tokens("Kettle 电水壶") == ["Kettle", "电", "水", "壶"]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ("The quick brown fox", "The quick brown fox", 0.0),
        ("The quick brown fox", "The quick red fox", 1 / 4),  # one word replaced
        ("A kettle", "A steel kettle", 1 / 3),  # one word inserted, over the longer text
        ("Boils water fast", "Heats milk slowly", 1.0),  # rewritten
        ("  The quick brown fox ", "The  quick\nbrown fox", 0.0),  # whitespace is not a word
        ("不锈钢电水壶", "不锈钢热水壶", 1 / 6),  # one character replaced
        ("保温杯", "真空保温杯", 2 / 5),  # two characters inserted
        ("不锈钢电水壶", "电水壶", 3 / 6),  # three characters deleted
        ("", "", 0.0),
        ("", "New text", 1.0),
    ],
)
def test_normalized_edit_distance_of_known_pairs(before, after, expected):
    assert normalized_edit_distance(before, after) == pytest.approx(expected)


def reference_levenshtein(a, b):
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def test_bit_parallel_levenshtein_matches_the_textbook_table():
    rng = random.Random(4)
    for _ in range(500):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 90))]
        b = [rng.choice("abcde") for _ in range(rng.randint(0, 90))]
        assert levenshtein(a, b) == reference_levenshtein(a, b), (a, b)


def test_levenshtein_handles_thousands_of_long_texts_quickly():
    import time

    rng = random.Random(5)
    words = [f"w{i}" for i in range(300)]
    pairs = [
        ([rng.choice(words) for _ in range(400)], [rng.choice(words) for _ in range(400)])
        for _ in range(200)
    ]
    started = time.perf_counter()
    for a, b in pairs:
        levenshtein(a, b)
    # The textbook table takes ~40 ms per pair here; the bit-parallel one well under 1 ms.
    assert (time.perf_counter() - started) / len(pairs) < 0.005


# --- Intervals ------------------------------------------------------------------------------------


def test_wilson_interval_values():
    assert wilson_interval(8, 10) == pytest.approx((0.49016, 0.94332), abs=1e-5)
    assert wilson_interval(1, 3) == pytest.approx((0.06149, 0.79234), abs=1e-5)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    assert wilson_interval(0, 0) is None
    assert Rate(0, 0).value is None and Rate(0, 0).low is None


def test_t_quantiles_match_the_tables():
    assert t_quantile_975(1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile_975(10) == pytest.approx(2.228, abs=1e-3)
    assert t_quantile_975(40) == pytest.approx(2.021, abs=1e-3)
    assert t_quantile_975(120) == pytest.approx(1.980, abs=1e-3)


def test_mean_interval_uses_students_t_and_stays_within_0_and_1():
    mean = Mean.of([0.1, 0.2, 0.3])
    assert mean.value == pytest.approx(0.2)
    assert mean.sd == pytest.approx(0.1)
    # 0.2 ± t(2) · 0.1 / √3 = 0.2 ± 0.2484, clamped at 0.
    assert (mean.low, mean.high) == pytest.approx((0.0, 0.44841), abs=1e-5)
    many = Mean.of([0.2, 0.4] * 50)
    assert (many.low, many.high) == pytest.approx((0.2801, 0.3199), abs=1e-4)
    single = Mean.of([0.3])
    assert (single.value, single.low, single.high) == (0.3, None, None)


# --- Summaries and comparisons (pure) -------------------------------------------------------------

T0 = timezone.now().replace(microsecond=0) - timedelta(days=3)


def outcome(start, final=None, *, hours=1.0, rejected=False):
    if rejected:
        return DraftOutcome(1, REJECTED, start)
    return DraftOutcome(1, APPROVED, start, final if final is not None else start,
                        generated_at=T0, approved_at=T0 + timedelta(hours=hours))


def test_summary_counts_acceptance_rejection_distance_and_median_time():
    m = summarize(
        model_version_id=1, name="v1", drafts_generated=7, candidates=12, flagged_candidates=3,
        outcomes=[
            outcome("The quick brown fox", hours=1),  # approved as it was
            outcome("The quick brown fox ", "The quick brown fox", hours=10),  # trailing space
            outcome("The quick brown fox", "The quick red fox", hours=2),  # 1/4
            outcome("不锈钢电水壶", "不锈钢热水壶", hours=30),  # 1/6
            outcome("Too loud", rejected=True),
        ],
    )
    assert (m.approved, m.rejected, m.reviewed) == (4, 1, 5)
    assert (m.acceptance.hits, m.acceptance.total) == (2, 5)
    assert m.approved_edited == 2
    assert m.rejection.value == pytest.approx(1 / 5)
    assert m.flag_rate.value == pytest.approx(3 / 12)
    assert m.edit_distance.n == 4
    assert m.edit_distance.value == pytest.approx((0 + 0 + 1 / 4 + 1 / 6) / 4)
    assert m.median_seconds_to_approval == 6 * 3600  # median of 1, 2, 10, 30 hours
    assert m.acceptance.interval == pytest.approx(wilson_interval(2, 5))


def test_edit_distance_of_many_approvals_is_estimated_from_a_reproducible_sample():
    outcomes = [outcome("one two three four", "one two three cuatro")] * 30 + [
        outcome("one two three four")
    ] * 30
    outcomes = [DraftOutcome(**{**o.__dict__, "draft_id": i}) for i, o in enumerate(outcomes)]
    first = summarize(model_version_id=7, name="v", outcomes=outcomes, edit_distance_sample=20)
    again = summarize(model_version_id=7, name="v", outcomes=outcomes[::-1],
                      edit_distance_sample=20)
    assert first.approved == 60 and first.acceptance.hits == 30  # counts stay exact
    assert first.edit_distance.n == 20
    assert first.edit_distance == again.edit_distance
    assert 0 < first.edit_distance.value < 0.25


def test_nothing_reviewed_gives_empty_figures_not_zeros():
    m = summarize(model_version_id=1, name="v1", outcomes=[], drafts_generated=3, candidates=3)
    assert m.acceptance.value is None and m.edit_distance.value is None
    assert m.median_seconds_to_approval is None


def arm(accepted, edited, distance_pairs):
    outcomes = [outcome("same text") for _ in range(accepted)]
    outcomes += [outcome(a, b) for a, b in distance_pairs[:edited]]
    return summarize(model_version_id=1, name="arm", outcomes=outcomes)


def test_compare_says_a_clear_difference_is_significant_and_which_arm_is_better():
    heavy = [("one two three four", "uno dos three four")] * 60  # distance 0.5
    light = [("one two three four", "one two three cuatro")] * 60  # distance 0.25
    a = arm(accepted=20, edited=60, distance_pairs=heavy)
    b = arm(accepted=60, edited=20, distance_pairs=light)
    result = compare(a, b)
    assert result.acceptance.diff == pytest.approx(60 / 80 - 20 / 80)
    assert result.acceptance.significant is True and result.acceptance.better == "b"
    assert result.edit_distance.diff < 0
    assert result.edit_distance.significant is True and result.edit_distance.better == "b"
    assert result.significant


def test_compare_says_small_samples_are_not_significant_yet():
    a = arm(accepted=1, edited=1, distance_pairs=[("a b c d", "a b c e")])
    b = arm(accepted=2, edited=1, distance_pairs=[("a b c d", "a x c e")])
    result = compare(a, b)
    assert result.acceptance.significant is False and result.acceptance.better is None
    assert result.acceptance.low < 0 < result.acceptance.high
    assert result.edit_distance.significant is False
    assert not result.significant


def test_compare_cannot_judge_edit_distance_from_one_approval_per_arm():
    a = arm(accepted=0, edited=1, distance_pairs=[("a b c d", "a b c e")])
    b = arm(accepted=0, edited=1, distance_pairs=[("a b c d", "x y z e")])
    result = compare(a, b)
    assert result.edit_distance.diff is None and result.edit_distance.significant is None


# --- From the database ----------------------------------------------------------------------------

WARNING = [{"code": "overclaim", "severity": "warning", "message": "“best”", "start": 0,
            "end": 4}]
INFO = [{"code": "note", "severity": "info", "message": "fyi", "start": -1, "end": -1}]
ERROR = [{"code": "banned_term", "severity": "error", "message": "banned", "start": 0, "end": 3}]


def generated(version, *texts, flags=None, product=None, at=None) -> Draft:
    """A draft as a generation job leaves it: candidates from ``version``, the first one as the
    model's revision."""
    draft = DraftFactory(product=product or ProductFactory())
    made = []
    for index, text in enumerate(texts):
        made.append(Candidate.objects.create(
            draft=draft, index=index, text=text, model_version=version,
            flags=(flags or {}).get(index, []),
        ))
    if at is not None:
        Candidate.objects.filter(draft=draft).update(created_at=at)
    draft.current_revision = Revision.objects.create(
        draft=draft, number=1, text=made[0].text, candidate=made[0]
    )
    draft.save()
    return draft


def chinese_product():
    """Chinese copy needs a Chinese product: on an English one it is a blocking flag."""
    return ProductFactory(locale="zh", title="不锈钢水壶", attributes={"材质": "不锈钢"},
                          source_text="")


def add_candidate(draft, version, text, *, index, at=None):
    candidate = Candidate.objects.create(draft=draft, index=index, text=text,
                                         model_version=version)
    if at is not None:
        Candidate.objects.filter(pk=candidate.pk).update(created_at=at)
        candidate.refresh_from_db()
    return candidate


def review(draft, editor, reviewer, *, text=None, decision="approve", at=None):
    """Edit (optionally), submit and decide through the services."""
    if text is not None:
        services.revision_save(draft=draft, user=editor, text=text,
                               base_revision_id=draft.current_revision_id)
    services.draft_submit(draft=draft, user=editor)
    draft.refresh_from_db()
    if decision == "approve":
        services.draft_approve(draft=draft, user=reviewer, revision_id=draft.current_revision_id)
        if at is not None:
            Draft.objects.filter(pk=draft.pk).update(approved_at=at)
    else:
        services.draft_reject(draft=draft, user=reviewer, revision_id=draft.current_revision_id,
                              comment="Off brand.")
    draft.refresh_from_db()
    return draft


@pytest.fixture
def planted(editor, reviewer):
    """Version "a" (English): approved as is, approved after an edit, rejected, pending.
    Version "b" (Chinese): a draft generated by "a" where the editor picked b's candidate, then
    changed one character, so it counts for "b"."""
    a = ModelVersionFactory(name="a")
    b = ModelVersionFactory(name="b")
    ModelVersionFactory(name="idle")  # generated nothing
    t0 = T0
    review(generated(a, "The quick brown fox", "A fox", at=t0), editor, reviewer,
           at=t0 + timedelta(hours=1))
    review(generated(a, "The quick brown fox", at=t0), editor, reviewer,
           text="The quick red fox", at=t0 + timedelta(hours=3))
    review(generated(a, "The best kettle", flags={0: WARNING}), editor, reviewer,
           text="Rejected text", decision="reject")
    generated(a, "Pending text", "Other text", flags={0: INFO, 1: ERROR})
    chinese = generated(a, "不锈钢水壶", product=chinese_product())
    picked = add_candidate(chinese, b, "不锈钢电水壶", index=1, at=t0)
    services.candidate_choose(draft=chinese, candidate=picked, user=editor,
                              base_revision_id=chinese.current_revision_id)
    chinese.refresh_from_db()
    review(chinese, editor, reviewer, text="不锈钢热水壶", at=t0 + timedelta(hours=5))
    return a, b


def test_model_version_metrics_from_planted_drafts(planted):
    a, b = planted
    figures = {m.name: m for m in model_version_metrics()}
    assert set(figures) == {"a", "b"}  # "idle" generated nothing

    fa = figures["a"]
    assert fa.drafts_generated == 5
    assert fa.candidates == 7
    assert (fa.approved, fa.rejected, fa.reviewed) == (2, 1, 3)
    assert (fa.acceptance.hits, fa.acceptance.total) == (1, 3)
    assert fa.acceptance.low == pytest.approx(0.06149, abs=1e-5)
    assert fa.rejection.value == pytest.approx(1 / 3)
    assert fa.edit_distance.value == pytest.approx((0 + 1 / 4) / 2)
    assert fa.median_seconds_to_approval == 2 * 3600  # median of 1 h and 3 h
    # Flagged: the warning and the error candidates; an "info" flag does not count.
    assert (fa.flag_rate.hits, fa.flag_rate.total) == (2, 7)

    fb = figures["b"]
    assert (fb.drafts_generated, fb.candidates) == (1, 1)
    assert (fb.approved, fb.rejected) == (1, 0)
    assert fb.acceptance.value == 0
    assert fb.edit_distance.value == pytest.approx(1 / 6)
    assert fb.median_seconds_to_approval == 5 * 3600


def test_metrics_can_be_limited_to_some_drafts_and_versions(planted):
    a, b = planted
    chinese = Draft.objects.filter(revisions__text="不锈钢热水壶").distinct()
    only = model_version_metrics([a, b], drafts=chinese)
    assert [m.name for m in only] == ["a", "b"]
    assert (only[0].drafts_generated, only[0].reviewed) == (1, 0)
    assert (only[1].drafts_generated, only[1].approved) == (1, 1)
    assert [m.name for m in model_version_metrics([b])] == ["b"]


@pytest.mark.django_db
def test_model_version_metrics_uses_five_queries_and_one_per_version_whatever_the_drafts(
    editor, reviewer, django_assert_num_queries
):
    versions = [ModelVersionFactory(name="x"), ModelVersionFactory(name="y")]
    for i in range(30):
        draft = generated(versions[i % 2], f"Text number {i} for the shop")
        if i % 3:
            review(draft, editor, reviewer, text=f"Edited text number {i} for the shop")
    with django_assert_num_queries(5 + len(versions)):
        figures = model_version_metrics()
    assert sum(m.approved for m in figures) == 20
    # Until a reviewed draft is written the samples and medians come from the cache:
    # versions, their candidate counts and the review tallies.
    with django_assert_num_queries(3):
        assert model_version_metrics() == figures


def test_the_kept_review_figures_are_dropped_when_a_draft_enters_or_leaves_review(
    editor, reviewer, django_assert_num_queries
):
    version = ModelVersionFactory(name="x")
    drafts = [generated(version, f"Text number {i} for the shop") for i in range(3)]
    review(drafts[0], editor, reviewer, text="Edited text for the shop")
    assert model_version_metrics()[0].approved == 1
    review(drafts[1], editor, reviewer, text="Another edited text for the shop")
    assert model_version_metrics()[0].approved == 2
    Draft.objects.filter(pk=drafts[0].pk).update(state=Draft.State.IN_EDIT)
    assert model_version_metrics()[0].approved == 1
    # A draft moving between states that are not counted keeps the figures.
    Draft.objects.filter(pk=drafts[2].pk).update(state=Draft.State.CHANGES_REQUESTED)
    with django_assert_num_queries(3):
        model_version_metrics()
    # Rejecting one counts.
    Draft.objects.filter(pk=drafts[2].pk).update(state=Draft.State.REJECTED,
                                                 review_version=version)
    assert model_version_metrics()[0].rejected == 1


# --- The review tallies the triggers keep ---------------------------------------------------------


def assert_kept_figures_are_scanned(versions=None):
    """The dashboard's figures (tallies summed from VersionReviewTally, samples and medians
    from the cache) are the ones counted from every draft, without the cache."""
    kept = model_version_metrics(versions)
    assert kept == model_version_metrics(versions, drafts=Draft.objects.all())
    return {m.name: m for m in kept}


def test_the_review_figures_follow_every_way_reviewed_drafts_are_written(editor, reviewer):
    x, y = ModelVersionFactory(name="x"), ModelVersionFactory(name="y")
    first = review(generated(x, "The quick brown fox", at=T0), editor, reviewer,
                   at=T0 + timedelta(hours=1))
    second = review(generated(x, "A kettle for tea", at=T0), editor, reviewer,
                    text="A kettle for green tea", at=T0 + timedelta(hours=3))
    third = review(generated(y, "A mug", at=T0), editor, reviewer, decision="reject")
    figures = assert_kept_figures_are_scanned()
    assert (figures["x"].approved, figures["x"].approved_unchanged) == (2, 1)
    assert figures["x"].median_seconds_to_approval == 2 * 3600
    assert figures["y"].rejected == 1
    # A new approval time moves the median though no count moves.
    Draft.objects.filter(pk=first.pk).update(approved_at=T0 + timedelta(hours=5))
    assert assert_kept_figures_are_scanned()["x"].median_seconds_to_approval == 4 * 3600
    # Raw SQL that takes an approval time away.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE editorial_draft SET approved_at = NULL WHERE id = %s",
                       [second.pk])
    assert assert_kept_figures_are_scanned()["x"].median_seconds_to_approval == 5 * 3600
    # Moved to the other version, and back to editing, in bulk.
    first.review_version, third.state = y, Draft.State.IN_EDIT
    Draft.objects.bulk_update([first, third], ["review_version", "state"])
    figures = assert_kept_figures_are_scanned()
    assert (figures["x"].approved, figures["y"].approved, figures["y"].rejected) == (1, 1, 0)
    # Inserted already reviewed, then deleted one by one and through their product.
    Draft.objects.bulk_create([Draft(product=ProductFactory(), kind_id="title", state="rejected",
                                     review_version=x)])
    assert assert_kept_figures_are_scanned()["x"].rejected == 1
    second.delete()
    first.product.delete()
    figures = assert_kept_figures_are_scanned([x, y])
    assert (figures["x"].approved, figures["x"].rejected, figures["y"].approved) == (0, 1, 0)


def test_a_review_recomputes_the_figures_of_its_version_only(editor, reviewer):
    x, y = ModelVersionFactory(name="x"), ModelVersionFactory(name="y")
    for version in (x, y):
        review(generated(version, f"Text by {version.name}", at=T0), editor, reviewer,
               at=T0 + timedelta(hours=1))
    pending = generated(y, "Another text by y", at=T0)
    model_version_metrics()
    review(pending, editor, reviewer, at=T0 + timedelta(hours=3))
    with CaptureQueriesContext(connection) as queries:
        listed = model_version_metrics()
    assert {m.name: m.median_seconds_to_approval for m in listed} == {"x": 3600, "y": 2 * 3600}
    read = [q["sql"] for q in queries.captured_queries if "ROW_NUMBER" in q["sql"]
            or "django_timestamp_diff" in q["sql"] or " - " in q["sql"]]
    assert len(read) == 2  # y's sample and y's median
    assert all(f"IN ({y.pk})" in sql or f"= {y.pk}" in sql for sql in read)
    # A write to drafts that are not reviewed leaves every version's figures in the cache.
    DraftFactory()
    with CaptureQueriesContext(connection) as queries:
        assert model_version_metrics() == listed
    assert len(queries) == 3


def test_folding_the_review_tallies_keeps_the_figures(editor, reviewer, monkeypatch):
    monkeypatch.setattr(tallies, "FOLD_AT", 3)
    x = ModelVersionFactory(name="x")
    for i in range(4):
        review(generated(x, f"Text number {i}", at=T0), editor, reviewer,
               text=f"Edited text number {i}" if i % 2 else None,
               decision="approve" if i < 3 else "reject", at=T0 + timedelta(hours=i + 1))
    assert VersionReviewTally.objects.count() > 3
    figures = assert_kept_figures_are_scanned()["x"]
    assert (figures.approved, figures.approved_unchanged, figures.rejected) == (3, 2, 1)
    assert list(VersionReviewTally.objects.values_list(
        "model_version", "approved", "unchanged", "timed", "rejected")) == [(x.pk, 3, 2, 3, 1)]
    Draft.objects.filter(state=Draft.State.REJECTED).update(state=Draft.State.IN_EDIT)
    assert assert_kept_figures_are_scanned()["x"].rejected == 0


def test_the_migration_tallies_the_reviews_there_are(editor, reviewer):
    x = ModelVersionFactory(name="x")
    review(generated(x, "Text one", at=T0), editor, reviewer, at=T0 + timedelta(hours=1))
    review(generated(x, "Text two", at=T0), editor, reviewer, decision="reject")
    VersionReviewTally.objects.all().delete()
    importlib.import_module("editorial.migrations.0020_version_review_tally").backfill(
        None, SimpleNamespace(connection=connection))
    figures = assert_kept_figures_are_scanned()["x"]
    assert (figures.approved, figures.rejected) == (1, 1)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE is PostgreSQL's")
def test_truncating_the_drafts_empties_the_review_tallies(editor, reviewer):
    x = ModelVersionFactory(name="x")
    review(generated(x, "Text one", at=T0), editor, reviewer, at=T0 + timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE editorial_draft CASCADE")
    assert not VersionReviewTally.objects.exists()
    assert metrics.model_version_metrics([x])[0].reviewed == 0
