"""The learning benchmark's own arithmetic: chrF and the house-copy baseline it reports."""

import pytest

from benchmarks.common import chrf
from benchmarks.learning import house_copy_baseline


def product(locale, category, reference):
    return {"locale": locale, "category": category, "reference": reference}


def test_chrf_is_100_for_identical_text_and_0_for_disjoint_text():
    assert chrf("The kettle boils fast.", "The kettle boils fast.") == pytest.approx(100)
    assert chrf("abc", "xyz") == 0
    assert 0 < chrf("The kettle boils fast.", "The kettle boils slowly.") < 100


@pytest.mark.django_db
def test_house_copy_baseline_compares_with_the_same_language_and_category():
    held_out = [product("en", "kitchen", "a b c d"), product("zh-hans", "tea", "绿茶清香")]
    train = [
        product("en", "kitchen", "a b c x"),   # 1 of 4 words differ: 0.25
        product("en", "kitchen", "w x y z"),   # all differ: 1.0
        product("en", "garden", "a b c d"),    # other category: not used
        product("zh-hans", "skin", "绿茶香气"),  # no zh tea in train: same language stands in
    ]
    # en: (0.25 + 1.0) / 2; zh: 绿茶清香 -> 绿茶香气 is 2 edits of 4 characters.
    assert house_copy_baseline(held_out, train) == pytest.approx((0.625 + 0.5) / 2)
