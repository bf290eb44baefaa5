"""What makes the engine fast on a CPU: finished rows leave the batch, a trimmed output layer, and
bf16 weights where the CPU multiplies bf16 natively."""

import pytest
import torch

from generation import engine as engine_module
from generation.decoding import COPY_SCRIPTS, RowRules, vocabulary_for
from generation.engine import GenerationRequest, TrimmedHead, cpu_dtype
from generation.kvcache import PreallocatedCache
from generation.params import GenerationParams

SAMPLE = GenerationParams(max_new_tokens=24, temperature=0.9, top_k=50, top_p=0.95)


def stopping_request(text, seed, stop):
    rules = RowRules(allowed_numbers=frozenset(), banned_terms=(), locale="en",
                     stop_strings=(stop,), ground_numbers=False, block_markup=False)
    return GenerationRequest(messages=[{"role": "user", "content": text}], seed=seed,
                             candidates=3, rules=rules)


def test_rows_that_finish_early_leave_the_batch_and_the_others_write_what_they_would_alone(
        tiny_engine, monkeypatch):
    reqs = [stopping_request(f"Describe product {i}.", seed=i, stop=stop)
            for i, stop in enumerate(["e", "a", " ", "o", "\n", "s"])]
    selections = []
    original = PreallocatedCache.batch_select_indices

    def counting(cache, indices):
        selections.append(len(indices))
        return original(cache, indices)

    monkeypatch.setattr(PreallocatedCache, "batch_select_indices", counting)
    (plan,) = tiny_engine.batch_plan(reqs, SAMPLE)
    assert plan[0] == 18
    together = tiny_engine.generate(reqs, SAMPLE)
    assert selections and selections[0] < 18  # rows left the batch part way
    lengths = {c.completion_tokens for r in together for c in r.candidates}
    assert len(lengths) > 1
    monkeypatch.setattr(PreallocatedCache, "batch_select_indices", original)
    for req, result in zip(reqs, together, strict=True):
        (alone,) = tiny_engine.generate([req], SAMPLE)
        assert [(c.text, c.completion_tokens) for c in alone.candidates] == [
            (c.text, c.completion_tokens) for c in result.candidates]


def test_a_trimmed_head_scores_its_tokens_as_the_full_one_and_no_others():
    head = torch.nn.Linear(8, 10, bias=True)
    keep = torch.tensor([0, 2, 5, 9])
    trimmed = TrimmedHead(head, keep)
    hidden = torch.randn(3, 2, 8)
    full, ours = head(hidden), trimmed(hidden)
    assert ours.shape == full.shape
    assert torch.allclose(ours[..., keep], full[..., keep])
    others = torch.tensor([i for i in range(10) if i not in keep.tolist()])
    assert torch.isinf(ours[..., others]).all() and (ours[..., others] < 0).all()


def test_copy_tokens_keep_english_chinese_and_partial_bytes_but_not_other_scripts(tiny_engine):
    vocabulary = vocabulary_for(tiny_engine.tokenizer)
    kept = set(vocabulary.copy_token_ids().tolist())
    by_text = {}
    for i, data in enumerate(vocabulary.token_bytes):
        try:
            by_text.setdefault(data.decode("utf-8"), i)
        except UnicodeDecodeError:
            by_text.setdefault(None, i)
    for text in (" the", "ing", ",", "0", "中"):
        ids = tiny_engine.tokenizer(text, add_special_tokens=False)["input_ids"]
        assert set(ids) <= kept, text
    assert by_text[None] in kept  # a piece of a multi-byte character
    cyrillic = [i for t, i in by_text.items() if t and any("\u0400" <= c <= "\u04ff" for c in t)]
    assert cyrillic and not kept & set(cyrillic)
    assert not kept & set(vocabulary.special_ids.tolist())


def test_the_engine_trims_only_a_large_vocabulary(tiny_engine, monkeypatch):
    # SmolLM2's 49k vocabulary is nearly all Latin: trimming would save under 10%.
    assert not isinstance(tiny_engine.model.get_output_embeddings(), TrimmedHead)


@pytest.mark.slow
def test_gemma_writes_with_a_trimmed_head_in_both_languages(gemma_model_dir):
    from generation.engine import Engine

    engine = Engine(gemma_model_dir, device="cpu")
    head = engine.model.get_output_embeddings()
    assert isinstance(head, TrimmedHead) and 150_000 < len(head.keep) < 200_000
    reqs = [GenerationRequest(prompt=text, seed=3, candidates=2, max_new_tokens=24)
            for text in ("Product: Steel kettle 1.7 L\nDescription: This kettle",
                         "商品：玻璃茶壶 600毫升\n文案：这款玻璃茶壶")]
    results = engine.generate(reqs, GenerationParams(candidates=2, seed=3))
    for result in results:
        for candidate in result.candidates:
            assert candidate.text.strip() and candidate.completion_tokens > 0
            assert all(any(low <= ord(ch) <= high for low, high in COPY_SCRIPTS)
                       for ch in candidate.text), candidate.text


def test_cpu_dtype_is_bf16_where_the_cpu_has_it_and_can_be_pinned(monkeypatch):
    monkeypatch.delenv("COPYDESK_CPU_DTYPE", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert cpu_dtype() is torch.float32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert cpu_dtype() is torch.bfloat16
    monkeypatch.setenv("COPYDESK_CPU_DTYPE", "float32")
    assert cpu_dtype() is torch.float32
    monkeypatch.setenv("COPYDESK_CPU_DTYPE", "fp8")
    with pytest.raises(ValueError, match="COPYDESK_CPU_DTYPE='fp8'"):
        cpu_dtype()


def test_the_cpu_batch_budget_is_a_kv_cache_size(tiny_engine):
    per_token = tiny_engine.kv_bytes_per_token()
    assert tiny_engine.batch_tokens == max(4096, engine_module.CPU_BATCH_KV_BYTES // per_token)


def test_dropping_cache_rows_moves_the_kept_rows_down_in_place():
    cache = PreallocatedCache.allocate(2, rows=5, heads=1, head_dim=2, capacity=4,
                                       dtype=torch.float32, device="cpu")
    for layer in cache.layers:
        layer._key_buffer.copy_(torch.arange(5.0).view(5, 1, 1, 1).expand(5, 1, 4, 2))
        layer._value_buffer.copy_(-torch.arange(5.0).view(5, 1, 1, 1).expand(5, 1, 4, 2))
        layer.set_length(3)
    storage = cache.layers[0]._key_buffer.untyped_storage().data_ptr()
    cache.batch_select_indices(torch.tensor([1, 3, 4]))
    for layer in cache.layers:
        assert layer.keys.shape == (3, 1, 3, 2)
        assert layer.keys[:, 0, 0, 0].tolist() == [1.0, 3.0, 4.0]
        assert layer.values[:, 0, 0, 0].tolist() == [-1.0, -3.0, -4.0]
    assert cache.layers[0]._key_buffer.untyped_storage().data_ptr() == storage
    with pytest.raises(ValueError, match="increasing"):
        cache.batch_select_indices(torch.tensor([1, 0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    "layout", ["hidden", "queries of a prefill", "queries of a decode step"])
def test_the_fused_gemma_norm_gives_transformers_numbers_bit_for_bit(dtype, layout):
    from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm

    from generation.cpu import OffsetRMSNorm

    generator = torch.Generator().manual_seed(5)
    original = Gemma3RMSNorm(16, eps=1e-6)
    original.weight.data = torch.randn(16, generator=generator)
    x = {
        "hidden": lambda: torch.randn(2, 7, 16, generator=generator),
        # [rows, heads, positions, dim] views of the projection, as Gemma's attention has them
        "queries of a prefill": lambda: torch.randn(2, 7, 4, 16, generator=generator)
        .transpose(1, 2),
        "queries of a decode step": lambda: torch.randn(6, 1, 4, 16, generator=generator)
        .transpose(1, 2),
    }[layout]().to(dtype) * 3
    fused = OffsetRMSNorm(original.weight, original.eps)(x)
    assert fused.dtype == dtype and fused.shape == x.shape
    assert torch.equal(fused, original(x))


def test_the_engine_runs_gemma_with_fused_norms_and_the_same_logits(tmp_path):
    from transformers import AutoModelForCausalLM

    from generation.cpu import OffsetRMSNorm
    from generation.testing import build_tiny_sliding_model

    from .conftest import _engine

    path = build_tiny_sliding_model(tmp_path / "gemma", sliding_window=16)
    engine = _engine(path)
    kinds = {type(m).__name__ for m in engine.model.modules()}
    assert "OffsetRMSNorm" in kinds and "Gemma3RMSNorm" not in kinds
    plain = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ids = torch.tensor([engine.document_ids("A steel bottle, 500 ml, in sage green. " * 3)])
    with torch.inference_mode():
        ours = engine.model.model(input_ids=ids).last_hidden_state
        reference = plain.model(input_ids=ids).last_hidden_state
    assert torch.equal(ours, reference)
    assert sum(isinstance(m, OffsetRMSNorm) for m in engine.model.modules()) == 3 * 6 + 1


def test_fused_projections_give_the_numbers_and_text_of_the_separate_ones(tmp_path):
    from transformers import AutoModelForCausalLM

    from generation.cpu import fuse_projections
    from generation.testing import build_tiny_sliding_model

    path = build_tiny_sliding_model(tmp_path / "gemma", sliding_window=16)
    plain = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    fused = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    assert fuse_projections(fused) == 3 * 2
    names = {name.rsplit(".", 1)[-1] for name, _ in fused.named_modules()}
    assert {"qkv_proj", "gate_up"} <= names and not {"q_proj", "k_proj", "gate_proj"} & names
    ids = torch.arange(5, 45).unsqueeze(0)  # past the window of 16
    with torch.inference_mode():
        ours = fused.model(input_ids=ids).last_hidden_state
        reference = plain.model(input_ids=ids).last_hidden_state
        assert torch.allclose(ours, reference, atol=1e-5)
        greedy = {"max_new_tokens": 24, "do_sample": False, "pad_token_id": 0}
        assert torch.equal(fused.generate(ids, **greedy), plain.generate(ids, **greedy))


def test_the_engine_fuses_gemma_projections_on_cpu(tmp_path):
    from generation.testing import build_tiny_sliding_model

    from .conftest import _engine

    engine = _engine(build_tiny_sliding_model(tmp_path / "gemma", sliding_window=16))
    kinds = {type(m).__name__ for m in engine.model.modules()}
    assert {"FusedGemmaAttention", "FusedGemmaMLP"} <= kinds and "Gemma3MLP" not in kinds


def test_the_cpu_engine_gives_back_the_memory_loading_freed(tmp_path, monkeypatch):
    import sys

    from generation.cpu import release_freed_memory
    from generation.testing import build_tiny_sliding_model

    from .conftest import _engine

    path = build_tiny_sliding_model(tmp_path / "gemma", sliding_window=16)
    calls = []
    monkeypatch.setattr(engine_module, "release_freed_memory", lambda: calls.append(1) or True)
    _engine(path)
    assert calls == [1]
    assert release_freed_memory() is sys.platform.startswith("linux")
