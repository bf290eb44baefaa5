"""The preallocated KV cache must hold exactly what transformers' concatenating cache holds."""

import torch
from transformers.cache_utils import DynamicCache

from generation.engine import GenerationRequest
from generation.kvcache import PreallocatedCache

from .test_engine import GREEDY, request, texts


def _states(rows, length, seed):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, 3, length, 8, generator=generator),
            torch.randn(rows, 3, length, 8, generator=generator))


def test_updates_return_the_same_keys_and_values_as_the_dynamic_cache():
    dynamic, preallocated = DynamicCache(), PreallocatedCache(num_layers=2, capacity=6)
    # 5 prompt tokens then single decode steps, past the capacity to exercise growth.
    for step, length in enumerate([5, 1, 1, 1, 1]):
        for layer in range(2):
            keys, values = _states(4, length, seed=10 * step + layer)
            expected = dynamic.update(keys, values, layer)
            got = preallocated.update(keys, values, layer)
            assert torch.equal(expected[0], got[0]) and torch.equal(expected[1], got[1])
    assert preallocated.get_seq_length() == dynamic.get_seq_length() == 9
    assert preallocated.layers[0].capacity >= 9


def test_a_window_fills_its_rows_of_the_batch_cache_in_place():
    batch = PreallocatedCache.allocate(2, rows=5, heads=3, head_dim=8, capacity=12,
                                       dtype=torch.float32, device="cpu")
    prefix = DynamicCache()
    prefix_keys, prefix_values = _states(1, 4, seed=1)
    prefix.update(prefix_keys, prefix_values, 0)
    prefix.update(prefix_values, prefix_keys, 1)
    # Rows 1-2, right-aligned at positions 3..9: 4 prefix positions + 2 prompt positions.
    window = PreallocatedCache.window(batch, slice(1, 3), start=3, length=6)
    window.start_with(prefix)
    assert window.get_seq_length() == 4
    new_keys, new_values = _states(2, 2, seed=2)
    keys, _ = window.update(new_keys, new_values, 0)
    assert keys.shape == (2, 3, 6, 8)
    layer = batch.layers[0]
    layer.set_length(9)
    for row in (1, 2):
        assert torch.equal(layer.keys[row, :, 3:7], prefix_keys[0])
        assert torch.equal(layer.values[row, :, 7:9], new_values[row - 1])
    # Untouched rows and the left padding stay zero (a masked NaN would poison attention).
    assert not layer.keys[0].any() and not layer.keys[3:].any() and not layer.keys[:, :, :3].any()
    # The engine's prefix cache is reused by later batches, so it must stay untouched.
    assert prefix.get_seq_length() == 4 and torch.equal(prefix.layers[0].keys, prefix_keys)


def test_repeat_rows_gives_each_request_its_candidates_rows():
    batch = PreallocatedCache.allocate(1, rows=4, heads=3, head_dim=8, capacity=5,
                                       dtype=torch.float32, device="cpu")
    keys, values = _states(2, 5, seed=3)
    batch.layers[0].update(torch.cat([keys, keys]), torch.cat([values, values]))
    batch.repeat_rows(0, [3, 1], start=0, length=5)
    got = batch.layers[0].keys
    assert [torch.equal(got[row], keys[source]) for row, source in enumerate([0, 0, 0, 1])] == [
        True] * 4


def test_engine_text_equals_plain_generate_with_transformers_own_cache(tiny_engine):
    """The engine (prefix groups prefilled apart, gathered into one preallocated cache) writes
    the same greedy text as one plain ``model.generate`` per prompt."""

    reqs = [request(text, seed=i) for i, text in enumerate(
        ["hi", "Describe a steel bottle in two sentences.", "玻璃茶壶，容量600毫升。" * 3])]
    reqs.append(GenerationRequest(messages=[{"role": "user", "content": "Say hi."}]))
    ours = [texts(r) for r in tiny_engine.generate(reqs, GREEDY)]
    assert ours == [plain_generate(tiny_engine, tiny_engine.prompt_ids(r.messages)) for r in reqs]


def plain_generate(engine, prompt_ids):
    """The greedy text of one plain ``model.generate`` for ``prompt_ids``, as the engine would
    return it."""
    from generation.engine import clean_completion

    ids = torch.tensor([prompt_ids])
    output = engine.model.generate(
        input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
        max_new_tokens=GREEDY.max_new_tokens, repetition_penalty=GREEDY.repetition_penalty,
        eos_token_id=engine.eos_token_ids, pad_token_id=engine.pad_token_id,
    )
    new = output[0, ids.shape[1]:].tolist()
    cut = next((i for i, t in enumerate(new) if t in engine.eos_token_ids), len(new))
    return [clean_completion(engine.tokenizer.decode(new[:cut], skip_special_tokens=True))]


def test_a_sliding_window_model_writes_what_plain_generate_writes_past_its_window(sliding_engine):
    """Gemma 3 attends to a window of recent positions on most layers. Completion prompts of
    a job share their header and differ in length, several times the window: the engine's
    batch (left padding, one preallocated cache) must still give every row exactly its own
    window, as one plain ``model.generate`` per prompt does."""

    header = ("Product copy written by the shop's editors for the online store, one block per "
              "product, each opened by its facts.\n---\n")
    bodies = ["Steel bottle, 500 ml, sage.", "玻璃茶壶，容量600毫升，耐热。" * 4,
              "A long note about a linen shirt in sand and white. " * 5, "Mug."]
    reqs = [GenerationRequest(prompt=header + body, context=header, seed=i)
            for i, body in enumerate(bodies)]
    engine = sliding_engine
    assert len(engine.document_ids(header)) > 16
    assert max(len(engine.document_ids(r.prompt)) for r in reqs) > 4 * 16
    ours = [texts(r) for r in engine.generate(reqs, GREEDY)]
    assert ours == [plain_generate(engine, engine.document_ids(r.prompt)) for r in reqs]
