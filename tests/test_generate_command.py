"""`generate --inline` runs the real engine (a tiny random-weight model) in this process."""

import pytest
from django.core.management import CommandError, call_command

from editorial.models import Candidate, Draft, GenerationJob, ModelVersion
from editorial.services import model_version_register
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny_model(tiny_model_dir):
    return model_version_register(name="tiny", path=str(tiny_model_dir),
                                  source=ModelVersion.Source.LOCAL, make_default=True)


def test_inline_generation_stores_candidates_with_their_provenance(tiny_model, capsys):
    ProductFactory(sku="K-1")
    ProductFactory(sku="K-2", locale="zh-hans", title="不锈钢烧水壶", attributes={"容量": "1.7 L"})
    call_command("generate", "--all", "--kinds", "description,slogan", "--candidates", "2",
                 "--max-new-tokens", "6", "--seed", "11", "--inline")
    assert "succeeded: 4 done, 0 failed of 4" in capsys.readouterr().out
    job = GenerationJob.objects.get()
    assert job.params["seed"] == 11 and job.tokens_generated > 0
    assert set(Draft.objects.values_list("state", flat=True)) == {Draft.State.READY}
    candidate = Candidate.objects.filter(draft__product__sku="K-2").first()
    assert candidate.model_version == tiny_model
    assert candidate.prompt[0]["role"] == "system"
    assert "不锈钢烧水壶" in candidate.prompt[-1]["content"]
    assert 0 < candidate.completion_tokens <= 6
    assert candidate.prompt_tokens > 0
    assert candidate.params["candidates"] == 2


def test_inline_generation_is_reproducible_with_the_same_seed(tiny_model):
    ProductFactory(sku="K-1")
    for _ in range(2):
        call_command("generate", "--sku", "K-1", "--candidates", "2", "--max-new-tokens", "6",
                     "--seed", "5", "--inline")
    first, second = GenerationJob.objects.order_by("pk")
    texts = [sorted(job.candidates.values_list("text", flat=True)) for job in (first, second)]
    assert texts[0] == texts[1]


def test_unknown_sku_and_bad_params_are_clear_errors(tiny_model):
    ProductFactory(sku="K-1")
    with pytest.raises(CommandError, match="Unknown SKU.*NOPE"):
        call_command("generate", "--sku", "K-1", "NOPE", "--inline")
    with pytest.raises(CommandError, match="--top-p"):
        call_command("generate", "--sku", "K-1", "--top-p", "1.5", "--inline")
    assert not GenerationJob.objects.exists()


def test_a_model_that_cannot_load_fails_the_drafts_with_the_reason(capsys):
    model_version_register(name="broken", path="/nonexistent/model", source="local",
                           make_default=True)
    ProductFactory(sku="K-1")
    with pytest.raises(SystemExit):
        call_command("generate", "--sku", "K-1", "--inline")
    draft = Draft.objects.get()
    assert draft.state == Draft.State.FAILED
    assert "Generation failed" in draft.error
    assert "K-1 description: Generation failed" in capsys.readouterr().err
