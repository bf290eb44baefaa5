"""The fine-tuning core on the tiny model: masking, mechanics, a loadable result."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from generation.finetune import (
    IGNORE_INDEX,
    PHASES,
    CompletionCollator,
    FineTuneConfig,
    _batch_loss,
    encode_example,
    encode_record,
    finetune,
)
from generation.prompts import (
    EXAMPLE_SEPARATOR,
    KindSpec,
    ProductFacts,
    build_completion,
    completion_training_pair,
)

MESSAGES = [
    {"role": "system", "content": "You write product copy."},
    {"role": "user", "content": "Product: steel bottle, 500 ml.\nTask: describe it."},
    {"role": "assistant", "content": "A light steel bottle for daily use."},
]


def records(n):
    return [{"messages": [
        MESSAGES[0],
        {"role": "user", "content": f"Product {i}: steel bottle.\nTask: describe it."},
        {"role": "assistant", "content": f"Bottle number {i}: light steel, daily use."},
    ]} for i in range(n)]


@pytest.fixture(scope="module")
def tokenizer(gen_tiny_model):
    return AutoTokenizer.from_pretrained(str(gen_tiny_model))


def test_prompt_tokens_are_masked_and_completion_tokens_are_labelled(tokenizer):
    encoded = encode_example(tokenizer, MESSAGES)
    labels, ids = encoded["labels"], encoded["input_ids"]
    prompt_ids = tokenizer.apply_chat_template(MESSAGES[:-1], add_generation_prompt=True,
                                               tokenize=False)
    n_prompt = len(tokenizer(prompt_ids, add_special_tokens=False)["input_ids"])
    assert labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:]
    completion = tokenizer.decode(ids[n_prompt:])
    assert completion == "A light steel bottle for daily use.<|im_end|>"
    assert ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_collator_pads_with_masked_labels(tokenizer):
    short = encode_example(tokenizer, MESSAGES)
    long = encode_example(tokenizer, [*MESSAGES[:2], {"role": "assistant",
                                                       "content": "Much longer text " * 5}])
    batch = CompletionCollator(tokenizer.pad_token_id)([short, long])
    width = len(long["input_ids"])
    assert batch["input_ids"].shape == (2, width)
    pad = width - len(short["input_ids"])
    assert batch["attention_mask"][0].tolist() == [1] * len(short["input_ids"]) + [0] * pad
    assert batch["labels"][0].tolist() == short["labels"] + [IGNORE_INDEX] * pad
    assert batch["input_ids"][0, len(short["input_ids"]):].tolist() == (
        [tokenizer.pad_token_id] * pad)
    # Only completion tokens count in the loss.
    assert int((batch["labels"] != IGNORE_INDEX).sum()) == sum(
        sum(1 for x in e["labels"] if x != IGNORE_INDEX) for e in (short, long))


def test_long_examples_keep_the_completion(tokenizer):
    encoded = encode_example(tokenizer, MESSAGES, max_length=24)
    assert len(encoded["input_ids"]) == 24
    assert tokenizer.decode([t for t in encoded["labels"] if t != IGNORE_INDEX]).startswith(
        "A light steel bottle")


def test_the_loss_projects_only_the_positions_that_predict_copy(tokenizer, gen_tiny_model):
    """The loss over completion tokens is the full-logits cross-entropy of those tokens, in a
    padded batch of unequal prompts, with far fewer output rows computed."""
    model = AutoModelForCausalLM.from_pretrained(str(gen_tiny_model), dtype=torch.float32).eval()
    short = encode_example(tokenizer, MESSAGES)
    long = encode_example(tokenizer, [{"role": "system", "content": "Long prompt " * 30},
                                      *MESSAGES[1:]])
    batch = CompletionCollator(tokenizer.pad_token_id)([short, long])
    shown = []
    real_forward = model.forward

    def forward(**kwargs):
        output = real_forward(**kwargs)
        shown.append(output.logits.shape[0])
        return output

    model.forward = forward
    with torch.no_grad():
        total, count = _batch_loss(model, batch)
        full = real_forward(input_ids=batch["input_ids"],
                            attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    expected = torch.nn.functional.cross_entropy(full.reshape(-1, full.size(-1)),
                                                 labels.reshape(-1), reduction="sum")
    assert count == int((labels != IGNORE_INDEX).sum())
    assert float(total) == pytest.approx(float(expected), rel=1e-5)
    assert shown == [count] and count < batch["input_ids"].numel() / 3


KETTLE = ProductFacts(sku="K-1", title="Steel kettle 1.7 L", attributes={"capacity": "1.7 L"})
DESCRIPTION = KindSpec(code="description", label="product description", instructions="x")


def test_a_completion_document_splits_at_its_entry_without_the_lead_in():
    other = ProductFacts(sku="M-1", title="Stoneware mug")
    prompt = build_completion(facts=KETTLE, kind=DESCRIPTION,
                              examples=[(other, "A mug glazed by hand.")])
    assert prompt.lead_in == "The Steel kettle 1.7 L" and prompt.text.endswith(prompt.lead_in)
    head, completion = completion_training_pair(prompt.text, "  A kettle that boils 1.7 L. ",
                                                "description")
    assert prompt.text.startswith(head) and head.endswith("</product>\nProduct description:")
    assert "A mug glazed by hand." in head  # the examples stay in the prompt
    assert completion == f" A kettle that boils 1.7 L.{EXAMPLE_SEPARATOR}"
    with pytest.raises(ValueError, match="not a completion document"):
        completion_training_pair("Just some text", "copy")


def test_a_prompt_completion_record_labels_only_the_copy_and_its_separator(tokenizer):
    record = {"prompt": "Kettle facts.\nDescription:", "completion": " A kettle.\n---\n"}
    encoded = encode_record(tokenizer, record)
    prompt_ids = tokenizer(record["prompt"], add_special_tokens=True)["input_ids"]
    n = len(prompt_ids)
    assert encoded["input_ids"][:n] == prompt_ids
    assert encoded["labels"][:n] == [IGNORE_INDEX] * n
    assert tokenizer.decode(encoded["labels"][n:]) == " A kettle.\n---\n"
    assert encode_record(tokenizer, {"messages": MESSAGES}) == encode_example(tokenizer, MESSAGES)


def test_a_base_model_without_a_chat_template_finetunes_on_prompt_completion_records(
    gen_tiny_model, tmp_path
):
    import shutil

    base = tmp_path / "base"
    shutil.copytree(gen_tiny_model, base)
    (base / "chat_template.jinja").unlink()
    data = [{"prompt": f"<product>\nTitle: bottle {i}\n</product>\nDescription:",
             "completion": f" Bottle {i}: light steel, daily use.\n---\n"} for i in range(8)]
    result = finetune(
        base_path=base, output_dir=tmp_path / "out", train=data, validation=data[:3],
        config=FineTuneConfig(epochs=4, lr=3e-3, batch_size=4, warmup_ratio=0),
        device="cpu",
    )
    assert result.after.loss < result.before.loss
    assert AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"))


@pytest.mark.parametrize("lora", [False, True])
def test_finetune_lowers_loss_reports_progress_and_saves_a_plain_model(
    gen_tiny_model, tmp_path, lora
):
    seen, phases = [], []
    data = records(8)
    result = finetune(
        base_path=gen_tiny_model, output_dir=tmp_path / "out", train=data, validation=data[:3],
        config=FineTuneConfig(epochs=4, lr=3e-3, batch_size=4, grad_accum=2, lora=lora,
                              lora_r=8, warmup_ratio=0, eval_batch_size=1),
        device="cpu", progress=lambda step, total, loss: seen.append((step, total, loss)),
        on_phase=phases.append,
    )
    assert result.steps == 4  # 8 records / 4 per batch x 4 epochs / 2 accumulated
    # Each phase in order; each evaluation says it is alive after each of its 3 batches.
    assert phases == ["preparing", *["evaluating_before"] * 4, "training",
                      *["evaluating_after"] * 4, "saving"]
    assert tuple(dict.fromkeys(phases)) == PHASES
    assert [s for s, _, _ in seen] == [1, 2, 3, 4] and seen[0][1] == 4
    assert result.after.loss < result.before.loss
    assert result.before.perplexity > result.after.perplexity
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"))
    assert not any("lora" in name for name, _ in loaded.named_parameters())
    assert AutoTokenizer.from_pretrained(str(tmp_path / "out")).chat_template
    base = AutoModelForCausalLM.from_pretrained(str(gen_tiny_model))
    changed = any(not torch.equal(a, b) for a, b in
                  zip(base.state_dict().values(), loaded.state_dict().values(), strict=True))
    assert changed
