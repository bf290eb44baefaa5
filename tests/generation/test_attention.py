"""Decode attention in two parts (each request's prompt once for all its rows, then each row's own
tokens): the same output as one attention over every row's whole cache, and the engine uses it
for a request's candidates."""

import pytest
import torch

from generation import attention
from generation.attention import SharedPrompt
from generation.engine import GenerationRequest
from generation.params import GenerationParams


def _batch(requests, *, width=12, length=17, heads=4, kv_heads=2, dim=8, seed=0):
    """Queries, keys, values and a boolean mask for rows of ``requests`` (request id per row),
    whose first ``width`` positions are the same within a request."""
    generator = torch.Generator().manual_seed(seed)
    rows = len(requests)
    query = torch.randn(rows, heads, 1, dim, generator=generator)
    key = torch.randn(rows, kv_heads, length, dim, generator=generator)
    value = torch.randn(rows, kv_heads, length, dim, generator=generator)
    mask = torch.ones(rows, 1, 1, length, dtype=torch.bool)
    for row, request in enumerate(requests):
        first = requests.index(request)
        key[row, :, :width], value[row, :, :width] = key[first, :, :width], value[first, :, :width]
        mask[row, ..., : request % 3] = False  # left padding of its own length
    return query, key, value, mask


def _one_part(query, key, value, mask):
    rep = query.shape[1] // key.shape[1]
    key, value = key.repeat_interleave(rep, 1), value.repeat_interleave(rep, 1)
    return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask)


@pytest.mark.parametrize(
    "requests",
    [[0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 2, 2], [5, 5]],
    ids=["same-sized", "a request with fewer rows", "one request"],
)
def test_two_part_attention_equals_one_attention_over_the_whole_cache(requests):
    query, key, value, mask = _batch(requests)
    shared = SharedPrompt(requests, width=12)
    out = shared.attend(query, key, value, mask, scale=query.shape[-1] ** -0.5)
    assert torch.allclose(out, _one_part(query, key, value, mask), atol=1e-5)


def test_a_prompt_the_window_hides_entirely_adds_nothing():
    requests = [0, 0, 1, 1]
    query, key, value, mask = _batch(requests)
    mask[2:, ..., :12] = False  # a sliding window that has moved past request 1's prompt
    out = SharedPrompt(requests, width=12).attend(query, key, value, mask, scale=0.3)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query,
        key.repeat_interleave(2, 1),
        value.repeat_interleave(2, 1),
        attn_mask=mask,
        scale=0.3,
    )
    assert torch.allclose(out, expected, atol=1e-5)


def test_rows_leaving_keep_their_requests():
    shared = SharedPrompt([0, 0, 0, 1, 1, 2], width=9).select_rows([0, 2, 4, 5])
    assert shared.requests == [0, 0, 1, 2] and shared.width == 9 and not shared.uniform


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


@pytest.mark.parametrize("start", [5, 12, 15], ids=["inside the prompt", "at its end", "past it"])
def test_positions_behind_the_window_are_skipped_with_the_same_output(start):
    requests = [0, 0, 0, 1, 2, 2]
    query, key, value, mask = _batch(requests)
    mask[..., :start] = False  # a sliding window that starts at ``start``
    shared = SharedPrompt(requests, width=12)
    out = shared.attend(query, key, value, mask, scale=0.3, start=start)
    assert torch.allclose(out, shared.attend(query, key, value, mask, scale=0.3), atol=1e-5)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, key.repeat_interleave(2, 1), value.repeat_interleave(2, 1), attn_mask=mask,
        scale=0.3)
    assert torch.allclose(out, expected, atol=1e-5)
