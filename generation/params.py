"""Decoding parameters for a generation job.

Pure Python (no torch, no Django): forms, the CLI, the API and the GPU worker all parse and
validate parameters with the same code. ``GenerationParams.from_dict`` accepts the loosely typed
values that forms and command lines produce ("0.7", "true") and refuses anything it does not
know, with an error that names the field.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .i18n import gettext_noop

__all__ = [
    "FineTuneConfig",
    "GenerationParams",
    "InvalidParams",
    "derive_seed",
    "output_dir_in",
    "output_name_valid",
]

MAX_SEED = 2**32 - 1


class InvalidParams(ValueError):
    """A decoding parameter is missing a valid value.

    ``field`` and ``message`` describe the first problem found (``str()`` gives
    ``"field: message"``); ``errors`` maps every offending field to its message, so a form can
    show them all at once.
    """

    def __init__(self, field: str, message: str, errors: Mapping[str, str] | None = None):
        self.field = field
        self.message = message
        self.errors = dict(errors) if errors else {field: message}
        super().__init__(f"{field}: {message}")


_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


# Messages the desk shows next to the form field, translated (see generation.i18n).
_NOT_BOOL = gettext_noop("must be true or false")
_NOT_NUMBER = gettext_noop("must be a number")
_NOT_FINITE = gettext_noop("must be a finite number")
_NOT_WHOLE = gettext_noop("must be a whole number")
_NOT_OF_TYPE = {int: gettext_noop("must be of type int"),
                float: gettext_noop("must be of type float"),
                bool: gettext_noop("must be of type bool")}
# Spelled out so the catalog can hold it: MAX_SEED is 2**32 - 1.
_SEED_RANGE = gettext_noop("must be between 0 and 4294967295")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(_NOT_BOOL)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(_NOT_NUMBER)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(_NOT_NUMBER) from None
    else:
        raise ValueError(_NOT_NUMBER)
    if not math.isfinite(number):
        raise ValueError(_NOT_FINITE)
    return number


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(_NOT_WHOLE)
    if isinstance(value, int):
        return value
    number = _to_float(value) if not isinstance(value, str) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ValueError(_NOT_WHOLE) from None
    if number is None or not math.isfinite(number) or number != int(number):
        raise ValueError(_NOT_WHOLE)
    return int(number)


_COERCE = {bool: _to_bool, float: _to_float, int: _to_int}


@dataclass(frozen=True)
class GenerationParams:
    """Decoding parameters, validated on construction.

    ``candidates`` and ``seed`` are job-level defaults: the caller turns them into per-request
    values (``GenerationRequest.candidates`` / ``.seed``, see ``derive_seed``); the engine reads
    the sampling fields and ``max_new_tokens`` from here.
    """

    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    repetition_penalty: float = 1.1
    max_new_tokens: int = 160
    candidates: int = 2
    # Best of N: candidates sampled per draft, of which the checks keep the best ``candidates``
    # (0: sample only ``candidates``). Sampling more costs rows in the same batched generate.
    best_of: int = 6
    seed: int = 1234
    do_sample: bool = True

    @property
    def sampled(self) -> int:
        """Candidates sampled per draft (greedy decoding yields one)."""
        if not self.do_sample:
            return 1
        return max(self.candidates, self.best_of)

    def __post_init__(self) -> None:
        errors: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            kind = _FIELD_TYPES[f.name]
            if kind is bool:
                ok = isinstance(value, bool)
            elif isinstance(value, bool):
                ok = False
            elif kind is float:
                ok = isinstance(value, int | float)
                if ok:
                    object.__setattr__(self, f.name, float(value))
            else:
                ok = isinstance(value, int)
            if not ok:
                errors[f.name] = _NOT_OF_TYPE[kind]
        if not errors:
            errors = _range_errors(self.to_dict())
        if errors:
            field, message = next(iter(errors.items()))
            raise InvalidParams(field, message, errors)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationParams:
        """Build params from a mapping, coercing strings; missing, ``None`` or ``""`` -> default.

        Raises ``InvalidParams`` for unknown keys, values that cannot be coerced and values out
        of range.
        """
        if not isinstance(data, Mapping):
            raise InvalidParams("params", "must be a mapping of field names to values")
        errors: dict[str, str] = {}
        values: dict[str, Any] = {}
        for key, raw in data.items():
            if key not in _FIELD_TYPES:
                known = ", ".join(_FIELD_TYPES)
                errors[str(key)] = f"unknown parameter (known: {known})"
                continue
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            try:
                values[key] = _COERCE[_FIELD_TYPES[key]](raw)
            except ValueError as exc:
                errors[key] = str(exc)
        defaults = {f.name: f.default for f in fields(cls)}
        for key, message in _range_errors({**defaults, **values}).items():
            errors.setdefault(key, message)
        if errors:
            field, message = next(iter(errors.items()))
            raise InvalidParams(field, message, errors)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELD_TYPES: dict[str, type] = {
    "temperature": float,
    "top_k": int,
    "top_p": float,
    "repetition_penalty": float,
    "max_new_tokens": int,
    "candidates": int,
    "best_of": int,
    "seed": int,
    "do_sample": bool,
}


def _range_errors(v: Mapping[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not math.isfinite(v["temperature"]):
        errors["temperature"] = _NOT_FINITE
    elif v["do_sample"] and v["temperature"] <= 0:
        errors["temperature"] = gettext_noop("must be > 0 when sampling")
    elif v["temperature"] < 0:
        errors["temperature"] = gettext_noop("must be >= 0")
    elif v["temperature"] > 5:
        errors["temperature"] = gettext_noop("must be <= 5")
    if v["top_k"] < 0:
        errors["top_k"] = gettext_noop("must be >= 0 (0 turns top-k filtering off)")
    if not (math.isfinite(v["top_p"]) and 0 < v["top_p"] <= 1):
        errors["top_p"] = gettext_noop("must be > 0 and <= 1")
    if not (math.isfinite(v["repetition_penalty"]) and 1 <= v["repetition_penalty"] <= 3):
        errors["repetition_penalty"] = gettext_noop("must be between 1 and 3")
    if not 1 <= v["max_new_tokens"] <= 2048:
        errors["max_new_tokens"] = gettext_noop("must be between 1 and 2048")
    if not 1 <= v["candidates"] <= 8:
        errors["candidates"] = gettext_noop("must be between 1 and 8")
    if not 0 <= v["best_of"] <= 16:
        errors["best_of"] = gettext_noop("must be between 0 and 16 (0 samples only the "
                                         "candidates shown)")
    if not 0 <= v["seed"] <= MAX_SEED:
        errors["seed"] = _SEED_RANGE
    return errors


def derive_seed(base: int, *parts: object) -> int:
    """A stable seed in 0..2**32-1 derived from a job seed and identifying parts.

    ``derive_seed(params.seed, product.sku, kind.code)`` gives every draft of a job its own
    seed that does not change when the job is re-run or split differently across workers.
    """
    key = "\x1f".join([str(int(base)), *(str(p) for p in parts)]).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") & MAX_SEED


# --- Fine-tuning ----------------------------------------------------------------------------------
# Here, not in ``finetune``, so the web process requests a fine-tune without importing torch.

# A fine-tuned model's name is also its directory: one path component, starting with a letter
# or digit (the temporary sibling a save writes first starts with a dot).
OUTPUT_NAME_MAX_LENGTH = 200
_OUTPUT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def output_name_valid(name: str) -> bool:
    return len(name) <= OUTPUT_NAME_MAX_LENGTH and _OUTPUT_NAME.fullmatch(name) is not None


def output_dir_in(root: str | Path, name: str) -> Path:
    """The directory a fine-tune named ``name`` saves into: ``root/name``, links resolved.
    Saving replaces what is there, so anything that is not a valid name directly inside
    ``root`` (after links are followed) raises ``ValueError``."""
    if not output_name_valid(name):
        raise ValueError(f"{name!r} is not a valid name for a fine-tuned model's directory")
    base = Path(root).resolve()
    output = (base / name).resolve()
    if output.parent != base or output.name != name:
        raise ValueError(f"{base / name} leads outside {base}")
    return output


@dataclass
class FineTuneConfig:
    epochs: int = 3
    lr: float = 5e-5
    batch_size: int = 4
    grad_accum: int = 1
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    max_length: int = 512
    max_steps: int = 0  # 0: as many as the epochs take
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    eval_batch_size: int = 8

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FineTuneConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
