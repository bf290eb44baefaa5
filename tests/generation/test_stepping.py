"""The decoding loop's passes over full-width scores: each does what transformers' or the
sampler's processor form does, without the copies that made a large vocabulary slow."""

import pytest
import torch
from transformers import RepetitionPenaltyLogitsProcessor

from generation.cpu import TrimmedHead
from generation.params import GenerationParams
from generation.requests import GenerationRequest
from generation.sampling import SeededSampler, row_seed
from generation.stepping import RepetitionPenalty


def _scores(rows=3, vocab=500, seed=0):
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * 4


def test_the_in_place_repetition_penalty_matches_transformers_and_copies_nothing():
    scores = _scores()
    ids = torch.tensor([[5, 7, 7, 499, 0], [1, 1, 1, 1, 1], [250, 3, 9, 400, 2]])
    expected = RepetitionPenaltyLogitsProcessor(1.3)(ids, scores.clone())
    out = RepetitionPenalty(1.3)(ids, scores)
    assert out.data_ptr() == scores.data_ptr()
    assert torch.equal(out, expected)


@pytest.mark.parametrize("kwargs", [
    {"temperature": 0.7, "top_k": 50, "top_p": 0.95},
    {"temperature": 1.3, "top_k": 0, "top_p": 0.9},
    {"temperature": 0.5, "top_k": 0, "top_p": 1.0},
])
def test_the_samplers_choice_is_the_token_its_processor_form_leaves(kwargs):
    seeds = [row_seed(s, 0) for s in range(6)]
    as_processor, as_choice = SeededSampler(seeds, **kwargs), SeededSampler(seeds, **kwargs)
    for step in range(5):
        scores = _scores(rows=6, seed=step)
        left = as_processor(None, scores.clone())
        assert torch.equal(as_choice.choose(scores), left.argmax(dim=-1))
        assert (left == 0).sum(dim=-1).tolist() == [1] * 6


def test_the_engine_takes_the_samplers_choice_without_full_width_scores(tiny_engine,
                                                                         monkeypatch):
    request = GenerationRequest(messages=[{"role": "user", "content": "A steel bottle."}],
                                candidates=3, seed=5)
    params = GenerationParams(max_new_tokens=6, candidates=3, best_of=0)
    before = [c.text for c in tiny_engine.generate([request], params)[0].candidates]

    def full_width(*_args):
        raise AssertionError("the engine built a full-width score row to take its argmax")

    monkeypatch.setattr(SeededSampler, "__call__", full_width)
    assert [c.text for c in tiny_engine.generate([request], params)[0].candidates] == before


def test_a_trimmed_head_scores_a_prefills_last_position_without_copying_its_weight():
    head = torch.nn.Linear(640, 4000, bias=False).to(torch.bfloat16)
    keep = torch.arange(0, 4000, 3)
    trimmed = TrimmedHead(head, keep)
    hidden = torch.randn(2, 25, 640, dtype=torch.bfloat16)[:, -1:, :]  # not contiguous
    with torch.inference_mode(), torch.profiler.profile() as profile:
        scores = trimmed(hidden)
    ops = {event.name for event in profile.events()}
    assert "aten::bmm" not in ops and "aten::mm" in ops
    assert scores.shape == (2, 1, 4000) and scores.dtype == torch.float32
    with torch.inference_mode():
        expected = head(hidden).float()
    assert torch.equal(scores[..., keep], expected[..., keep])
    assert torch.isinf(scores[..., 1]).all()
