"""The examples a prompt is written from: the shop's own approved copy, most similar first, never
the product's own, in a bounded number of queries per chunk; house examples make up the rest."""

import importlib
import json

import pytest

from editorial import services
from editorial.examples import (
    DEFAULT_HOUSE_EXAMPLES,
    approved_example_map,
    examples_json,
    house_examples,
)
from editorial.models import Draft
from generation.checks import INFO, check_text
from generation.prompts import LOCALES, BrandRules, KindSpec, ProductFacts
from tests.factories import BrandFactory, DraftFactory, ProductFactory, draft_with_text, kind

pytestmark = pytest.mark.django_db

SHIPPED_KINDS = importlib.import_module("editorial.migrations.0002_seed_kinds_and_roles").KINDS


@pytest.fixture(autouse=True)
def _no_house_examples(settings):
    """The shop's own copy only, unless a test gives house examples."""
    settings.COPYDESK_HOUSE_EXAMPLES = ""


@pytest.fixture
def house_file(settings, tmp_path):
    """Writes ``rows`` as the house examples file and points the setting at it."""
    def write(rows):
        path = tmp_path / f"house-{len(list(tmp_path.iterdir()))}.json"
        full = [{"brand": "", "category": "", "attributes": {}, "locale": "en",
                 "kind": "description", **row} for row in rows]
        path.write_text(json.dumps(full), encoding="utf-8")
        settings.COPYDESK_HOUSE_EXAMPLES = str(path)
        return path
    return write


def approved(text: str, *, kind_code: str = "description", **product) -> Draft:
    draft = draft_with_text(text, product=ProductFactory(**product), kind=kind(kind_code))
    revision = draft.current_revision
    Draft.objects.filter(pk=draft.pk).update(state=Draft.State.APPROVED,
                                             approved_revision=revision)
    return Draft.objects.get(pk=draft.pk)


def target(kind_code: str = "description", **product) -> Draft:
    draft = DraftFactory(product=ProductFactory(**product), kind=kind(kind_code))
    return Draft.objects.select_related("product__brand").get(pk=draft.pk)


def texts(examples) -> list[str]:
    return [example.text for example in examples]


# --- the shop's own approved copy ----------------------------------------------------------------

def test_same_brand_comes_before_same_category_before_shared_attributes():
    house, other_brand = BrandFactory(name="House"), BrandFactory(name="Other")
    approved("Other brand, other category.", brand=other_brand, category="garden",
             attributes={"colour": "green"})
    approved("Other brand, shared attribute.", brand=other_brand, category="garden",
             attributes={"material": "steel"})
    approved("Other brand, same category.", brand=other_brand, category="kitchen",
             attributes={})
    approved("Same brand.", brand=house, category="garden", attributes={})
    draft = target(brand=house, category="kitchen", attributes={"material": "steel"})

    examples = approved_example_map(drafts=[draft], k=3)[draft.pk]

    assert texts(examples) == ["Same brand.", "Other brand, same category.",
                               "Other brand, shared attribute."]
    assert examples[0].facts.brand == "House"
    assert examples[0].facts.source_text == ""  # the example's facts, not its old copy


def test_a_shared_attribute_value_outranks_a_shared_attribute_name():
    other = BrandFactory(name="Other")
    approved("Shares the name only.", brand=other, category="garden",
             attributes={"material": "oak"})
    approved("Shares name and value.", brand=other, category="garden",
             attributes={"material": "steel"})
    draft = target(category="kitchen", attributes={"material": "steel"})

    assert texts(approved_example_map(drafts=[draft], k=2)[draft.pk]) == [
        "Shares name and value.", "Shares the name only."]


def test_the_products_own_copy_and_other_kinds_and_locales_are_never_examples():
    product = ProductFactory(sku="OWN-1")
    own_title = draft_with_text("Its own approved title.", product=product, kind=kind("title"))
    Draft.objects.filter(pk=own_title.pk).update(approved_revision=own_title.current_revision)
    own_description = draft_with_text("Its own approved description.", product=product)
    Draft.objects.filter(pk=own_description.pk).update(
        approved_revision=own_description.current_revision)
    approved("A title of another product.", kind_code="title")
    approved("一款中文描述。", locale="zh-hans")
    approved("Another product's description.")
    # Regenerating its title: neither its own approved title nor its description serves.
    draft = Draft.objects.select_related("product__brand").get(pk=own_title.pk)

    assert texts(approved_example_map(drafts=[draft])[draft.pk]) == [
        "A title of another product."]


def test_chinese_drafts_get_chinese_examples_of_their_kind():
    approved("An English description.")
    approved("一款中文标题", kind_code="title", locale="zh-hans")
    approved("一款中文描述。", locale="zh-hans")
    draft = target(locale="zh-hans")

    assert texts(approved_example_map(drafts=[draft])[draft.pk]) == ["一款中文描述。"]


def test_only_approved_text_serves_and_the_approved_revision_not_a_later_edit(editor, reviewer):
    first = draft_with_text("Model text.")
    services.revision_save(draft=first, user=editor, text="The approved text.",
                           base_revision_id=first.current_revision_id)
    services.draft_submit(draft=Draft.objects.get(pk=first.pk), user=editor)
    first = Draft.objects.get(pk=first.pk)
    services.draft_approve(draft=first, user=reviewer, revision_id=first.current_revision_id)
    approved_revision_id = Draft.objects.get(pk=first.pk).approved_revision_id
    services.revision_save(draft=Draft.objects.get(pk=first.pk), user=editor,
                           text="A later edit nobody approved.",
                           base_revision_id=Draft.objects.get(pk=first.pk).current_revision_id)
    draft_with_text("Never approved.")
    draft = target()

    examples = approved_example_map(drafts=[draft])[draft.pk]

    assert texts(examples) == ["The approved text."]
    assert (examples[0].draft_id, examples[0].revision_id) == (first.pk, approved_revision_id)


def test_among_equally_similar_examples_the_most_recent_approval_comes_first():
    from datetime import timedelta

    from django.utils import timezone

    older, newer = approved("Approved last month."), approved("Approved today.")
    now = timezone.now()
    Draft.objects.filter(pk=older.pk).update(approved_at=now - timedelta(days=30))
    Draft.objects.filter(pk=newer.pk).update(approved_at=now)
    draft = target()

    assert texts(approved_example_map(drafts=[draft])[draft.pk]) == [
        "Approved today.", "Approved last month."]


def test_a_product_without_brand_or_category_still_gets_examples(django_assert_num_queries):
    approved("Another product without brand or category.", brand=None, category="")
    draft = target(brand=None, category="")

    with django_assert_num_queries(1):
        chosen = approved_example_map(drafts=[draft])

    assert texts(chosen[draft.pk]) == ["Another product without brand or category."]


def test_a_shop_without_approvals_and_without_house_examples_gives_none():
    draft = target()
    assert approved_example_map(drafts=[draft]) == {draft.pk: []}
    assert approved_example_map(drafts=[draft], k=0) == {draft.pk: []}


# --- house examples ------------------------------------------------------------------------------

def test_house_examples_fill_up_to_k_after_the_shops_own_copy(house_file):
    house_file([
        {"key": "en-description-garden", "title": "Garden hose", "category": "garden",
         "text": "House copy for a garden hose."},
        {"key": "en-description-kettle", "title": "Kettle", "category": "kitchen",
         "text": "House copy for a kettle."},
        {"key": "en-title-kettle", "kind": "title", "title": "Kettle", "category": "kitchen",
         "text": "A kettle title."},
        {"key": "zh-hans-description-kettle", "locale": "zh-hans", "title": "烧水壶",
         "category": "kitchen", "text": "一款烧水壶。"},
    ])
    own = approved("The shop's own approved copy.")
    draft = target(category="kitchen")

    examples = approved_example_map(drafts=[draft], k=3)[draft.pk]

    # The shop's copy first, then the house examples of this kind and locale, same category
    # first; never another kind's or locale's.
    assert texts(examples) == ["The shop's own approved copy.", "House copy for a kettle.",
                               "House copy for a garden hose."]
    assert [e.is_house for e in examples] == [False, True, True]
    assert examples[1].facts.title == "Kettle" and examples[1].facts.category == "kitchen"
    assert examples_json(examples) == [
        {"draft": own.pk, "revision": own.approved_revision_id},
        {"house": "en-description-kettle"},
        {"house": "en-description-garden"},
    ]


def test_house_examples_are_not_used_when_the_shop_has_enough_or_when_turned_off(house_file):
    house_file([{"key": "en-description-kettle", "title": "Kettle", "text": "House copy."}])
    approved("First.")
    approved("Second.")
    draft = target()

    assert texts(approved_example_map(drafts=[draft], k=2)[draft.pk]) == ["Second.", "First."]
    assert texts(approved_example_map(drafts=[draft], k=3, house=False)[draft.pk]) == [
        "Second.", "First."]
    assert texts(approved_example_map(drafts=[draft], k=3)[draft.pk])[-1] == "House copy."


def test_the_shipped_house_examples_cover_every_kind_and_locale_with_three(settings):
    settings.COPYDESK_HOUSE_EXAMPLES = str(DEFAULT_HOUSE_EXAMPLES)
    examples = house_examples()
    for code, *_ in SHIPPED_KINDS:
        for locale in LOCALES:
            assert len([e for e in examples if e.kind == code and e.facts.locale == locale]) == 3
    draft = target(kind_code="faq", locale="zh-hans", category="kitchen")
    chosen = approved_example_map(drafts=[draft])[draft.pk]
    assert len(chosen) == 3 and all(e.is_house for e in chosen)
    assert chosen[0].facts.category == "kitchen"


def test_the_shipped_house_examples_pass_the_checks_with_their_brands_rules():
    """Reference copy: no flag above INFO (no invented number, no absolute term, within the
    brand's and the kind's limits, the brand's required terms present)."""
    rows = json.loads(DEFAULT_HOUSE_EXAMPLES.read_text(encoding="utf-8"))
    brands = {b["name"]: BrandRules(
        name=b["name"], banned_terms=tuple(b["banned_terms"]),
        required_terms=tuple(b["required_terms"]), length_limits=b["length_limits"],
    ) for b in json.loads((DEFAULT_HOUSE_EXAMPLES.parent / "brands.json").read_text("utf-8"))}
    kinds = {code: KindSpec(code=code, label=label, instructions=text, max_chars=limit)
             for code, label, limit, _tokens, text in SHIPPED_KINDS}
    assert len({row["key"] for row in rows}) == len(rows)
    for row in rows:
        facts = ProductFacts(sku=row["key"], title=row["title"], brand=row["brand"],
                             category=row["category"], attributes=row["attributes"],
                             locale=row["locale"])
        flags = check_text(row["text"], facts=facts, kind=kinds[row["kind"]],
                           brand=brands[row["brand"]])
        assert [f.message for f in flags if f.severity != INFO] == [], row["key"]


# --- queries -------------------------------------------------------------------------------------

def test_one_query_per_kind_and_locale_for_a_chunk_of_thirty(django_assert_max_num_queries,
                                                             house_file):
    house_file([{"key": "en-title-1", "kind": "title", "title": "Kettle", "text": "A title."}])
    brands = [BrandFactory(name=f"Brand {n}") for n in range(3)]
    for n in range(6):
        approved(f"English description {n}.", brand=brands[n % 3], category=f"c{n % 2}")
        approved(f"English title {n}.", kind_code="title", brand=brands[n % 3])
        approved(f"中文描述{n}。", locale="zh-hans", brand=brands[n % 3])
    drafts = [target(brand=brands[n % 3], category=f"c{n % 4}") for n in range(12)]
    drafts += [target("title", brand=brands[n % 3]) for n in range(12)]
    drafts += [target(locale="zh-hans", brand=brands[n % 3]) for n in range(6)]
    assert len(drafts) == 30

    with django_assert_max_num_queries(3):
        chosen = approved_example_map(drafts=drafts, k=3)

    assert all(len(chosen[d.pk]) == 3 for d in drafts)


def test_drafts_without_their_brand_loaded_cost_one_query_more(django_assert_num_queries):
    brand = BrandFactory(name="Loaded later")
    approved("Same brand.", brand=brand, category="garden")
    approved("Same category.", category="kitchen")
    drafts = [Draft.objects.select_related("product").get(pk=DraftFactory(
        product=ProductFactory(brand=brand, category="kitchen")).pk) for _ in range(10)]

    with django_assert_num_queries(2):
        chosen = approved_example_map(drafts=drafts, k=2)

    assert all(texts(chosen[d.pk]) == ["Same brand.", "Same category."] for d in drafts)


def test_a_busy_brand_does_not_crowd_the_drafts_own_brand_out_of_the_pool(monkeypatch):
    from editorial import examples as module

    monkeypatch.setattr(module, "EXAMPLE_POOL", 5)
    mine, busy = BrandFactory(name="Mine"), BrandFactory(name="Busy")
    approved("Mine, approved long ago.", brand=mine, category="garden")
    for n in range(10):
        approved(f"Busy {n}.", brand=busy, category="kitchen")
    draft = target(brand=mine, category="kitchen")

    assert texts(approved_example_map(drafts=[draft], k=1)[draft.pk]) == [
        "Mine, approved long ago."]


# --- on the draft page ---------------------------------------------------------------------------

def test_each_candidate_names_the_examples_it_was_written_from(client, editor, house_file,
                                                               django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from editorial.models import Candidate

    house_file([{"key": "en-description-kettle", "title": "Kettle <b>1.7 L</b>",
                 "text": "House copy."}])
    title = approved("An approved title.", kind_code="title", sku="TITLE-1")
    description = approved("An approved description.", sku="<script>x</script>")
    draft = draft_with_text("The model's text.")
    first = draft.candidates.get()
    Candidate.objects.filter(pk=first.pk).update(examples=[
        {"draft": description.pk, "revision": description.approved_revision_id},
        {"house": "en-description-kettle"},
        {"house": "gone-from-the-file"},
        {"draft": 999999, "revision": 1},  # deleted since: left out
    ])
    Candidate.objects.create(
        draft=draft, index=1, rank=1, text="A second candidate.",
        model_version=first.model_version,
        examples=[{"draft": title.pk, "revision": title.approved_revision_id}],
    )
    client.force_login(editor)
    url = reverse("draft_detail", args=[draft.pk])
    client.get(url)  # warm caches (session, content types)

    with CaptureQueriesContext(connection) as few:
        html = client.get(url).content.decode()
    for n in range(10):  # more candidates, more examples: no more queries
        other = approved(f"Approved {n}.")
        Candidate.objects.create(draft=draft, index=n + 2, rank=n + 2, text=f"Candidate {n}.",
                                 model_version=first.model_version,
                                 examples=[{"draft": other.pk, "revision": 1}])
    with django_assert_max_num_queries(len(few)):
        more = client.get(url).content.decode()

    description_link = reverse("draft_detail", args=[description.pk])
    assert (f'<a href="{description_link}">&lt;script&gt;x&lt;/script&gt; · Description</a>'
            in html)
    assert f'<a href="{reverse("draft_detail", args=[title.pk])}">TITLE-1 · Title</a>' in html
    assert "House example: Kettle &lt;b&gt;1.7 L&lt;/b&gt;" in html
    assert "House example: gone-from-the-file" in html
    assert "999999" not in html
    assert "<script>x" not in html
    assert more.count("Written from:") == 12
