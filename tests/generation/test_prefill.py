"""Exact prefill on CPU: each prompt alone and unpadded, attention cut to what each query sees,
and a prompt's beginning copied from the prompt before it where they share it. It must leave
the same cache (so the same next-token logits and text) as the padded batch prefill it
replaces."""

import dataclasses

import pytest
import torch

from generation import attention
from generation import engine as engine_module
from generation.attention import causal_attention
from generation.engine import GenerationRequest
from generation.params import GenerationParams

GREEDY = GenerationParams(do_sample=False, max_new_tokens=8)
SAMPLE = GenerationParams(max_new_tokens=8, candidates=3, best_of=0, temperature=0.9)
HEADER = ("Product copy written by the shop's editors for the online store, one block per "
          "product, each opened by its facts.\n---\n")
BODIES = ["Steel bottle, 500 ml, sage.", "玻璃茶壶，容量600毫升，耐热。" * 4,
          "A long note about a linen shirt in sand and white. " * 5, "Mug."]


def _masked(query, key, value, window):
    """Plain SDPA with the causal (and sliding-window) mask written out, as transformers
    builds it for a padded batch."""
    q_len, k_len = query.shape[2], key.shape[2]
    positions = torch.arange(k_len - q_len, k_len)[:, None]
    keys = torch.arange(k_len)[None, :]
    mask = keys <= positions
    if window is not None:
        mask &= keys > positions - window
    rep = query.shape[1] // key.shape[1]
    return torch.nn.functional.scaled_dot_product_attention(
        query, key.repeat_interleave(rep, 1), value.repeat_interleave(rep, 1), attn_mask=mask,
        scale=0.25)


@pytest.mark.parametrize(
    ("q_len", "k_len", "window"),
    [(40, 40, None), (40, 40, 64), (40, 40, 12), (15, 40, 12), (15, 40, None)],
    ids=["causal", "window wider than the row", "sliding window", "after a copied prefix",
         "after a copied prefix, no window"],
)
def test_causal_attention_equals_attention_under_the_full_mask(monkeypatch, q_len, k_len, window):
    monkeypatch.setattr(attention, "PREFILL_BLOCK", 8)  # several query blocks
    generator = torch.Generator().manual_seed(3)
    query = torch.randn(2, 4, q_len, 16, generator=generator)
    key = torch.randn(2, 2, k_len, 16, generator=generator)
    value = torch.randn(2, 2, k_len, 16, generator=generator)
    out = causal_attention(query, key, value, scale=0.25, window=window)
    assert torch.allclose(out, _masked(query, key, value, window), atol=1e-5)


def _documents(engine):
    reqs = [GenerationRequest(prompt=HEADER + body, seed=i, candidates=3)
            for i, body in enumerate(BODIES)]
    assert not any(p.prefix for p in engine._prepare(reqs, GREEDY))
    return reqs


def _first_step_logits_and_texts(engine, reqs, params, *, exact):
    """The logits of the first decode step (the one after prefill) and every text."""
    steps = []

    def keep_first(_module, args, kwargs, output):
        if not steps and kwargs["input_ids"].shape[1] == 1:
            steps.append(output.logits[:, -1].float().clone())

    engine.exact_prefill = exact
    handle = engine.model.register_forward_hook(keep_first, with_kwargs=True)
    try:
        results = engine.generate(reqs, params)
    finally:
        handle.remove()
        engine.exact_prefill = True
    return steps[0], [[c.text for c in r.candidates] for r in results]


@pytest.mark.parametrize("params", [GREEDY, SAMPLE], ids=["greedy", "sampling"])
@pytest.mark.parametrize("model", ["sliding", "plain"])
@pytest.mark.parametrize("pass_tokens", [2048, 60], ids=["one pass", "several passes"])
def test_exact_prefill_gives_the_logits_and_text_of_the_padded_prefill(
        sliding_engine, tiny_engine, monkeypatch, params, model, pass_tokens):
    monkeypatch.setattr(attention, "PREFILL_BLOCK", 8)
    monkeypatch.setattr(engine_module, "PREFILL_TOKENS", pass_tokens)
    engine = sliding_engine if model == "sliding" else tiny_engine
    reqs = _documents(engine)
    lengths = [len(engine.document_ids(r.prompt)) for r in reqs]
    assert len(set(lengths)) == len(reqs) and max(lengths) > 4 * 16  # padded, past the window
    logits, text = _first_step_logits_and_texts(engine, reqs, params, exact=True)
    reference, reference_text = _first_step_logits_and_texts(engine, reqs, params, exact=False)
    assert torch.allclose(logits, reference, atol=1e-4)
    assert text == reference_text


def test_prompts_sharing_their_beginning_run_it_through_the_model_once(sliding_engine):
    engine = sliding_engine
    reqs = _documents(engine)
    header = len(engine.document_ids(HEADER)) - 1  # the header's last token can merge
    prompts = [len(engine.document_ids(r.prompt)) - 1 for r in reqs]  # decoding runs the last
    run = []

    def count(_module, _args, kwargs):
        run.append(kwargs["input_ids"].shape[1])

    handle = engine.model.base_model.register_forward_pre_hook(count, with_kwargs=True)
    try:
        engine.generate(reqs, GREEDY)
    finally:
        handle.remove()
    prefills = [n for n in run if n > 1]
    assert len(prefills) == 1  # the prompts packed into one pass, unpadded
    assert sum(prefills) <= sum(prompts) - (len(reqs) - 1) * header


def test_a_one_token_prompt_among_others_needs_no_prefill(tiny_engine):
    one = next(GenerationRequest(prompt=text, seed=9) for text in ("Hi", "A", "x")
               if len(tiny_engine.document_ids(text)) == 1)
    reqs = [one, *_documents(tiny_engine)[:2]]
    logits, text = _first_step_logits_and_texts(tiny_engine, reqs, GREEDY, exact=True)
    reference, reference_text = _first_step_logits_and_texts(tiny_engine, reqs, GREEDY,
                                                             exact=False)
    assert torch.allclose(logits, reference, atol=1e-4) and text == reference_text


@pytest.mark.parametrize("params", [GREEDY, SAMPLE], ids=["greedy", "sampling"])
@pytest.mark.parametrize("pass_tokens", [2048, 60], ids=["one pass", "several passes"])
def test_holding_each_prompt_once_writes_what_a_cache_row_per_candidate_writes(
        sliding_engine, monkeypatch, params, pass_tokens):
    """The CPU decode cache holds a request's prompt once for all its candidates. Prompts
    longer than the window, packed into one or several prefill passes, sharing their header,
    decoding past the window (24 new tokens, window 16), rows leaving the batch at their stop
    string: the same logits and text as a cache row per candidate with one plain attention."""
    from generation.decoding import RowRules
    from generation.kvcache import SharedPromptCache

    monkeypatch.setattr(attention, "PREFILL_BLOCK", 8)
    monkeypatch.setattr(engine_module, "PREFILL_TOKENS", pass_tokens)
    engine = sliding_engine
    params = dataclasses.replace(params, max_new_tokens=24)
    reqs = _documents(engine)
    reqs[1].rules = RowRules(allowed_numbers=frozenset(), banned_terms=(), locale="en",
                             stop_strings=("e",), ground_numbers=False, block_markup=False)
    caches, original = [], engine._decode_cache

    def allocated(*args, **kwargs):
        cache = original(*args, **kwargs)
        caches.append((cache, getattr(cache.layers[0], "own_keys", None)))
        return cache

    monkeypatch.setattr(engine, "_decode_cache", allocated)
    logits, text = _first_step_logits_and_texts(engine, reqs, params, exact=True)
    ((cache, own),) = caches
    assert isinstance(cache, SharedPromptCache)
    rows = sum(r.candidates for r in reqs) if params.do_sample else len(reqs)
    assert cache.layers[0]._key_buffer.shape[0] == len(reqs) and own.shape[0] == rows
    assert len({len(c) for texts in text for c in texts}) > 1  # some rows stopped early
    monkeypatch.setattr(attention, "_FLASH", None)  # a row per candidate, one attention
    reference, reference_text = _first_step_logits_and_texts(engine, reqs, params, exact=True)
    assert not isinstance(caches[-1][0], SharedPromptCache)
    assert torch.allclose(logits, reference, atol=1e-4)
    assert text == reference_text
