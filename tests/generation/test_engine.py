"""The engine on tiny models: a random-weight one (gibberish, but real decoding) and a scripted
one that always answers ``SCRIPTED_REPLY`` and then stops at EOS."""

import dataclasses

import pytest
import torch

from generation.engine import (
    Engine,
    GenerationRequest,
    SeededSampler,
    clean_completion,
    clear_engine_cache,
    cpu_dtype,
    get_engine,
    row_seed,
)
from generation.params import GenerationParams

from .conftest import SCRIPTED_REPLY

# Long enough (with the chat template) to be a shared prefix, so the tests run that path.
SYSTEM = "You write product copy for an online shop. Use only the facts you are given."
SAMPLE = GenerationParams(max_new_tokens=8, temperature=0.9, top_k=50, top_p=0.95)


def request(text, *, seed=1, candidates=2, max_new_tokens=None):
    messages = [
        {"role": "system", "content": SYSTEM},
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
        assert isinstance(first, Engine) and first.dtype == cpu_dtype()
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


# -- batched == unbatched, shared prefixes --------------------------------------------------------

GREEDY = GenerationParams(do_sample=False, max_new_tokens=10)
PROMPTS_OF_MANY_LENGTHS = [
    "hi",
    "Describe a steel bottle in two sentences.",
    "A long prompt about a teapot made of glass. " * 10,
    "x " * 90,
    "玻璃茶壶，容量600毫升，耐热。",
]


@pytest.fixture(scope="module")
def unshared_engine(gen_tiny_model):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COPYDESK_TORCH_THREADS", "1")
        return Engine(gen_tiny_model, device="cpu", share_prefixes=False, dtype=torch.float32)


@pytest.mark.parametrize("params", [GREEDY, SAMPLE], ids=["greedy", "sampling"])
def test_batched_results_equal_unbatched_across_prompt_lengths(tiny_engine, params):
    reqs = [request(p, seed=10 + i) for i, p in enumerate(PROMPTS_OF_MANY_LENGTHS)]
    lengths = {len(tiny_engine.prompt_ids(r.messages)) for r in reqs}
    assert len(lengths) == len(reqs)  # every prompt length differs, so rows are padded
    (plan,) = tiny_engine.batch_plan(reqs, params)  # all in one batch
    assert plan[0] == len(reqs) * (2 if params.do_sample else 1)
    batched = tiny_engine.generate(reqs, params)
    for req, result in zip(reqs, batched, strict=True):
        (alone,) = tiny_engine.generate([req], params)
        assert texts(alone) == texts(result)
        assert [c.completion_tokens for c in alone.candidates] == [
            c.completion_tokens for c in result.candidates
        ]


@pytest.mark.parametrize("params", [GREEDY, SAMPLE], ids=["greedy", "sampling"])
def test_a_shared_prefix_gives_the_same_text_as_recomputing_it(tiny_engine, unshared_engine,
                                                               params):
    reqs = [request(p, seed=20 + i) for i, p in enumerate(PROMPTS_OF_MANY_LENGTHS)]
    assert all(tiny_engine._prepare(reqs, params)[i].prefix for i in range(len(reqs)))
    assert not any(p.prefix for p in unshared_engine._prepare(reqs, params))
    shared = tiny_engine.generate(reqs, params)
    unshared = unshared_engine.generate(reqs, params)
    assert [texts(r) for r in shared] == [texts(r) for r in unshared]


@pytest.mark.parametrize("params", [GREEDY, SAMPLE], ids=["greedy", "sampling"])
def test_requests_with_different_contexts_decode_in_one_batch_with_their_own_text(tiny_engine,
                                                                                   params):
    """Each context is prefilled apart, then all rows decode together (one batch per job, not
    one per language or brand); no row's text changes for it."""
    other = GenerationRequest(
        messages=[{"role": "system",
                   "content": "You write short slogans for a tea shop that sells green tea."},
                  {"role": "user", "content": "Green tea."}],
        candidates=2, seed=7,
    )
    no_context = GenerationRequest(messages=[{"role": "user", "content": "Say hi."}], seed=3)
    reqs = [request("hi"), other, request("Describe a teapot made of glass. " * 4), no_context]
    prefixes = {p.prefix for p in tiny_engine._prepare(reqs, params)}
    assert len(prefixes) == 3 and () in prefixes
    (plan,) = tiny_engine.batch_plan(reqs, params)
    assert plan[0] == sum(r.candidates if params.do_sample else 1 for r in reqs)
    results = tiny_engine.generate(reqs, params)
    for req, result in zip(reqs, results, strict=True):
        (alone,) = tiny_engine.generate([req], params)
        assert texts(result) == texts(alone)


def test_ignore_eos_runs_every_sequence_to_max_new_tokens(scripted_engine):
    params = GenerationParams(max_new_tokens=30, do_sample=False)
    (result,) = scripted_engine.generate([request("Describe a bottle.")], params,
                                         ignore_eos=True)
    (candidate,) = result.candidates
    assert candidate.completion_tokens == 30 and candidate.finished is False
    assert candidate.text.startswith(SCRIPTED_REPLY)


@pytest.mark.slow
def test_real_model_batched_greedy_equals_unbatched(bottle, teapot, description,
                                                    default_model_dir):
    from generation.prompts import build_messages

    engine = Engine(default_model_dir, device="cpu", dtype=torch.float32)
    short = dataclasses.replace(bottle, attributes={}, source_text="")
    reqs = [
        GenerationRequest(messages=build_messages(facts=f, kind=description), seed=i)
        for i, f in enumerate([short, bottle, teapot])
    ]
    assert len({len(engine.prompt_ids(r.messages)) for r in reqs}) == 3
    params = GenerationParams(do_sample=False, max_new_tokens=8)
    batched = engine.generate(reqs, params)
    for req, result in zip(reqs, batched, strict=True):
        (alone,) = engine.generate([req], params)
        assert texts(alone) == texts(result) and texts(result)[0]
    unshared = Engine(default_model_dir, device="cpu", share_prefixes=False,
                      dtype=torch.float32).generate(reqs, params)
    assert [texts(r) for r in unshared] == [texts(r) for r in batched]


def test_cpu_threads_leave_busy_cores_alone_unless_pinned(monkeypatch):
    from generation import cpu as cpu_module

    monkeypatch.delenv("COPYDESK_TORCH_THREADS", raising=False)
    monkeypatch.setattr(cpu_module.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(cpu_module.os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert cpu_module.cpu_threads() == 4
    monkeypatch.setattr(cpu_module.os, "getloadavg", lambda: (2.6, 0.0, 0.0))
    assert cpu_module.cpu_threads() == 1
    monkeypatch.setattr(cpu_module.os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert cpu_module.cpu_threads() == 1
    monkeypatch.setenv("COPYDESK_TORCH_THREADS", "3")
    assert cpu_module.cpu_threads() == 3
