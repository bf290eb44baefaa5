"""The pure text segmentation behind the editor's diffs and highlighted flags (no database)."""

import random

import pytest

from editorial.diffing import (
    MarkSegment,
    diff_has_changes,
    diff_new_text,
    diff_old_text,
    mark_flags,
    text_diff,
    tokenize,
)

PAIRS = [
    ("A quick kettle.", "A very quick kettle."),
    ("The quick brown fox jumps.", "The slow red fox jumps!"),
    ("这款不锈钢水壶烧水很快。", "这款铝制水壶烧水非常快。"),
    ("Stainless steel 水壶，容量1.7升。Boils fast.", "Aluminium 水壶，容量2升。Boils very fast."),
    ("line one\nline two\n\nline three", "line one\n  line 2\nline three\n"),
    ("", "Brand new text."),
    ("Everything goes.", ""),
    ("same", "same"),
    ("tabs\tand  double  spaces", "tabs and double spaces"),
    ("emoji 🙂 and café", "emoji 🙃 and cafe"),
]


def ops(segments):
    return [(op, text) for op, text in segments]


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_applying_the_diff_reproduces_the_target_text(old, new):
    segments = text_diff(old, new)
    assert diff_new_text(segments) == new
    assert diff_old_text(segments) == old
    assert diff_has_changes(segments) == (old != new)


def test_random_edits_always_round_trip():
    rng = random.Random(7)
    alphabet = list("ab c\n,.") + ["水", "壶", "不锈钢"[0], "快", "。"]
    for _ in range(300):
        old = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        new = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        segments = text_diff(old, new)
        assert diff_new_text(segments) == new
        assert diff_old_text(segments) == old
        # Adjacent segments never repeat an op, and no segment is empty.
        assert all(text for _, text in segments)
        assert all(a.op != b.op for a, b in zip(segments, segments[1:], strict=False))


def test_tokens_cover_the_text_exactly():
    for text in ("Don't boil 1.7 L, 1,200 W.", "这款不锈钢水壶烧水很快！Kettle", "  \n\t", ""):
        assert "".join(tokenize(text)) == text


def test_english_is_diffed_by_words_not_characters():
    assert ops(text_diff("A quick kettle.", "A very quick kettle.")) == [
        ("equal", "A"), ("insert", " very"), ("equal", " quick kettle."),
    ]
    # "kettle" → "kettles" is a changed word, not one inserted letter.
    assert ops(text_diff("one kettle", "one kettles")) == [
        ("equal", "one "), ("delete", "kettle"), ("insert", "kettles"),
    ]


def test_numbers_with_decimals_are_one_token():
    assert ops(text_diff("holds 1.7 L", "holds 1.5 L")) == [
        ("equal", "holds "), ("delete", "1.7"), ("insert", "1.5"), ("equal", " L"),
    ]


def test_chinese_is_segmented_into_words():
    assert "不锈钢" in tokenize("这款不锈钢水壶")
    assert ops(text_diff("这款不锈钢水壶烧水很快。", "这款铝制水壶烧水很快。")) == [
        ("equal", "这款"), ("delete", "不锈钢"), ("insert", "铝制"), ("equal", "水壶烧水很快。"),
    ]


def test_mixed_chinese_and_english_text():
    old = "Stainless steel 水壶，容量1.7升。Boils fast."
    new = "Aluminium 水壶，容量2升。Boils very fast."
    assert ops(text_diff(old, new)) == [
        ("delete", "Stainless steel"), ("insert", "Aluminium"),
        ("equal", " 水壶，容量"), ("delete", "1.7"), ("insert", "2"),
        ("equal", "升。Boils "), ("insert", "very "), ("equal", "fast."),
    ]
    # jieba knows 电水壶 (electric kettle) as one word: the change is the word, not a character.
    assert ops(text_diff("买水壶", "买电水壶")) == [
        ("equal", "买"), ("delete", "水壶"), ("insert", "电水壶"),
    ]


def test_white_space_between_two_changes_joins_them_into_one_replacement():
    assert ops(text_diff("the quick brown fox", "the slow red fox")) == [
        ("equal", "the "), ("delete", "quick brown"), ("insert", "slow red"), ("equal", " fox"),
    ]


def test_white_space_changes_are_kept_and_flagged_blank():
    segments = text_diff("a  b", "a b")
    assert ops(segments) == [("equal", "a"), ("delete", "  "), ("insert", " "), ("equal", "b")]
    assert [s.is_blank for s in segments if s.op != "equal"] == [True, True]
    newline = text_diff("one two", "one\ntwo")
    assert ("insert", "\n") in ops(newline)


def test_markup_is_plain_text_in_segments():
    segments = text_diff("<b>old</b>", "<script>alert(1)</script>")
    assert diff_new_text(segments) == "<script>alert(1)</script>"


# --- Flags over the text ----------------------------------------------------------------------

def flag(start, end, severity="warning", message="m", code="c"):
    return {"code": code, "severity": severity, "message": message, "start": start, "end": end}


def test_a_flag_marks_exactly_its_span():
    marked = mark_flags("Buy the best kettle", [flag(8, 12, message="Superlative")])
    assert marked.segments == [
        MarkSegment("Buy the "),
        MarkSegment("best", (1,), "warning", ("Superlative",)),
        MarkSegment(" kettle"),
    ]
    assert marked.flags[0]["excerpt"] == "best"
    assert "".join(s.text for s in marked.segments) == "Buy the best kettle"


def test_overlapping_flags_split_the_text_and_the_worst_severity_wins():
    text = "Guaranteed best kettle"
    marked = mark_flags(text, [flag(0, 15, "warning", "one"), flag(11, 22, "error", "two")])
    assert [(s.text, s.numbers, s.severity) for s in marked.segments] == [
        ("Guaranteed ", (1,), "warning"),
        ("best", (1, 2), "error"),
        (" kettle", (2,), "error"),
    ]
    assert marked.segments[1].messages == ("one", "two")


def test_nested_and_identical_spans():
    marked = mark_flags("abcdef", [flag(0, 6, "info"), flag(2, 4, "warning"), flag(2, 4, "error")])
    assert [(s.text, s.numbers, s.severity) for s in marked.segments] == [
        ("ab", (1,), "info"), ("cd", (1, 2, 3), "error"), ("ef", (1,), "info"),
    ]


def test_whole_text_flags_are_listed_but_mark_nothing_and_bad_spans_are_clipped():
    marked = mark_flags("short", [
        flag(-1, -1, message="missing term"),
        flag(3, 99, "error", "too long"),
        flag(10, 12),  # beyond the text
        {"code": "x", "severity": "info", "message": "no span at all"},
        flag("a", "b"),
    ])
    assert [(s.text, s.numbers) for s in marked.segments] == [("sho", ()), ("rt", (2,))]
    assert [f["spanned"] for f in marked.flags] == [False, True, False, False, False]
    assert [f["number"] for f in marked.flags] == [1, 2, 3, 4, 5]
    assert marked.counts == {"error": 1, "warning": 3, "info": 1}


def test_empty_text_has_no_segments():
    assert mark_flags("", [flag(0, 3)]).segments == []
