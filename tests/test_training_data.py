import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from editorial import training_data
from editorial.models import Candidate, Draft, ReviewDecision, Revision
from tests.factories import BrandFactory, DraftFactory, ModelVersionFactory, ProductFactory

SYSTEM = {"role": "system", "content": "You write product copy for Nordhavn."}


def user_msg(sku):
    return {"role": "user", "content": f"<product>{sku}</product>\nTask: describe it."}


def plant(sku, *, start, final=None, brand="Nordhavn", state=Draft.State.APPROVED,
          rejected=(), approved_days_ago=0, kind="description", prompt=None):
    """A draft generated from one candidate (its prompt stored), edited to ``final`` and
    approved; ``rejected`` revisions were rejected by a reviewer on the way."""
    product = ProductFactory(sku=sku, brand=BrandFactory(name=brand))
    draft = DraftFactory(product=product, kind_id=kind, state=Draft.State.READY)
    version = ModelVersionFactory(name="base")
    candidate = Candidate.objects.create(
        draft=draft, index=0, text=start, model_version=version,
        prompt=prompt if prompt is not None else [SYSTEM, user_msg(sku)],
    )
    revision = Revision.objects.create(draft=draft, number=1, text=start, candidate=candidate)
    for text in rejected:
        revision = Revision.objects.create(draft=draft, number=revision.number + 1, text=text,
                                           parent=revision)
        ReviewDecision.objects.create(draft=draft, revision=revision, decision="reject")
    if final is not None and final != revision.text:
        revision = Revision.objects.create(draft=draft, number=revision.number + 1,
                                           text=final, parent=revision)
    draft.current_revision = revision
    draft.state = state
    if state in (Draft.State.APPROVED, Draft.State.EXPORTED):
        draft.approved_revision = revision
        draft.approved_at = timezone.now() - timedelta(days=approved_days_ago)
    draft.save()
    return draft


@pytest.fixture
def planted(db):
    plant("A-1", start="A kettle that boils water.",
          final="A quiet kettle that boils a full litre in three minutes flat.")
    plant("A-2", start="A knife for every kitchen.", final="A knife for every kitchen.")
    plant("A-3", start="Shiny pan for you.", rejected=["Best pan ever!!!"],
          final="A cast-iron pan that holds heat.", approved_days_ago=30)
    plant("A-4", start="A mug.", state=Draft.State.REJECTED, final=None)
    plant("A-5", start="A jug.", state=Draft.State.IN_REVIEW, final="A glass jug.")
    plant("B-1", start="Ein Becher.", final="A stoneware cup, glazed by hand.",
          brand="Other")


def test_sft_export_gives_one_record_per_approved_draft_with_the_stored_prompt(planted):
    dataset = training_data.build_dataset(training_data.training_examples(), format="sft")
    assert dataset.records == [
        {"messages": [SYSTEM, user_msg("A-1"), {"role": "assistant", "content":
            "A quiet kettle that boils a full litre in three minutes flat."}]},
        {"messages": [SYSTEM, user_msg("A-2"), {"role": "assistant", "content":
            "A knife for every kitchen."}]},
        {"messages": [SYSTEM, user_msg("A-3"), {"role": "assistant", "content":
            "A cast-iron pan that holds heat."}]},
        {"messages": [SYSTEM, user_msg("B-1"), {"role": "assistant", "content":
            "A stoneware cup, glazed by hand."}]},
    ]
    assert dataset.stats.records == 4
    assert set(dataset.stats.per_brand) == {"Nordhavn", "Other"}
    assert dataset.stats.per_brand["Nordhavn"].records == 3


def test_sft_for_a_base_model_is_the_completion_document_it_generates_from(db):
    from generation.prompts import EXAMPLE_SEPARATOR

    document = ("Description copy from Nordhavn's online shop.\n---\n<product>\nTitle: Kettle\n"
                "</product>\nDescription: The Kettle")
    plant("C-1", start="The Kettle boils.", final="The Kettle boils 1.7 L quietly.",
          prompt=[{"role": "completion", "content": document}])
    plant("C-2", start="A mug.", final="A stoneware mug.")  # written by a chat model
    examples = training_data.training_examples(prompt_format="completion")
    dataset = training_data.build_dataset(examples, format="sft", prompt_format="completion")
    first, second = dataset.records
    assert first == {"prompt": document[:-len(" The Kettle")],
                     "completion": f" The Kettle boils 1.7 L quietly.{EXAMPLE_SEPARATOR}"}
    # No completion document stored: one is built from the product, ending at its entry.
    draft = Draft.objects.get(product__sku="C-2")
    assert second["prompt"].endswith("</product>\nDescription:")
    assert draft.product.title in second["prompt"]
    assert second["completion"] == f" A stoneware mug.{EXAMPLE_SEPARATOR}"
    assert dataset.stats.tokens > 0
    # The chat export of the same drafts is unchanged.
    chat = training_data.build_dataset(training_data.training_examples(), format="sft")
    assert all("messages" in record for record in chat.records)


def test_dpo_pairs_the_approved_text_against_the_model_text_and_rejected_revisions(planted):
    dataset = training_data.build_dataset(
        training_data.training_examples(brand="Nordhavn"), format="dpo", min_edit=0.3
    )

    def pair(sku, chosen, rejected):
        return {"prompt": [SYSTEM, user_msg(sku)],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}]}

    assert dataset.records == [
        pair("A-1", "A quiet kettle that boils a full litre in three minutes flat.",
             "A kettle that boils water."),
        pair("A-3", "A cast-iron pan that holds heat.", "Shiny pan for you."),
        pair("A-3", "A cast-iron pan that holds heat.", "Best pan ever!!!"),
    ]
    # An unchanged draft gives no pair; a barely edited one falls under --min-edit.
    strict = training_data.build_dataset(
        training_data.training_examples(brand="Nordhavn"), format="dpo", min_edit=0.99
    )
    assert [r["rejected"][0]["content"] for r in strict.records] == ["Best pan ever!!!"]


def test_since_and_kind_filters(planted):
    recent = training_data.training_examples(since=timezone.now() - timedelta(days=7))
    assert sorted(e.sku for e in recent) == ["A-1", "A-2", "B-1"]
    assert training_data.training_examples(kind="title") == []


def test_split_is_by_product_stable_and_disjoint():
    skus = [f"SKU-{i}" for i in range(500)]
    first = {sku: training_data.split_of(sku) for sku in skus}
    assert first == {sku: training_data.split_of(sku) for sku in reversed(skus)}
    share = sum(1 for v in first.values() if v == "validation") / len(skus)
    assert 0.12 < share < 0.28
    examples = [
        training_data.TrainingExample(sku=sku, brand="b", kind=kind,
                                      messages=({"role": "user", "content": sku},),
                                      approved_text=f"{sku} {kind}")
        for sku in skus[:60] for kind in ("description", "title")
    ]
    train = training_data.build_dataset(examples, split="train")
    validation = training_data.build_dataset(examples, split="validation")
    train_skus = {r["messages"][0]["content"] for r in train.records}
    validation_skus = {r["messages"][0]["content"] for r in validation.records}
    assert train_skus and validation_skus and not train_skus & validation_skus
    assert len(train.records) + len(validation.records) == 120


def test_duplicates_are_dropped():
    example = training_data.TrainingExample(
        sku="X", brand="b", kind="description", messages=(SYSTEM, user_msg("X")),
        approved_text="Same text.",
    )
    twin = training_data.TrainingExample(
        sku="X", brand="b", kind="title", messages=(SYSTEM, user_msg("X")),
        approved_text="Same text.",
    )
    dataset = training_data.build_dataset([example, twin])
    assert len(dataset.records) == 1
    assert dataset.stats.duplicates == 1


def test_command_writes_jsonl(planted, tmp_path):
    out = tmp_path / "sft.jsonl"
    call_command("export_training_data", "--format", "sft", "--brand", "Other",
                 "--out", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [{"messages": [SYSTEM, user_msg("B-1"), {
        "role": "assistant", "content": "A stoneware cup, glazed by hand."}]}]


def test_admin_sees_statistics_and_downloads(planted, client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("training_home"), {"format": "sft"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-stat="records">4<' in html
    assert "Nordhavn" in html and "Other" in html
    download = client.get(reverse("training_home"),
                          {"format": "dpo", "min_edit": "0.3", "download": "1"})
    assert download["Content-Disposition"].startswith("attachment;")
    records = [json.loads(line) for line in download.content.decode().splitlines()]
    assert len(records) == 4  # twice, B-1


def test_editors_cannot_download_training_data(planted, client, editor):
    client.force_login(editor)
    assert client.get(reverse("training_home"), {"download": "1"}).status_code == 403
