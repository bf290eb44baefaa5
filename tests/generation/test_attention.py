"""Decode attention in two parts (each request's prompt, held once, for all its rows, then each
row's own tokens): the same output as one attention over every row's whole cache, and the engine
uses it for a request's candidates."""

import pytest
import torch

from generation import attention
from generation.attention import SharedPrompt
from generation.engine import GenerationRequest
from generation.params import GenerationParams


class _Layer:
    def __init__(self, keys, values):
        self._key_buffer, self._value_buffer = keys, values


def _batch(requests, *, width=12, steps=5, heads=4, kv_heads=2, dim=8, seed=0):
    """Queries of one decode step for rows of ``requests`` (a prompt index per row), a
    ``SharedPrompt`` over one cache layer holding each prompt once (prompt ``r`` with ``r % 3``
    positions of left padding), the rows' own keys and values, and the same as one
    attention's whole-row keys, values and boolean mask."""
    generator = torch.Generator().manual_seed(seed)
    rows, prompts = len(requests), max(requests) + 1
    query = torch.randn(rows, heads, 1, dim, generator=generator)
    prompt_keys = torch.randn(prompts, kv_heads, width, dim, generator=generator)
    prompt_values = torch.randn(prompts, kv_heads, width, dim, generator=generator)
    own_keys = torch.randn(rows, kv_heads, steps, dim, generator=generator)
    own_values = torch.randn(rows, kv_heads, steps, dim, generator=generator)
    prompt_mask = torch.ones(prompts, width, dtype=torch.bool)
    for prompt in range(prompts):
        prompt_mask[prompt, : prompt % 3] = False
    shared = SharedPrompt(requests, width, [_Layer(prompt_keys, prompt_values)], prompt_mask)
    index = torch.tensor(requests)
    key = torch.cat([prompt_keys[index], own_keys], dim=2)
    value = torch.cat([prompt_values[index], own_values], dim=2)
    mask = torch.cat([prompt_mask[index], torch.ones(rows, steps, dtype=torch.bool)], dim=1)
    return query, shared, (own_keys, own_values), (key, value, mask[:, None, None, :])


def _one_part(query, key, value, mask, scale):
    rep = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(rep, 1), value.repeat_interleave(rep, 1)
    return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask,
                                                            scale=scale)


@pytest.mark.parametrize(
    "requests",
    [[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 2, 2], [0, 0]],
    ids=["same-sized", "a request with fewer rows", "one request"],
)
def test_two_part_attention_equals_one_attention_over_the_whole_rows(requests):
    query, shared, own, whole = _batch(requests)
    out = shared.attend(query, *own, layer=0, scale=0.3)
    assert torch.allclose(out, _one_part(query, *whole, scale=0.3), atol=1e-5)


@pytest.mark.parametrize(
    "window", [14, 10, 5, 3],
    ids=["inside the prompt", "past its padding", "at its end", "inside the own tokens"])
def test_positions_behind_the_window_are_not_seen(window):
    query, shared, own, (key, value, mask) = _batch([0, 0, 0, 1, 2, 2])
    out = shared.attend(query, *own, layer=0, scale=0.3, window=window)
    mask = mask.clone()
    mask[..., : key.shape[2] - window] = False  # transformers' sliding-window mask
    assert torch.allclose(out, _one_part(query, key, value, mask, scale=0.3), atol=1e-5)


@pytest.mark.parametrize("window", [None, 14], ids=["no window", "a window inside the prompt"])
def test_a_request_with_an_empty_prompt_attends_to_its_own_tokens_only(window):
    # A one-token prompt leaves nothing in the cache: its row is all padding, and its rows
    # must weigh the prompt part 0 (not the flash kernel's log-sum-exp of 0 for no keys).
    query, shared, own, (key, value, mask) = _batch([0, 0, 1, 1, 2])
    width = shared.width
    empty = shared.prompt_mask.clone()
    empty[1] = False
    shared = SharedPrompt(shared.requests, width, shared.layers, empty)
    mask = mask.clone()
    mask[2:4, ..., :width] = False
    if window:
        mask[..., : key.shape[2] - window] = False
    out = shared.attend(query, *own, layer=0, scale=0.3, window=window)
    assert torch.allclose(out, _one_part(query, key, value, mask, scale=0.3), atol=1e-5)


def test_rows_leaving_keep_their_requests_prompts():
    requests = [0, 0, 0, 1, 1, 2]
    query, shared, (own_keys, own_values), (key, value, mask) = _batch(requests)
    keep = [0, 2, 5]  # request 1 has no rows left
    left = shared.select_rows(keep)
    assert left.requests == [0, 0, 2] and left.width == 12 and not left.uniform
    out = left.attend(query[keep], own_keys[keep], own_values[keep], layer=0, scale=0.3)
    expected = _one_part(query[keep], key[keep], value[keep], mask[keep], scale=0.3)
    assert torch.allclose(out, expected, atol=1e-5)


def test_the_engine_attends_to_a_requests_prompt_once_for_its_candidates(tiny_engine, monkeypatch):
    requests = [
        GenerationRequest(messages=[{"role": "user", "content": text}], seed=i, candidates=3)
        for i, text in enumerate(["A steel bottle.", "Ein Glas.", "A linen apron, washed."])
    ]
    params = GenerationParams(max_new_tokens=12, candidates=3, best_of=0, temperature=0.9)
    calls = []
    original = SharedPrompt.attend

    def counting(shared, *args, **kwargs):
        calls.append(shared.groups)
        return original(shared, *args, **kwargs)

    monkeypatch.setattr(SharedPrompt, "attend", counting)
    two_part = [[c.text for c in r.candidates] for r in tiny_engine.generate(requests, params)]
    assert calls and set(calls) == {3}
    calls.clear()
    monkeypatch.setattr(attention, "_FLASH", None)  # one attention over each row's cache
    one_part = [[c.text for c in r.candidates] for r in tiny_engine.generate(requests, params)]
    assert not calls
    assert two_part == one_part


@pytest.mark.parametrize("engine_name", ["tiny_engine", "sliding_engine"])
def test_decode_steps_over_shared_prompts_build_no_attention_masks(engine_name, request,
                                                                  monkeypatch):
    # The two-part attention masks the prompts' padding itself: transformers' masks for every
    # step (rows x whole width, for full and sliding layers) were built only to be ignored.
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    engine = request.getfixturevalue(engine_name)
    built, decoding = [], []
    make_mask = ALL_MASK_ATTENTION_FUNCTIONS._global_mapping[attention.ATTENTION]

    def counting(*args, **kwargs):
        built.append(bool(decoding))
        return make_mask(*args, **kwargs)

    forward = engine.model.forward

    def step(*args, **kwargs):
        decoding.append(kwargs["input_ids"].shape[1] == 1)
        try:
            return forward(*args, **kwargs)
        finally:
            decoding.clear()

    monkeypatch.setitem(ALL_MASK_ATTENTION_FUNCTIONS._global_mapping, attention.ATTENTION,
                        counting)
    monkeypatch.setattr(engine.model, "forward", step)
    requests = [
        GenerationRequest(messages=[{"role": "user", "content": text}], seed=i, candidates=2)
        for i, text in enumerate(["A steel bottle.", "Ein Glas aus Kristall, mundgeblasen."])
    ]
    params = GenerationParams(max_new_tokens=6, candidates=2, best_of=0)
    results = engine.generate(requests, params, ignore_eos=True)
    assert all(c.completion_tokens == 6 for r in results for c in r.candidates)
    assert True not in built
