"""The engine on tiny models: a random-weight one (gibberish, but real decoding) and a scripted
one that always answers ``SCRIPTED_REPLY`` and then stops at EOS."""

import pytest
import torch

from generation.engine import (
    Engine,
    GenerationRequest,
    SeededSampler,
    clean_completion,
    clear_engine_cache,
    get_engine,
    row_seed,
)
from generation.params import GenerationParams

from .conftest import SCRIPTED_REPLY

SAMPLE = GenerationParams(max_new_tokens=8, temperature=0.9, top_k=50, top_p=0.95)


def request(text, *, seed=1, candidates=2, max_new_tokens=None):
    messages = [
        {"role": "system", "content": "You write product copy."},
        {"role": "user", "content": text},
    ]
    return GenerationRequest(
        messages=messages, candidates=candidates, seed=seed, max_new_tokens=max_new_tokens
    )


def texts(result):
    return [c.text for c in result.candidates]


def test_results_come_back_in_request_order_and_match_single_runs(tiny_engine):
    prompts = ["A long prompt about a steel bottle. " * 12, "hi", "Describe a teapot.", "x " * 40]
    reqs = [request(p, seed=i) for i, p in enumerate(prompts)]
    together = tiny_engine.generate(reqs, SAMPLE)
    assert len(together) == len(reqs)
    for req, result in zip(reqs, together, strict=True):
        (alone,) = tiny_engine.generate([req], SAMPLE)
        assert texts(alone) == texts(result)
        assert result.prompt_tokens == len(tiny_engine.prompt_ids(req.messages))


def test_a_requests_text_does_not_depend_on_its_batch(tiny_engine):
    target = request("Describe a steel bottle in two sentences.", seed=42, candidates=3)
    (alone,) = tiny_engine.generate([target], SAMPLE)
    shorter, longer = request("hi", seed=7, candidates=1), request("word " * 60, seed=8)
    mixed = tiny_engine.generate([longer, target, shorter], SAMPLE)
    assert texts(mixed[1]) == texts(alone)
    budget = tiny_engine.batch_tokens
    try:
        tiny_engine.batch_tokens = 1  # every request in its own batch
        split = tiny_engine.generate([shorter, target, longer], SAMPLE)
    finally:
        tiny_engine.batch_tokens = budget
    assert texts(split[1]) == texts(alone)
    assert [texts(r) for r in split] == [texts(mixed[2]), texts(alone), texts(mixed[0])]


def test_the_same_seed_repeats_and_another_seed_differs(tiny_engine):
    first = tiny_engine.generate([request("Describe a bottle.", seed=5)], SAMPLE)[0]
    again = tiny_engine.generate([request("Describe a bottle.", seed=5)], SAMPLE)[0]
    other = tiny_engine.generate([request("Describe a bottle.", seed=6)], SAMPLE)[0]
    assert texts(first) == texts(again)
    assert texts(first) != texts(other)


def test_sampling_leaves_the_global_rng_alone(tiny_engine):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    tiny_engine.generate([request("Describe a bottle.")], SAMPLE)
    assert torch.equal(torch.rand(3), expected)


def test_each_request_gets_the_candidates_it_asks_for(tiny_engine):
    results = tiny_engine.generate(
        [request("one", candidates=1), request("three", candidates=3)], SAMPLE
    )
    assert [len(r.candidates) for r in results] == [1, 3]
    assert len(set(texts(results[1]))) == 3


def test_greedy_decoding_returns_one_candidate(tiny_engine):
    greedy = GenerationParams(do_sample=False, max_new_tokens=8)
    (result,) = tiny_engine.generate([request("Describe a bottle.", candidates=3)], greedy)
    assert len(result.candidates) == 1
    (again,) = tiny_engine.generate([request("Describe a bottle.", seed=99)], greedy)
    assert texts(again) == texts(result)


def test_max_new_tokens_is_respected_per_request(tiny_engine):
    reqs = [request("a", max_new_tokens=3), request("b"), request("c", max_new_tokens=6)]
    results = tiny_engine.generate(reqs, GenerationParams(max_new_tokens=5, do_sample=False))
    limits = [3, 5, 6]
    for result, limit in zip(results, limits, strict=True):
        (candidate,) = result.candidates
        assert candidate.completion_tokens <= limit
        if not candidate.finished:
            assert candidate.completion_tokens == limit
    assert all(r.seconds >= 0 for r in results)


def test_generation_stops_at_eos(scripted_engine):
    params = GenerationParams(max_new_tokens=50, do_sample=False)
    (result,) = scripted_engine.generate([request("Describe a bottle.")], params)
    (candidate,) = result.candidates
    assert candidate.text == SCRIPTED_REPLY
    assert candidate.finished is True
    script_tokens = scripted_engine.tokenizer(SCRIPTED_REPLY, add_special_tokens=False)
    assert candidate.completion_tokens == len(script_tokens["input_ids"]) < 50


def test_running_out_of_tokens_is_not_finished(scripted_engine):
    (result,) = scripted_engine.generate(
        [request("Describe a bottle.")], GenerationParams(max_new_tokens=2, do_sample=False)
    )
    (candidate,) = result.candidates
    assert candidate.finished is False and candidate.completion_tokens == 2
    assert SCRIPTED_REPLY.startswith(candidate.text)


def test_duplicate_candidates_are_dropped(scripted_engine):
    (result,) = scripted_engine.generate(
        [request("Describe a bottle.", candidates=4)], GenerationParams(max_new_tokens=40)
    )
    assert texts(result) == [SCRIPTED_REPLY]


def test_a_prompt_beyond_the_context_is_refused(tiny_engine):
    huge = request("word " * 2100)
    with pytest.raises(ValueError, match="request 0: prompt of"):
        tiny_engine.generate([huge], SAMPLE)


def test_get_engine_loads_a_model_once_per_process(gen_tiny_model, monkeypatch):
    monkeypatch.setenv("COPYDESK_TORCH_THREADS", "1")
    clear_engine_cache()
    try:
        first = get_engine(gen_tiny_model, device="cpu")
        assert get_engine(str(gen_tiny_model), device="cpu") is first
        assert get_engine(gen_tiny_model, device="auto" if not torch.cuda.is_available()
                          else "cpu") is first
        assert isinstance(first, Engine) and first.dtype == torch.float32
        assert torch.get_num_threads() == 1
    finally:
        clear_engine_cache()


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("  A fine bottle.  ", "A fine bottle."),
        ("assistant\nA fine bottle.<|im_end|>", "A fine bottle."),
        ("<|im_start|>assistant\nA fine bottle.", "A fine bottle."),
        ("Assistant: A fine bottle.", "A fine bottle."),
        ("An assistant for your desk.", "An assistant for your desk."),
        ("玻璃茶壶\ufffd", "玻璃茶壶"),
    ],
)
def test_chat_artifacts_are_cleaned(raw, clean):
    assert clean_completion(raw) == clean


def test_sampler_rows_are_independent_and_respect_top_k():
    scores = torch.tensor([[0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0]])
    seeds = [row_seed(1, 0), row_seed(2, 0)]
    out = SeededSampler(seeds, temperature=1.0, top_k=2, top_p=1.0)(None, scores.clone())
    changed = scores.clone()
    changed[1] = torch.tensor([0.0, 0.0, 9.0, 0.0])
    out2 = SeededSampler(seeds, temperature=1.0, top_k=2, top_p=1.0)(None, changed)
    assert torch.equal(out[0], out2[0])
    for row in (out, out2):
        assert (row == 0).sum(dim=-1).tolist() == [1, 1]
    assert out[0].argmax().item() in (2, 3) and out[1].argmax().item() in (0, 1)


def test_sampler_with_tiny_top_p_or_top_k_one_is_greedy():
    scores = torch.randn(4, 1000, generator=torch.Generator().manual_seed(0))
    for kwargs in ({"top_k": 1, "top_p": 1.0}, {"top_k": 0, "top_p": 1e-6}):
        out = SeededSampler(range(4), temperature=1.0, **kwargs)(None, scores.clone())
        assert torch.equal(out.argmax(dim=-1), scores.argmax(dim=-1))


def test_sampler_follows_the_distribution():
    scores = torch.log(torch.tensor([[0.7, 0.2, 0.1, 1e-9]])).repeat(2000, 1)
    out = SeededSampler(range(2000), temperature=1.0, top_k=0, top_p=1.0)(None, scores)
    counts = torch.bincount(out.argmax(dim=-1), minlength=4) / 2000
    assert torch.allclose(counts, torch.tensor([0.7, 0.2, 0.1, 0.0]), atol=0.04)
