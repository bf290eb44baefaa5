"""Fine-tuning a model on approved copy: the log-likelihood objective of the design.

Pure PyTorch over the SFT records of ``editorial.training_data``, no Django: chat records
(``{"messages": [system, user, assistant]}``) for an instruct model, prompt-completion records
(``{"prompt", "completion"}``: the completion document up to the product's entry, and the
approved copy) for a base model, which is trained on the format it generates with:

* a chat record is tokenized with the model's chat template, a prompt-completion record as the
  document (with the tokenizer's start token, as the engine does); the loss is taken on the
  completion tokens only (the assistant's text and its end-of-turn token, or the copy and the
  separator that ends it); prompt tokens and padding are labelled -100 (``encode_record`` /
  ``CompletionCollator``);
* full fine-tuning, or LoRA adapters (``peft``) merged into the weights before saving, so the
  result is a plain model directory the engine loads like any other;
* fp32 on CPU; bf16 autocast on CUDA (weights and optimizer state stay fp32);
* AdamW, linear warm-up and decay, gradient clipping, gradient accumulation;
* the validation loss (mean over completion tokens) and perplexity before and after;
* a ``progress(step, total_steps, loss)`` callback after every optimizer step, and an
  ``on_phase(phase)`` callback when each of ``PHASES`` starts and again after every evaluation
  batch, so a caller can show what the run is doing and that it is alive between steps.
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .openmp import choose_wait_policy
from .params import FineTuneConfig, output_dir_in, output_name_valid

choose_wait_policy()  # before torch loads

import torch  # noqa: E402

__all__ = [
    "IGNORE_INDEX",
    "CompletionCollator",
    "EvalResult",
    "FineTuneConfig",
    "FineTuneResult",
    "PHASES",
    "encode_example",
    "encode_record",
    "evaluate",
    "finetune",
    "output_dir_in",
    "output_name_valid",
]

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100

# In the order a run goes through them.
PHASES = ("preparing", "evaluating_before", "training", "evaluating_after", "saving")

@dataclass
class EvalResult:
    loss: float
    perplexity: float
    tokens: int

    def to_dict(self) -> dict:
        return {"loss": self.loss, "perplexity": self.perplexity, "tokens": self.tokens}


@dataclass
class FineTuneResult:
    output_dir: str
    steps: int
    seconds: float
    before: EvalResult | None = None
    after: EvalResult | None = None
    losses: list[tuple[int, float]] = field(default_factory=list)
    train_records: int = 0
    validation_records: int = 0

    def metrics(self) -> dict:
        return {
            "before": self.before.to_dict() if self.before else None,
            "after": self.after.to_dict() if self.after else None,
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "train_records": self.train_records,
            "validation_records": self.validation_records,
            "final_train_loss": self.losses[-1][1] if self.losses else None,
        }


# --- Data ----------------------------------------------------------------------------------------


def encode_example(tokenizer, messages: Sequence[dict], max_length: int = 512) -> dict:
    """``input_ids`` and ``labels`` for one conversation whose last message is the assistant's:
    labels are -100 on the prompt (everything up to and including the assistant header) and
    the token ids on the completion (the text and the end-of-turn token).

    Prompt and completion are tokenized separately so the boundary is exact. Too long: the
    prompt is cut from the left (the product facts at its end stay), then the completion from
    the right."""
    messages = [dict(m) for m in messages]
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("the last message must be the assistant's completion")
    prompt_text = tokenizer.apply_chat_template(
        messages[:-1], tokenize=False, add_generation_prompt=True
    )
    full_text = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full_text.startswith(prompt_text):
        raise ValueError("the chat template does not extend the prompt with the completion")
    completion_text = full_text[len(prompt_text):].rstrip("\n")
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion_text, add_special_tokens=False)["input_ids"]
    return _fit(prompt_ids, completion_ids, max_length)


def encode_record(tokenizer, record: dict, max_length: int = 512) -> dict:
    """``encode_example`` for a chat record; for a prompt-completion record the same labels over
    the document's tokens (start token first) and the completion's."""
    if "messages" in record:
        return encode_example(tokenizer, record["messages"], max_length)
    prompt_ids = tokenizer(record["prompt"], add_special_tokens=True)["input_ids"]
    completion_ids = tokenizer(record["completion"], add_special_tokens=False)["input_ids"]
    return _fit(prompt_ids, completion_ids, max_length)


def _fit(prompt_ids, completion_ids, max_length: int) -> dict:
    if len(prompt_ids) + len(completion_ids) > max_length:
        keep_prompt = max(max_length // 2, max_length - len(completion_ids))
        prompt_ids = prompt_ids[-keep_prompt:]
        completion_ids = completion_ids[: max_length - len(prompt_ids)]
    return {
        "input_ids": list(prompt_ids) + list(completion_ids),
        "labels": [IGNORE_INDEX] * len(prompt_ids) + list(completion_ids),
    }


class CompletionCollator:
    """Pads encoded examples on the right into tensors: ``input_ids`` with the pad id,
    ``attention_mask`` 0 on padding, ``labels`` -100 on padding (and wherever they already
    were, i.e. the prompt)."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids, mask, labels = [], [], []
        for f in features:
            pad = width - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            mask.append([1] * len(f["input_ids"]) + [0] * pad)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * pad)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
        }


def _batches(encoded: list[dict], size: int) -> list[list[dict]]:
    return [encoded[i:i + size] for i in range(0, len(encoded), size)]


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _batch_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the batch's completion tokens, and how many there are.

    Logits are computed only where a completion token is predicted: a base model's prompt is a
    long document of examples and the output layer of a 262k vocabulary costs more than the rest
    of the model, so projecting every prompt position would dominate the step."""
    labels = batch["labels"][:, 1:]
    predicts = labels != IGNORE_INDEX
    keep = torch.zeros_like(batch["labels"], dtype=torch.bool)
    keep[:, :-1] = predicts
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   logits_to_keep=keep).logits
    total = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), labels[predicts], reduction="sum",
    )
    return total, int(predicts.sum())


@torch.no_grad()
def evaluate(model, encoded: list[dict], collator: CompletionCollator, *, batch_size: int = 8,
             device: torch.device | None = None,
             after_batch: Callable[[], None] | None = None) -> EvalResult | None:
    """Mean loss per completion token over ``encoded`` and its perplexity (None if empty)."""
    if not encoded:
        return None
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    ordered = sorted(encoded, key=lambda e: len(e["input_ids"]))
    for part in _batches(ordered, batch_size):
        batch = {k: v.to(device) for k, v in collator(part).items()}
        with _autocast(device):
            loss, n = _batch_loss(model, batch)
        total += float(loss)
        count += n
        if after_batch is not None:
            after_batch()
    if was_training:
        model.train()
    mean = total / max(count, 1)
    return EvalResult(loss=mean, perplexity=math.exp(min(mean, 50.0)), tokens=count)


# --- Training ------------------------------------------------------------------------------------


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def finetune(
    *,
    base_path: str | Path,
    output_dir: str | Path,
    train: Sequence[dict],
    validation: Sequence[dict] = (),
    config: FineTuneConfig | None = None,
    device: str = "auto",
    progress: Callable[[int, int, float], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> FineTuneResult:
    """Fine-tune the model at ``base_path`` on ``train`` (records with ``messages``), evaluate
    on ``validation`` before and after, and save the result into ``output_dir`` (written to a
    temporary sibling first, so a failed run leaves no half-written model)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config or FineTuneConfig()
    if not train:
        raise ValueError("no training records")

    def phase(name: str) -> Callable[[], None]:
        def announce() -> None:
            if on_phase is not None:
                on_phase(name)

        announce()
        return announce

    phase("preparing")
    started = time.perf_counter()
    dev = _device(device)
    if dev.type == "cpu":
        from .cpu import cpu_threads

        torch.set_num_threads(cpu_threads())
    tokenizer = AutoTokenizer.from_pretrained(str(base_path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(base_path), dtype=torch.float32)
    model.to(dev)
    collator = CompletionCollator(tokenizer.pad_token_id)
    encode = [encode_record(tokenizer, r, config.max_length) for r in train]
    held_out = [encode_record(tokenizer, r, config.max_length) for r in validation]

    before = evaluate(model, held_out, collator, batch_size=config.eval_batch_size, device=dev,
                      after_batch=phase("evaluating_before") if held_out else None)
    if before is not None:
        logger.info("validation before: loss %.4f, perplexity %.2f", before.loss,
                    before.perplexity)

    if config.lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(
            r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
            target_modules="all-linear", task_type="CAUSAL_LM",
        ))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = math.ceil(len(encode) / config.batch_size)
    total_steps = math.ceil(per_epoch * config.epochs / config.grad_accum)
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    warmup = int(total_steps * config.warmup_ratio)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    phase("training")
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    model.train()
    step = 0
    losses: list[tuple[int, float]] = []
    window_loss, window_tokens, micro = 0.0, 0, 0
    optimizer.zero_grad(set_to_none=True)
    done = False
    for _epoch in range(config.epochs):
        order = list(encode)
        rng.shuffle(order)
        for part in _batches(order, config.batch_size):
            batch = {k: v.to(dev) for k, v in collator(part).items()}
            with _autocast(dev):
                summed, n = _batch_loss(model, batch)
            loss = summed / max(n, 1)
            (loss / config.grad_accum).backward()
            window_loss += float(summed.detach())
            window_tokens += n
            micro += 1
            if micro % config.grad_accum:
                continue
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            mean = window_loss / max(window_tokens, 1)
            losses.append((step, mean))
            window_loss, window_tokens = 0.0, 0
            if progress is not None:
                progress(step, total_steps, mean)
            if step >= total_steps:
                done = True
                break
        if done:
            break
    if micro % config.grad_accum and step < total_steps:  # the last partial accumulation
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        step += 1
        mean = window_loss / max(window_tokens, 1)
        losses.append((step, mean))
        if progress is not None:
            progress(step, max(step, total_steps), mean)

    if config.lora:
        model = model.merge_and_unload()
    after = evaluate(model, held_out, collator, batch_size=config.eval_batch_size, device=dev,
                     after_batch=phase("evaluating_after") if held_out else None)
    if after is not None:
        logger.info("validation after: loss %.4f, perplexity %.2f", after.loss, after.perplexity)

    phase("saving")
    output = Path(output_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        model.eval()
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if output.is_symlink():
            raise ValueError(f"{output} is a link; a fine-tune does not replace links")
        if output.exists():
            shutil.rmtree(output)
        os.replace(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for path in [output, *output.iterdir()]:
        path.chmod(path.stat().st_mode | 0o044 | (0o011 if path.is_dir() else 0))
    return FineTuneResult(
        output_dir=str(output), steps=step, seconds=time.perf_counter() - started,
        before=before, after=after, losses=losses, train_records=len(encode),
        validation_records=len(held_out),
    )
