"""The batched generation engine.

One ``Engine`` holds one model in one process (``get_engine`` caches it per worker). It takes
many chat requests, sorts them by prompt length, packs them into batches under a token budget,
left-pads, and runs one ``model.generate`` per batch with every candidate of every request as
its own row.

Determinism: sampling never touches torch's global RNG. Decoding runs greedy
(``do_sample=False``) with ``SeededSampler`` appended to the logits processors; it applies
temperature / top-k / top-p itself, draws one uniform number per row and step from that row's
own ``torch.Generator`` (seeded from the request seed and the candidate index), and leaves only
the chosen token, which greedy then picks. So a request's text depends on its messages, seed,
params and model, not on which other requests share its batch. (Across different hardware or
dtypes the logits differ, so the text can too.)
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
)

from .params import GenerationParams

__all__ = [
    "Engine",
    "GeneratedText",
    "GenerationRequest",
    "GenerationResult",
    "SeededSampler",
    "clean_completion",
    "clear_engine_cache",
    "cpu_threads",
    "get_engine",
    "row_seed",
]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_TOKENS = {"cpu": 8192, "cuda": 131072}
DEFAULT_MAX_BATCH_ROWS = {"cpu": 32, "cuda": 256}


@dataclass
class GenerationRequest:
    """One prompt. ``candidates``, ``seed`` and ``max_new_tokens`` are per request;
    ``max_new_tokens=None`` means ``params.max_new_tokens``."""

    messages: list[dict]
    candidates: int = 1
    seed: int = 0
    max_new_tokens: int | None = None


@dataclass
class GeneratedText:
    text: str
    completion_tokens: int  # new tokens before EOS (EOS and padding not counted)
    finished: bool  # True if the model stopped at EOS, False if it ran into max_new_tokens


@dataclass
class GenerationResult:
    """Up to ``request.candidates`` distinct texts, in candidate-index order.

    Exact duplicates (after cleaning) are dropped, so fewer candidates than asked may come back;
    with ``do_sample=False`` there is always exactly one. ``seconds`` is this request's share
    (by rows) of its batch's wall time, so the seconds of all results add up to the total.
    """

    candidates: list[GeneratedText] = field(default_factory=list)
    prompt_tokens: int = 0
    seconds: float = 0.0


def row_seed(seed: int, candidate: int) -> int:
    """The generator seed for one candidate row of a request (stable across runs/machines)."""
    key = f"{int(seed)}:{int(candidate)}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1


class SeededSampler(LogitsProcessor):
    """Per-row seeded temperature / top-k / top-p sampling inside a greedy ``generate``.

    For each row it keeps only the sampled token (all other logits -> -inf) so that the greedy
    argmax picks it. Each row draws exactly one number per step from its own generator, so
    rows never influence each other. Generators live on the CPU: the random stream is the same
    on every device.
    """

    def __init__(self, seeds: Sequence[int], *, temperature: float, top_k: int, top_p: float):
        self.generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        self.temperature = float(temperature)
        self.top_k = int(top_k)
        self.top_p = float(top_p)

    def _shortlist(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sorted (descending, ties by token id) logits and ids that can be sampled, plus the
        log-normalizer to turn them into probabilities (top-k renormalizes, top-p does not).

        A full sort of a 50k vocabulary costs ~2 ms per row, so it is avoided where the answer
        is a short prefix: ``topk`` for top-k, and growing ``topk`` until the nucleus is covered
        for top-p alone.
        """
        vocab = logits.shape[-1]
        if 0 < self.top_k < vocab:
            k = self.top_k
            values, ids = torch.topk(logits, k, dim=-1)
            norm = torch.logsumexp(values, dim=-1, keepdim=True)
        elif self.top_p < 1.0:
            norm = torch.logsumexp(logits, dim=-1, keepdim=True)
            k = min(64, vocab)
            while True:
                values, ids = torch.topk(logits, k, dim=-1)
                mass = torch.exp(values - norm).sum(dim=-1)
                if k >= vocab or bool((mass >= self.top_p).all()):
                    break
                k = min(vocab, k * 8)
        else:
            ids = torch.arange(vocab, device=logits.device).expand_as(logits)
            return logits, ids, torch.logsumexp(logits, dim=-1, keepdim=True)
        # Canonical order for ties (topk leaves it unspecified): value descending, then id.
        ids, perm = torch.sort(ids, dim=-1, stable=True)
        values = values.gather(-1, perm)
        values, perm = torch.sort(values, dim=-1, descending=True, stable=True)
        return values, ids.gather(-1, perm), norm

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows = scores.shape[0]
        if rows != len(self.generators):
            raise ValueError(f"SeededSampler has {len(self.generators)} seeds for {rows} rows")
        values, ids, norm = self._shortlist(scores.float() / self.temperature)
        probs = torch.exp(values - norm)
        if self.top_p < 1.0:
            # Keep the smallest prefix whose mass reaches top_p (always at least one token).
            drop = (probs.cumsum(dim=-1) - probs) >= self.top_p
            drop[:, 0] = False
            probs = probs.masked_fill(drop, 0.0)
        cdf = probs.cumsum(dim=-1)
        uniform = torch.cat([torch.rand(1, generator=g) for g in self.generators])
        target = uniform.to(cdf.device, cdf.dtype).unsqueeze(-1) * cdf[:, -1:]
        position = torch.searchsorted(cdf, target).clamp_(max=cdf.shape[-1] - 1)
        # Never land on a zero-probability entry (float rounding at the end of the cdf).
        while True:
            bad = probs.gather(-1, position) <= 0
            if not bool(bad.any()):
                break
            position = torch.where(bad & (position > 0), position - 1, position)
            if bool((bad & (position == 0)).any()):
                break
        chosen = ids.gather(-1, position)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, chosen, 0.0)
        return out


_ROLE_PREFIX_RE = re.compile(r"^\s*(?:<\|im_start\|>)?\s*assistant\s*(?::|\n)\s*", re.IGNORECASE)
_CHAT_TOKEN_RE = re.compile(
    r"<\|(?:im_start|im_end|endoftext|eot_id|end_of_text|begin_of_text|start_header_id|"
    r"end_header_id)\|>|</s>|<s>"
)


def clean_completion(text: str) -> str:
    """Strip whitespace and chat artifacts (special tokens, a leading "assistant" role line,
    and the replacement character left when max_new_tokens cut a multi-byte character)."""
    text = _CHAT_TOKEN_RE.sub("", text)
    previous = None
    while previous != text:
        previous = text
        text = _ROLE_PREFIX_RE.sub("", text, count=1)
    return text.strip().rstrip("\ufffd").rstrip()


def cpu_threads() -> int:
    """Threads for CPU inference: ``$COPYDESK_TORCH_THREADS``, else the CPUs this process may use.

    Set the variable when several torch processes share a machine: more threads than free cores
    makes OpenMP spin and can slow decoding down several times over.
    """
    configured = os.environ.get("COPYDESK_TORCH_THREADS", "").strip()
    if configured:
        return max(1, int(configured))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@dataclass
class _Prepared:
    index: int
    ids: list[int]
    candidates: int
    seed: int
    max_new_tokens: int


class Engine:
    """A model loaded once, generating for many requests at a time.

    ``batch_tokens``: a batch holds at most this many rows x (longest prompt + max new tokens)
    tokens (it bounds KV-cache memory); ``max_batch_rows`` caps rows per batch. Both default per
    device and can be changed on the instance.
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "auto",
        *,
        batch_tokens: int | None = None,
        max_batch_rows: int | None = None,
    ):
        started = time.perf_counter()
        self.model_path = str(model_path)
        self.device = _resolve_device(device)
        kind = torch.device(self.device).type
        load_kwargs: dict = {}
        if kind == "cuda":
            self.dtype = torch.bfloat16
            load_kwargs["attn_implementation"] = "sdpa"
        else:
            self.dtype = torch.float32
            if kind == "cpu":
                torch.set_num_threads(cpu_threads())
        self.batch_tokens = batch_tokens or DEFAULT_BATCH_TOKENS.get(kind, 8192)
        self.max_batch_rows = max_batch_rows or DEFAULT_MAX_BATCH_ROWS.get(kind, 32)

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        if not self.tokenizer.chat_template:
            raise ValueError(
                f"{self.model_path} has no chat template; Copydesk needs a chat model."
            )
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            self.model_path, dtype=self.dtype, **load_kwargs
        )
        self.model.to(self.device).eval()

        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_token_ids = sorted(eos_ids)
        self.pad_token_id = self.tokenizer.pad_token_id
        # Replace the model's generation defaults (a hub config may bring temperature, top_k or a
        # repetition penalty of its own): every decoding choice comes from GenerationParams.
        self.model.generation_config = GenerationConfig(
            bos_token_id=self.tokenizer.bos_token_id,
            eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_token_id,
        )
        self.max_positions = int(
            getattr(self.model.config, "max_position_embeddings", 0) or 10**9
        )
        self.load_seconds = time.perf_counter() - started
        logger.info(
            "Loaded %s on %s (%s) in %.1f s", self.model_path, self.device, self.dtype,
            self.load_seconds,
        )

    # -- preparation ---------------------------------------------------------------------------

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """Token ids of the chat prompt, ending with the assistant generation prompt."""
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _batches(self, prepared: list[_Prepared]) -> list[list[_Prepared]]:
        by_length: dict[int, list[_Prepared]] = {}
        for item in prepared:
            by_length.setdefault(item.max_new_tokens, []).append(item)
        batches: list[list[_Prepared]] = []
        for max_new, group in sorted(by_length.items()):
            group.sort(key=lambda p: (len(p.ids), p.index))
            current: list[_Prepared] = []
            rows = 0
            for item in group:
                # Sorted ascending, so the newest item has the longest prompt in the batch.
                new_rows = rows + item.candidates
                cost = new_rows * (len(item.ids) + max_new)
                if current and (cost > self.batch_tokens or new_rows > self.max_batch_rows):
                    batches.append(current)
                    current, new_rows = [], item.candidates
                current.append(item)
                rows = new_rows
            if current:
                batches.append(current)
        return batches

    # -- generation ----------------------------------------------------------------------------

    def generate(
        self, requests: Sequence[GenerationRequest], params: GenerationParams
    ) -> list[GenerationResult]:
        """Generate for every request; results come back in the order of ``requests``."""
        prepared: list[_Prepared] = []
        for index, request in enumerate(requests):
            if request.candidates < 1:
                raise ValueError(f"request {index}: candidates must be >= 1")
            max_new = request.max_new_tokens or params.max_new_tokens
            if request.max_new_tokens is not None and request.max_new_tokens < 1:
                raise ValueError(f"request {index}: max_new_tokens must be >= 1")
            ids = self.prompt_ids(request.messages)
            if len(ids) + max_new > self.max_positions:
                raise ValueError(
                    f"request {index}: prompt of {len(ids)} tokens + {max_new} new tokens exceeds "
                    f"the model's context of {self.max_positions} tokens"
                )
            prepared.append(
                _Prepared(
                    index=index,
                    ids=ids,
                    candidates=request.candidates if params.do_sample else 1,
                    seed=int(request.seed),
                    max_new_tokens=int(max_new),
                )
            )
        results: list[GenerationResult | None] = [None] * len(prepared)
        for batch in self._batches(prepared):
            for item, result in zip(batch, self._run_batch(batch, params), strict=True):
                results[item.index] = result
        return [r for r in results if r is not None]

    @torch.inference_mode()
    def _run_batch(
        self, batch: list[_Prepared], params: GenerationParams
    ) -> list[GenerationResult]:
        started = time.perf_counter()
        width = max(len(item.ids) for item in batch)
        max_new = batch[0].max_new_tokens
        input_rows, mask_rows, seeds = [], [], []
        for item in batch:
            pad = width - len(item.ids)
            for candidate in range(item.candidates):
                input_rows.append([self.pad_token_id] * pad + item.ids)
                mask_rows.append([0] * pad + [1] * len(item.ids))
                seeds.append(row_seed(item.seed, candidate))
        input_ids = torch.tensor(input_rows, dtype=torch.long, device=self.device)
        attention_mask = torch.tensor(mask_rows, dtype=torch.long, device=self.device)

        processors = LogitsProcessorList()
        if params.do_sample:
            processors.append(
                SeededSampler(
                    seeds, temperature=params.temperature, top_k=params.top_k, top_p=params.top_p
                )
            )
        config = GenerationConfig(
            do_sample=False,
            num_beams=1,
            # Candidates are already rows: transformers refuses num_return_sequences > 1 for
            # greedy decoding, and greedy is what carries the seeded choices.
            num_return_sequences=1,
            max_new_tokens=max_new,
            repetition_penalty=params.repetition_penalty,
            eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.tokenizer.bos_token_id,
            use_cache=True,
        )
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            logits_processor=processors,
        )
        new_tokens = output[:, width:].tolist()
        seconds = time.perf_counter() - started
        total_rows = len(new_tokens)

        results = []
        row = 0
        eos = set(self.eos_token_ids)
        for item in batch:
            texts: list[GeneratedText] = []
            seen: set[str] = set()
            for _ in range(item.candidates):
                tokens = new_tokens[row]
                row += 1
                cut = next((i for i, t in enumerate(tokens) if t in eos), None)
                finished = cut is not None
                kept = tokens if cut is None else tokens[:cut]
                text = clean_completion(self.tokenizer.decode(kept, skip_special_tokens=True))
                if text in seen:
                    continue
                seen.add(text)
                texts.append(
                    GeneratedText(text=text, completion_tokens=len(kept), finished=finished)
                )
            results.append(
                GenerationResult(
                    candidates=texts,
                    prompt_tokens=len(item.ids),
                    seconds=seconds * item.candidates / total_rows,
                )
            )
        logger.debug(
            "Batch of %d requests / %d rows x %d+%d tokens in %.2f s",
            len(batch), total_rows, width, max_new, seconds,
        )
        return results


_ENGINES: dict[tuple[str, str], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _cache_key(model_path: str | Path, device: str) -> tuple[str, str]:
    path = Path(model_path).expanduser()
    name = str(path.resolve()) if path.exists() else str(model_path)
    return name, _resolve_device(device)


def get_engine(model_path: str | Path, device: str = "auto") -> Engine:
    """The process-wide engine for ``(model_path, device)``: the model loads once per worker."""
    key = _cache_key(model_path, device)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = Engine(model_path, key[1])
        return engine


def clear_engine_cache() -> None:
    """Forget cached engines (tests; freeing a GPU before loading another model)."""
    with _ENGINES_LOCK:
        _ENGINES.clear()
