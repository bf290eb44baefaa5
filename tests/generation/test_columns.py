"""Decoding in a trimmed output layer's columns: every step gives what the full-width scores give
(the same penalties, masks, nudges and top-k, translated through the column ids), so the engine
writes the same text without widening 176k scores to 262k and reading them again."""

import numpy as np
import pytest
import torch

from generation import sampling
from generation.columns import Columns
from generation.cpu import TrimmedHead
from generation.decoding import GroundedDecoding, rules_for, vocabulary_for
from generation.engine import Engine, GenerationRequest
from generation.params import GenerationParams
from generation.sampling import _log_normalizer, top_k
from generation.stepping import RepetitionPenalty

NEG_INF = float("-inf")


def _kept(vocab_size, eos_ids, seed=0):
    """About two thirds of the ids, EOS always among them (what a trimmed head keeps)."""
    generator = torch.Generator().manual_seed(seed)
    keep = (torch.rand(vocab_size, generator=generator) < 0.67).nonzero().squeeze(-1)
    return torch.unique(torch.cat([keep, torch.tensor(eos_ids)]))


def test_columns_translate_ids_and_drop_those_without_a_column():
    columns = Columns(torch.tensor([1, 4, 5, 9]), vocab_size=12)
    assert columns.of(np.array([9, 0, 4, 4, 11, 15, -1])).tolist() == [3, 1, 1]
    assert columns.token_ids(torch.tensor([[0, 3]])).tolist() == [[1, 9]]
    assert columns.flat_of(torch.tensor([[5, 2], [1, 9]])).tolist() == [2, 4, 7]
    with pytest.raises(ValueError, match="increasing"):
        Columns(torch.tensor([3, 1]), vocab_size=5)


@pytest.mark.parametrize("width", [20_000, 20_000 + 77, 300])
def test_the_two_stage_top_k_finds_the_same_scores_as_topk(width):
    generator = torch.Generator().manual_seed(width)
    scores = torch.randn(6, width, generator=generator) * 3
    scores[1, : width - 10] = NEG_INF  # fewer finite scores than k
    scores[2, -3:] = 50.0  # the best ones in the partial last block
    values, columns = top_k(scores, 50)
    expected = torch.topk(scores, 50, dim=-1).values
    assert torch.equal(values.sort(dim=-1).values, expected.sort(dim=-1).values)
    assert torch.equal(scores.gather(1, columns), values)


def test_the_two_stage_top_k_is_what_the_sampler_uses_on_wide_rows(monkeypatch):
    calls = []
    original = sampling.torch.topk

    def counting(x, k, *args, **kwargs):
        calls.append(x.shape[-1])
        return original(x, k, *args, **kwargs)

    monkeypatch.setattr(sampling.torch, "topk", counting)
    sampler = sampling.SeededSampler([1, 2], temperature=0.7, top_k=50, top_p=0.95)
    sampler.choose(torch.randn(2, 176_000))
    assert max(calls) < 176_000  # never a selection over the whole row


def test_the_repetition_penalty_in_columns_is_the_full_width_one_on_kept_ids():
    vocab = 300
    keep = _kept(vocab, [0])
    columns = Columns(keep, vocab)
    full = torch.full((3, vocab), NEG_INF)
    full[:, keep] = torch.randn(3, len(keep), generator=torch.Generator().manual_seed(1)) * 4
    ids = torch.randint(0, vocab, (3, 40), generator=torch.Generator().manual_seed(2))
    expected = RepetitionPenalty(1.3)(ids, full.clone())
    narrow = RepetitionPenalty(1.3, columns)(ids, full[:, keep].contiguous())
    assert torch.equal(narrow, expected[:, keep])
    assert not torch.equal(expected[:, keep], full[:, keep])  # it did penalize something


def test_the_decoding_rules_in_columns_mask_what_they_mask_at_full_width(gen_tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gen_tiny_model)
    vocabulary = vocabulary_for(tokenizer)
    vocab = len(tokenizer)
    eos = [tokenizer.eos_token_id]
    keep = _kept(vocab, eos, seed=3)
    columns = Columns(keep, vocab)
    rules = [
        rules_for(
            facts_text="Steel bottle, 350 ml, 18/8 steel",
            locale="en",
            brand_banned=("steel", "cold"),
            stop_strings=("\n\n",),
            fact_values=("350 ml", "sage green"),
        ),
        None,
        rules_for(facts_text="玻璃茶壶 600毫升", locale="zh-hans"),
    ]
    wide = GroundedDecoding(vocabulary, rules, prompt_width=2, eos_token_ids=eos)
    narrow = GroundedDecoding(vocabulary, rules, prompt_width=2, eos_token_ids=eos, columns=columns)
    texts = [" The 35", " A light", "这款最"]
    generator = torch.Generator().manual_seed(4)
    ids = torch.tensor([[5, 6]] * 3)
    steps = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    for step in range(max(len(s) for s in steps) + 1):
        full = torch.full((3, vocab), NEG_INF)
        full[:, keep] = torch.randn(3, len(keep), generator=generator)
        expected = wide(ids, full.clone())
        assert torch.equal(narrow(ids, full[:, keep].contiguous()), expected[:, keep])
        nxt = [s[step] if step < len(s) else eos[0] for s in steps]
        ids = torch.cat([ids, torch.tensor(nxt).unsqueeze(1)], dim=1)


@pytest.fixture(scope="module")
def trimmed_engine(gen_tiny_model):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COPYDESK_TORCH_THREADS", "1")
        engine = Engine(gen_tiny_model, device="cpu", dtype=torch.float32)
    head = engine.model.get_output_embeddings()
    keep = _kept(head.weight.shape[0], engine.eos_token_ids, seed=5)
    engine.model.set_output_embeddings(TrimmedHead(head, keep))
    return engine


@pytest.mark.parametrize(
    "params",
    [
        GenerationParams(max_new_tokens=20, do_sample=False, repetition_penalty=1.3),
        GenerationParams(
            max_new_tokens=20, candidates=3, best_of=0, temperature=0.9, repetition_penalty=1.2
        ),
        GenerationParams(max_new_tokens=20, candidates=2, best_of=0, top_k=0, top_p=0.9),
    ],
)
@pytest.mark.parametrize("with_rules", [False, True])
def test_decoding_in_columns_writes_what_full_width_scores_write(
    trimmed_engine, params, with_rules, monkeypatch
):
    rules = (
        rules_for(
            facts_text="350 ml steel bottle",
            locale="en",
            brand_banned=("the",),
            stop_strings=("\n\n",),
            fact_values=("steel",),
        )
        if with_rules
        else None
    )
    requests = [
        GenerationRequest(
            messages=[{"role": "user", "content": text}],
            seed=i,
            candidates=params.sampled if params.do_sample else 1,
            rules=rules,
        )
        for i, text in enumerate(["A steel bottle.", "Ein Becher aus Glas, 0,3 l."])
    ]
    widths = []
    original = TrimmedHead.forward

    def recording(head, hidden):
        scores = original(head, hidden)
        widths.append(scores.shape[-1])
        return scores

    monkeypatch.setattr(TrimmedHead, "forward", recording)
    head = trimmed_engine.model.get_output_embeddings()
    try:
        trimmed_engine.column_scores = False
        wide = trimmed_engine.generate(requests, params)
        assert set(widths) == {head.vocab_size}
        widths.clear()
        trimmed_engine.column_scores = True
        narrow = trimmed_engine.generate(requests, params)
    finally:
        trimmed_engine.column_scores = True
    assert set(widths) == {len(head.keep)}
    assert [[c.text for c in r.candidates] for r in narrow] == [
        [c.text for c in r.candidates] for r in wide
    ]
    assert any(c.text.strip() for r in narrow for c in r.candidates)


def test_a_trimmed_head_outside_the_engine_still_gives_full_width_logits(trimmed_engine):
    ids = torch.tensor([[1, 2, 3]])
    with torch.inference_mode():
        logits = trimmed_engine.model(input_ids=ids).logits
    head = trimmed_engine.model.get_output_embeddings()
    assert logits.shape[-1] == head.vocab_size


def test_the_sampling_norm_of_the_kept_columns_is_the_full_width_norm():
    """Summed in float32, 46 of 800 rows differed in the last bit here (an AMD EPYC), enough
    for a top-p draw from the columns to write another draft than the full width's."""
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        keep = torch.randperm(50_000, generator=generator)[:3_000].sort().values
        full = torch.full((4, 50_000), NEG_INF)
        full[:, keep] = torch.randn(4, len(keep), generator=generator) * 3
        assert torch.equal(_log_normalizer(full[:, keep].contiguous()), _log_normalizer(full))
