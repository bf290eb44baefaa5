"""The batched generation engine.

One ``Engine`` holds one model in one process (``get_engine`` caches it per worker). It takes
many requests, groups them by their shared context (the messages before the last one: system
rules, few-shot examples), sorts each group by prompt length, packs it into batches under a
KV-cache budget, pads, and decodes each batch with every candidate of every request as its own
row. The shared context runs through the model once per engine and its KV cache is copied to
every row of the batch (``share_prefixes``). A row that finishes leaves the batch, so the steps
after it go only to rows still writing.

On CPU the weights are bf16 where the CPU multiplies bf16 natively, else fp32 (``cpu_dtype``),
and a large multilingual vocabulary's output layer is cut to the tokens of English and Chinese
copy (``TrimmedHead``); prompts without a shared context are prefilled unpadded, packed end to
end, with the beginning they share with another prompt copied instead of recomputed
(``Engine._prefill_exact``); decoding samples in the head's columns (``generation.columns``) and
each decode step reads a request's prompt keys and values once for all its candidates
(``generation.attention``).

Determinism: sampling never touches torch's global RNG. ``SeededSampler`` applies temperature /
top-k / top-p itself, draws one uniform number per row and step from a counter-based stream
keyed by the request seed and candidate index, and leaves only the chosen token. So in fp32 a
request's text depends on its prompt, seed, params and model, not on which other requests share
its batch. (In bf16, and across hardware, the logits differ in their last bits with the batch,
and a sampled text can differ too: pin ``COPYDESK_CPU_DTYPE=float32`` to reproduce drafts
exactly.)"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from .openmp import choose_wait_policy

choose_wait_policy()  # before torch loads

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessorList  # noqa: E402

from . import attention  # noqa: E402
from .attention import ATTENTION, SharedPrompt, exact_prefill  # noqa: E402
from .columns import Columns  # noqa: E402
from .cpu import (  # noqa: E402
    TrimmedHead,
    cpu_dtype,
    cpu_threads,
    fuse_norms,
    fuse_projections,
    release_freed_memory,
)
from .decoding import GroundedDecoding, vocabulary_for  # noqa: E402
from .kvcache import PackedPrefill, PreallocatedCache, SharedPromptCache  # noqa: E402
from .params import GenerationParams  # noqa: E402
from .requests import (  # noqa: E402
    GeneratedText,
    GenerationRequest,
    GenerationResult,
    Prepared,
    clean_completion,
    collect_results,
)
from .sampling import SeededSampler, row_seed, seeded_uniform  # noqa: E402
from .stepping import RepetitionPenalty, decode  # noqa: E402

__all__ = [
    "Engine",
    "GeneratedText",
    "GenerationRequest",
    "GenerationResult",
    "SeededSampler",
    "TrimmedHead",
    "clean_completion",
    "clear_engine_cache",
    "cpu_dtype",
    "cpu_threads",
    "get_engine",
    "row_seed",
    "seeded_uniform",
]

logger = logging.getLogger(__name__)

# Token budget per batch (rows x (prompt + new tokens)) bounds the KV cache's memory. On CPU it
# comes from this many bytes of KV cache (SmolLM2-135M in fp32: 46 KB per token, so ~23k tokens;
# Gemma 3 270M in bf16: 18 KB, ~58k tokens). On CUDA the default is sized from free memory after
# loading (see ``_cuda_batch_tokens``), capped by ``CUDA_BATCH_TOKENS``.
CPU_BATCH_KV_BYTES = 1 << 30
CUDA_BATCH_TOKENS = 2**21
DEFAULT_MAX_BATCH_ROWS = {"cpu": 48, "cuda": 1024}
# The output layer is cut down to the tokens of English and Chinese copy when that drops at
# least this share of the vocabulary (Gemma 3: 262k -> 176k tokens; SmolLM2: not worth it).
MIN_OUTPUT_TRIM = 0.1
# Share of the GPU memory left free after loading that a batch's KV cache may take.
CUDA_KV_SHARE = 0.4
# Prompt tokens run through the model at once when prefilling on CPU (packed end to end, or rows x
# padded width): enough for full-speed matrix products (on two threads ~750 tokens ran the
# projections at half speed, ~1,500 at full), few enough that activations stay small (6 Gemma
# prompts of ~1,000 tokens at once took 1.6 GB more than one at a time).
PREFILL_TOKENS = 2048
# A shared context shorter than this is recomputed per row (not worth a cache copy).
MIN_SHARED_PREFIX = 16
# Prefix KV caches kept per engine (one per distinct system message / few-shot context).
PREFIX_CACHE_SIZE = 8


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _has_sliding_window(config) -> bool:
    """Whether some attention layers see only a window of recent positions (Gemma 3: five of
    every six layers)."""
    layer_types = getattr(config, "layer_types", None) or ()
    return "sliding_attention" in layer_types or (
        not layer_types and bool(getattr(config, "sliding_window", None))
    )


class Engine:
    """A model loaded once, generating for many requests at a time.

    ``batch_tokens``: a batch holds at most this many rows x (longest prompt + max new tokens)
    tokens (it bounds KV-cache memory); ``max_batch_rows`` caps rows per batch. Both default per
    device and can be changed on the instance.

    ``share_prefixes``: requests whose messages before the last one (system rules, few-shot
    examples) are the same are batched together, and that shared context is run through the
    model once; its KV cache is copied to every row. A job's prompts share a long system
    message, so this removes a large part of the prompt work (about half for the demo
    catalog's description prompts). Off for models with sliding-window attention.
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "auto",
        *,
        batch_tokens: int | None = None,
        max_batch_rows: int | None = None,
        share_prefixes: bool = True,
        dtype: torch.dtype | None = None,
        trim_output: bool = True,
    ):
        started = time.perf_counter()
        self.model_path = str(model_path)
        self.device = _resolve_device(device)
        kind = torch.device(self.device).type
        load_kwargs: dict = {}
        if kind == "cuda":
            self.dtype = dtype or torch.bfloat16
            load_kwargs["attn_implementation"] = "sdpa"
        else:
            self.dtype = dtype or (cpu_dtype() if kind == "cpu" else torch.float32)
            if kind == "cpu":
                torch.set_num_threads(cpu_threads())
                # transformers' SDPA, but decode steps read each request's prompt once for all
                # its candidates (``generation.attention``).
                load_kwargs["attn_implementation"] = ATTENTION
        self.max_batch_rows = max_batch_rows or DEFAULT_MAX_BATCH_ROWS.get(kind, 32)
        self.share_prefixes = share_prefixes
        # Decode in a trimmed head's columns (False: widen its scores to the vocabulary, the
        # reference the column path is tested against).
        self.column_scores = True
        # Prefill CPU prompts without a shared prefix unpadded, packed end to end (False: padded
        # together, the reference the exact path is tested against).
        self.exact_prefill = self.device == "cpu"
        self._prefix_caches: OrderedDict[tuple[int, ...], object] = OrderedDict()

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            self.model_path, dtype=self.dtype, **load_kwargs
        )
        self.model.to(self.device).eval()
        if _has_sliding_window(self.model.config):
            # A shared prefix puts padding between it and the rest of each row, and a sliding
            # window counts cache positions, padding included: rows would see less of their
            # prompt than the window allows. Without sharing, padding is only on the left.
            self.share_prefixes = False

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
        if trim_output:
            self._trim_output()
        if kind == "cpu":
            fuse_norms(self.model)
            fuse_projections(self.model)
            release_freed_memory()
        if batch_tokens:
            self.batch_tokens = batch_tokens
        elif kind == "cuda":
            self.batch_tokens = self._cuda_batch_tokens(CUDA_BATCH_TOKENS)
        else:
            self.batch_tokens = max(4096, CPU_BATCH_KV_BYTES // self.kv_bytes_per_token())
        self.max_positions = int(
            getattr(self.model.config, "max_position_embeddings", 0) or 10**9
        )
        self.load_seconds = time.perf_counter() - started
        logger.info(
            "Loaded %s on %s (%s) in %.1f s", self.model_path, self.device, self.dtype,
            self.load_seconds,
        )

    def _trim_output(self) -> None:
        head = self.model.get_output_embeddings()
        if not isinstance(head, torch.nn.Linear):
            return
        vocab = head.weight.shape[0]
        keep = set(vocabulary_for(self.tokenizer).copy_token_ids().tolist())
        keep.update(self.eos_token_ids)
        keep = sorted(i for i in keep if i < vocab)
        if len(keep) > vocab * (1 - MIN_OUTPUT_TRIM):
            return
        self.model.set_output_embeddings(
            TrimmedHead(head, torch.tensor(keep, dtype=torch.long, device=self.device)))
        logger.info("%s: output layer trimmed to %d of %d tokens", self.model_path, len(keep),
                    vocab)

    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes one token takes in one row (all layers, keys and values)."""
        config = self.model.config
        heads = getattr(config, "num_attention_heads", 1)
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        element = torch.finfo(self.dtype).bits // 8
        return 2 * config.num_hidden_layers * kv_heads * head_dim * element

    def _cuda_batch_tokens(self, cap: int) -> int:
        free, _total = torch.cuda.mem_get_info(torch.device(self.device))
        budget = int(free * CUDA_KV_SHARE // max(1, self.kv_bytes_per_token()))
        return max(4096, min(cap, budget))

    # -- preparation ---------------------------------------------------------------------------

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """Token ids of the chat prompt, ending with the assistant generation prompt."""
        if not self.tokenizer.chat_template:
            raise ValueError(
                f"{self.model_path} has no chat template: give it completion prompts "
                "(its model version's prompt format is 'completion')."
            )
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def document_ids(self, text: str) -> list[int]:
        """Token ids of a completion document, with the tokenizer's own start token (a base
        model was trained with it)."""
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _request_ids(self, request: GenerationRequest) -> list[int]:
        if request.messages:
            return self.prompt_ids(request.messages)
        if request.prompt:
            return self.document_ids(request.prompt)
        raise ValueError("a request needs chat messages or a completion prompt")

    def _prepare(
        self, requests: Sequence[GenerationRequest], params: GenerationParams
    ) -> list[Prepared]:
        prepared: list[Prepared] = []
        for index, request in enumerate(requests):
            if request.candidates < 1:
                raise ValueError(f"request {index}: candidates must be >= 1")
            max_new = request.max_new_tokens or params.max_new_tokens
            if request.max_new_tokens is not None and request.max_new_tokens < 1:
                raise ValueError(f"request {index}: max_new_tokens must be >= 1")
            ids = self._request_ids(request)
            if len(ids) + max_new > self.max_positions:
                raise ValueError(
                    f"request {index}: prompt of {len(ids)} tokens + {max_new} new tokens exceeds "
                    f"the model's context of {self.max_positions} tokens"
                )
            prepared.append(
                Prepared(
                    index=index,
                    ids=ids,
                    candidates=request.candidates if params.do_sample else 1,
                    seed=int(request.seed),
                    max_new_tokens=int(max_new),
                    prefix=self._context_prefix(request, ids),
                    lead_in=request.lead_in,
                    rules=request.rules,
                )
            )
        return prepared

    def _context_prefix(self, request: GenerationRequest, ids: list[int]) -> tuple[int, ...]:
        """The ids of the request's shared context — everything before the last message
        (system rules, few-shot examples), or a completion document's ``context`` — if they
        are a prefix of ``ids`` and long enough to be worth sharing; else ``()``.

        Requests of one job share this context, so its KV cache is computed once and copied to
        every row instead of being recomputed per row. It depends only on the request itself,
        never on the batch, so a request's computation is the same in any batch.
        """
        if not self.share_prefixes:
            return ()
        if request.messages:
            if len(request.messages) < 2:
                return ()
            text = self.tokenizer.apply_chat_template(request.messages[:-1], tokenize=False)
            prefix = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        elif request.context:
            prefix = self.tokenizer(request.context, add_special_tokens=True)["input_ids"]
        else:
            return ()
        if len(prefix) < MIN_SHARED_PREFIX or len(prefix) >= len(ids):
            return ()
        if ids[: len(prefix)] != prefix:
            return ()
        return tuple(prefix)

    def _batches(self, prepared: list[Prepared]) -> list[list[Prepared]]:
        """Group by max new tokens, order by (shared prefix, prompt length), and cut into
        batches under the token budget and row cap.

        Requests with different shared prefixes can share a batch: each prefix group is
        prefilled on its own (``_prefill``), and only decoding runs them together, so a job
        mixing English and Chinese products decodes in one batch instead of one per language.
        """
        groups: dict[int, list[Prepared]] = {}
        for item in prepared:
            groups.setdefault(item.max_new_tokens, []).append(item)
        batches: list[list[Prepared]] = []
        for max_new in sorted(groups):
            group = sorted(groups[max_new], key=lambda p: (len(p.prefix), p.prefix, len(p.ids),
                                                          p.index))
            current: list[Prepared] = []
            rows = longest = 0
            for item in group:
                new_rows = rows + item.candidates
                new_longest = max(longest, len(item.ids))
                cost = new_rows * (new_longest + max_new)
                if current and (cost > self.batch_tokens or new_rows > self.max_batch_rows):
                    batches.append(current)
                    current, new_rows, new_longest = [], item.candidates, len(item.ids)
                current.append(item)
                rows, longest = new_rows, new_longest
            if current:
                batches.append(current)
        return batches

    def batch_plan(
        self, requests: Sequence[GenerationRequest], params: GenerationParams
    ) -> list[tuple[int, int, int]]:
        """``(rows, padded prompt width, max new tokens)`` of each batch ``generate`` would run
        for these requests (for benchmarks and capacity planning)."""
        prepared = self._prepare(requests, params)
        return [
            (
                sum(item.candidates for item in batch),
                max(len(item.ids) for item in batch),
                batch[0].max_new_tokens,
            )
            for batch in self._batches(prepared)
        ]

    @torch.inference_mode()
    def _prefix_cache(self, prefix: tuple[int, ...]):
        """The batch-1 KV cache of ``prefix`` (it runs once per engine and prefix, kept in a
        small LRU)."""
        base = self._prefix_caches.get(prefix)
        if base is None:
            ids = torch.tensor([list(prefix)], dtype=torch.long, device=self.device)
            base = self.model(input_ids=ids, use_cache=True).cache
            self._prefix_caches[prefix] = base
            while len(self._prefix_caches) > PREFIX_CACHE_SIZE:
                self._prefix_caches.popitem(last=False)
        else:
            self._prefix_caches.move_to_end(prefix)
        return base

    # -- generation ----------------------------------------------------------------------------

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        params: GenerationParams,
        *,
        ignore_eos: bool = False,
    ) -> list[GenerationResult]:
        """Generate for every request; results come back in the order of ``requests``.

        ``ignore_eos=True`` makes every sequence run to its ``max_new_tokens`` (EOS is never
        chosen): for benchmarks that must compare equal amounts of work, not for copy.
        """
        prepared = self._prepare(requests, params)
        results: list[GenerationResult | None] = [None] * len(prepared)
        with self._score_columns() as columns:
            for batch in self._batches(prepared):
                outcome = self._run_batch(batch, params, ignore_eos=ignore_eos, columns=columns)
                for item, result in zip(batch, outcome, strict=True):
                    results[item.index] = result
        return [r for r in results if r is not None]

    def _score_columns(self):
        """A trimmed head's ``narrow()`` (decoding then works on its columns, yielded as a
        ``Columns``), else a block yielding None (full-width scores)."""
        head = self.model.get_output_embeddings()
        if self.column_scores and isinstance(head, TrimmedHead):
            return head.narrow()
        return contextlib.nullcontext()

    @staticmethod
    def _prefill_groups(batch: list[Prepared]) -> list[list[Prepared]]:
        """Consecutive runs of ``batch`` (ordered by ``_batches``) with the same prefix."""
        groups: list[list[Prepared]] = []
        for item in batch:
            if groups and groups[-1][0].prefix == item.prefix:
                groups[-1].append(item)
            else:
                groups.append([item])
        return groups

    @staticmethod
    def _prefill_width(group: list[Prepared]) -> int:
        """Positions a group's prefill fills: its prefix and its longest rest of the prompt
        (all but the last prompt token, which decoding's first step runs)."""
        return len(group[0].prefix) + max(len(item.suffix) - 1 for item in group)

    @torch.inference_mode()
    def _prefill(self, group: list[Prepared], cache: PreallocatedCache, width: int) -> None:
        """Run everything but the last prompt token of each request in ``group`` (one shared
        prefix) through the model into ``cache`` (a window of the batch's cache), one row per
        request, right-aligned in ``width`` positions (the whole group's prefill width).

        Rows are [shared prefix][left padding][rest of the prompt]: the mask hides the padding
        and position ids (cumsum of the mask) continue after the prefix, so every row sees
        exactly its own prompt."""
        prefix = group[0].prefix
        if prefix:
            cache.start_with(self._prefix_cache(prefix))
        rests = [item.suffix[:-1] for item in group]
        rest_width = width - len(prefix)
        if not rest_width:
            return
        input_ids = torch.tensor(
            [[self.pad_token_id] * (rest_width - len(rest)) + rest for rest in rests],
            dtype=torch.long, device=self.device,
        )
        attention_mask = torch.tensor(
            [[1] * len(prefix) + [0] * (rest_width - len(rest)) + [1] * len(rest)
             for rest in rests],
            dtype=torch.long, device=self.device,
        )
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, len(prefix):]
        self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                   cache=cache, use_cache=True, logits_to_keep=1)

    @torch.inference_mode()
    def _prefill_exact(self, group: list[Prepared], cache: PreallocatedCache, first: int,
                       end: int) -> None:
        """Prefill every request of ``group`` (no shared prefix) into row ``first + i`` of
        ``cache``, its prompt but the last token ending at position ``end``, unpadded.

        Prompts are packed end to end into one sequence of up to ``PREFILL_TOKENS``
        (``PackedPrefill``): nothing is computed for padding, and attention, per prompt, needs
        no padding mask, so it skips the masked half of the causal square and, in sliding-window
        layers, the keys behind the window (``generation.attention.causal_attention``). One
        prompt per pass would do the same work, but on two threads the projections ran at half
        speed on a single ~750-token prompt and at full speed on two.

        A request whose prompt begins like the one before it (in id order) copies those
        positions' keys and values from that row and runs only the rest: prompts of one job
        share a header, and products of one brand often share their approved examples."""
        base = self.model.base_model  # the layers without the output layer: no logits needed
        order = sorted(range(len(group)), key=lambda i: group[i].ids)
        pack: list[tuple[int, ...]] = []  # PackedPrefill segments
        tokens: list[int] = []
        positions: list[int] = []
        previous: tuple[int, list[int]] | None = None  # the row and prompt before
        for index in order:
            prompt, row = group[index].ids[:-1], first + index
            if not prompt:  # a one-token prompt: decoding's first step runs it
                continue
            shared, source = 0, (row, 0)
            if previous is not None:
                other_row, other = previous
                limit = min(len(prompt) - 1, len(other))  # at least one position to run
                while shared < limit and prompt[shared] == other[shared]:
                    shared += 1
                if shared < MIN_SHARED_PREFIX:
                    shared = 0
                source = other_row, end - len(other)
            previous = row, prompt
            if pack and len(tokens) + len(prompt) - shared > PREFILL_TOKENS:
                self._run_pack(base, cache, pack, tokens, positions)
                pack, tokens, positions = [], [], []
            pack.append((row, end - len(prompt), shared, len(prompt), *source))
            tokens += prompt[shared:]
            positions += range(shared, len(prompt))
        if pack:
            self._run_pack(base, cache, pack, tokens, positions)

    def _run_pack(self, base, cache: PreallocatedCache, pack: list[tuple[int, ...]],
                  tokens: list[int], positions: list[int]) -> None:
        """One forward pass over ``pack``'s prompts, end to end (see ``_prefill_exact``)."""
        with exact_prefill([(length - shared, length) for _, _, shared, length, _, _ in pack]):
            base(input_ids=torch.tensor([tokens], dtype=torch.long, device=self.device),
                 position_ids=torch.tensor([positions], dtype=torch.long, device=self.device),
                 cache=PackedPrefill(cache, pack), use_cache=True)

    def _decode_cache(self, batch: list[Prepared], width: int, max_new: int, *, split: bool
                      ) -> PreallocatedCache:
        """The batch's cache: ``width`` prefilled positions then ``max_new`` decode steps, for
        every candidate's row, or with ``split`` each prompt once (``SharedPromptCache``)."""
        config = self.model.config
        heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or (
            config.hidden_size // config.num_attention_heads
        )
        rows = sum(item.candidates for item in batch)
        if split:
            return SharedPromptCache.allocate(
                config.num_hidden_layers, requests=len(batch), rows=rows, heads=heads,
                head_dim=head_dim, width=width, steps=max_new, dtype=self.dtype,
                device=self.device)
        return PreallocatedCache.allocate(
            config.num_hidden_layers, rows=rows, heads=heads, head_dim=head_dim,
            capacity=width + 1 + max_new, dtype=self.dtype, device=self.device,
        )

    @torch.inference_mode()
    def _run_batch(
        self, batch: list[Prepared], params: GenerationParams, *, ignore_eos: bool = False,
        columns: Columns | None = None,
    ) -> list[GenerationResult]:
        """Prefill each prefix group of ``batch`` apart, right-aligned in place into one cache
        sized for the whole batch (decoding then writes each token in place too), and decode
        every candidate of every request as one row.

        On CPU the cache holds each request's prompt once, not once per candidate
        (``SharedPromptCache``, read by ``generation.attention``'s two-part attention), so the
        prefill writes request ``i`` of the batch to prompt row ``i``; elsewhere (or without the
        CPU flash kernel) to the first row of its candidates, then copied to the others."""
        started = time.perf_counter()
        max_new = batch[0].max_new_tokens
        groups = self._prefill_groups(batch)
        widths = [self._prefill_width(group) for group in groups]
        cached = max(widths)
        split = self.device == "cpu" and attention.can_split_prompts()
        cache = self._decode_cache(batch, cached, max_new, split=split)
        input_rows, mask_rows, seeds, row_rules = [], [], [], []
        row_requests: list[int] = []  # each row's request, as its place in the batch
        firsts: list[int] = []  # each request's first row
        for group, group_width in zip(groups, widths, strict=True):
            lead = cached - group_width
            # The cache row the group's first prompt is prefilled into.
            first = len(firsts) if split else len(input_rows)
            for item in group:
                ordinal = len(firsts)
                firsts.append(len(input_rows))
                pad = group_width - len(item.ids) + 1
                tokens = list(item.prefix) + [self.pad_token_id] * pad + item.suffix
                mask = [1] * len(item.prefix) + [0] * pad + [1] * len(item.suffix)
                for candidate in range(item.candidates):
                    input_rows.append([self.pad_token_id] * lead + tokens)
                    mask_rows.append([0] * lead + mask)
                    seeds.append(row_seed(item.seed, candidate))
                    row_rules.append(item.rules)
                    row_requests.append(ordinal)
            if group_width and not group[0].prefix and self.exact_prefill:
                self._prefill_exact(group, cache, first, cached)
            elif group_width:
                # Prefilled in place, one row per request, a few rows at a time (a prompt's
                # activations are the peak of a batch's memory); then copied to its candidates'
                # rows.
                step = (max(1, PREFILL_TOKENS // group_width) if self.device == "cpu"
                        else len(group))
                for start in range(0, len(group), step):
                    part = group[start:start + step]
                    window = PreallocatedCache.window(
                        cache, slice(first + start, first + start + len(part)), lead, group_width)
                    self._prefill(part, window, group_width)
            if group_width and not split:
                counts = [item.candidates for item in group]
                if max(counts) > 1:
                    cache.repeat_rows(first, counts, lead, group_width)
        for layer in cache.layers:
            layer.set_length(cached)
        input_ids = torch.tensor(input_rows, dtype=torch.long, device=self.device)
        attention_mask = torch.tensor(mask_rows, dtype=torch.long, device=self.device)
        width = cached + 1

        processors = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            processors.append(RepetitionPenalty(params.repetition_penalty, columns))
        if any(rules is not None for rules in row_rules):
            # Before sampling, so the sampler draws among the tokens the rules allow.
            processors.append(GroundedDecoding(
                vocabulary_for(self.tokenizer), row_rules, prompt_width=width,
                eos_token_ids=self.eos_token_ids, columns=columns,
            ))
        if params.do_sample:
            processors.append(
                SeededSampler(
                    seeds, temperature=params.temperature, top_k=params.top_k, top_p=params.top_p
                )
            )
        new_tokens = decode(self.model, input_ids, attention_mask, cache, processors,
                            eos_token_ids=self.eos_token_ids, pad_token_id=self.pad_token_id,
                            max_new=max_new, min_new=max_new if ignore_eos else 0,
                            columns=columns,
                            # Every CPU batch, even one candidate per request: a request's
                            # attention is then computed the same way whatever batch it is in.
                            shared=SharedPrompt(row_requests, cached, cache.layers,
                                                attention_mask[firsts, :cached].bool())
                            if split else None)
        seconds = time.perf_counter() - started
        total_rows = len(new_tokens)

        results = collect_results(batch, new_tokens, self.tokenizer, self.eos_token_ids,
                                  seconds)
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
