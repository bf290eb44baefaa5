"""Decode attention that reads a request's prompt once for all of its candidates.

With best of 6 a request's rows would hold six copies of the same prompt keys and values, and
with ~800-token prompts and 64 new tokens attention over the prompt is most of what a decode step
reads: for 48 Gemma rows, 18 layers x 40 MB of bf16 keys and values per step, more than the
weights. So the CPU engine's cache (``kvcache.SharedPromptCache``) holds each prompt once and
each row's own tokens apart, and inside ``shared_prompt`` each decode step attends in two parts:
every request's queries (all its rows and heads) against its prompt's keys, and each row against
its own tokens; the two softmax parts are then merged through their log-sum-exps. Measured for
one such layer, 48 rows, one thread: 7-10 ms as one attention, 1.4 ms in two parts.

The model is loaded with ``attn_implementation=ATTENTION`` (registered here); outside
``shared_prompt`` and for prompt steps it is transformers' SDPA attention as it is (off the CPU,
or without torch's CPU flash kernel, the engine keeps a cache row per candidate).
The result equals the one-part attention up to rounding (the parts are merged in fp32).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

__all__ = ["ATTENTION", "SharedPrompt", "causal_attention", "exact_prefill", "shared_prompt"]

ATTENTION = "copydesk_sdpa"

_ACTIVE = threading.local()
# Queries per block when a prefill's attention is cut to the keys each block can see (a sliding
# window, or a prompt continuing a copied prefix): small enough that little outside the window is
# computed, large enough for the kernel's own blocking.
PREFILL_BLOCK = 256
# The CPU flash-attention kernel, which also returns each query's log-sum-exp (what merging the
# two parts needs); a torch without it keeps one-part attention.
_FLASH = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def _additive(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    """A boolean mask as the additive one the flash kernel takes (0 or -inf)."""
    if mask is None:
        return None
    return torch.zeros(mask.shape, dtype=like.dtype, device=like.device).masked_fill_(
        ~mask, float("-inf"))


def can_split_prompts() -> bool:
    """Whether decode steps can attend in two parts here (a ``SharedPromptCache``)."""
    return _FLASH is not None


class SharedPrompt:
    """Which request's prompt each decode row continues (``requests[row]``, an index into the
    prompts of ``layers``, the ``SharedPromptCache``'s layers; a request's rows are
    consecutive), the prompts' width and ``prompt_mask`` (``[requests, width]``, False at
    padding)."""

    def __init__(self, requests: Sequence[int], width: int, layers: Sequence,
                 prompt_mask: torch.Tensor, *, _masks: tuple | None = None):
        self.requests = list(requests)
        self.width = int(width)
        self.layers = layers
        self.prompt_mask = prompt_mask
        # The padding mask as the additive one the flash kernel takes, made once per batch.
        self.additive = _masks[0] if _masks else _additive(prompt_mask[:, None, None, :],
                                                           layers[0]._key_buffer)
        # Whether a prompt has any position to see, computed once, not per layer and step: a
        # sliding-window model's prompts end in their last position (padding only on the left:
        # such models share no prefixes), so a window that still reaches into the prompts sees
        # one; without a window every position is seen.
        self.visible = prompt_mask.any(-1)[:, None, None]
        starts = [
            r
            for r in range(len(self.requests))
            if r == 0 or self.requests[r] != self.requests[r - 1]
        ]
        sizes = [b - a for a, b in zip(starts, [*starts[1:], len(self.requests)], strict=True)]
        self.groups, self.size = len(starts), max(sizes)
        prompts = [self.requests[r] for r in starts]
        # While every request still has rows, group g reads prompt g as it is; after that the
        # prompts of requests with rows are gathered.
        self.prompts = (None if prompts == list(range(prompt_mask.shape[0]))
                        else torch.tensor(prompts))
        # Same-sized groups are strided views of the rows; otherwise rows are gathered into
        # ``size`` slots per request (a short request repeats its last row) and scattered back.
        self.uniform = all(s == self.size for s in sizes)
        self.slots = torch.tensor(
            [
                start + min(i, s - 1)
                for start, s in zip(starts, sizes, strict=True)
                for i in range(self.size)
            ]
        )
        self.rows = torch.tensor(
            [
                g * self.size + (r - start)
                for g, (start, s) in enumerate(zip(starts, sizes, strict=True))
                for r in range(start, start + s)
            ]
        )

    def select_rows(self, keep: Sequence[int]) -> SharedPrompt:
        return SharedPrompt([self.requests[r] for r in keep], self.width, self.layers,
                            self.prompt_mask, _masks=(self.additive,))

    def attend(self, query, key, value, layer: int, scale, window: int | None = None):
        """``[rows, heads, 1, dim]`` queries of one decode step against their prompt's keys and
        values in cache layer ``layer`` and their rows' own ``[rows, kv heads, steps, dim]``
        ``key`` and ``value`` (the step's own included): the attention output as
        ``[rows, heads, 1, dim]``. With a sliding ``window`` only the last ``window``
        positions are seen; those before are not read at all."""
        rows, heads, _, dim = query.shape
        kv_heads, width = key.shape[1], self.width
        # Queries sharing a key head become positions of one query block: [rows, kv, rep, dim].
        query = query.reshape(rows, kv_heads, heads // kv_heads, dim)
        start = max(0, width + key.shape[2] - window) if window else 0
        if start:
            key, value = key[:, :, max(0, start - width):], value[:, :, max(0, start - width):]
        out_t, lse_t = _FLASH(query, key, value, scale=scale)[:2]
        if start >= width:  # the window has moved past the whole prompt
            return out_t.reshape(rows, heads, 1, dim)
        cache = self.layers[layer]
        keys = cache._key_buffer[:, :, start:width]
        values = cache._value_buffer[:, :, start:width]
        mask_p = self.additive[..., start:width]
        visible = self.visible
        if self.prompts is not None:
            prompts = self.prompts.to(query.device)
            keys, values = keys.index_select(0, prompts), values.index_select(0, prompts)
            mask_p, visible = mask_p.index_select(0, prompts), visible.index_select(0, prompts)
        if self.uniform:
            grouped = query.view(self.groups, self.size, *query.shape[1:])
        else:
            grouped = query.index_select(0, self.slots.to(query.device)).view(
                self.groups, self.size, *query.shape[1:]
            )
        # [groups, size, kv, rep, dim] -> [groups, kv, size * rep, dim]
        grouped = grouped.transpose(1, 2).reshape(self.groups, kv_heads, -1, dim)
        out_p, lse_p = _FLASH(grouped, keys, values, attn_mask=mask_p, scale=scale)[:2]
        # The kernel gives a query with nothing to see (a sliding window past the whole
        # prompt but for its padding) a log-sum-exp of 0, not -inf.
        lse_p = lse_p.masked_fill(~visible, float("-inf"))
        out_p = out_p.view(self.groups, kv_heads, self.size, -1, dim).transpose(1, 2)
        lse_p = lse_p.view(self.groups, kv_heads, self.size, -1).transpose(1, 2)
        if self.uniform:
            out_p, lse_p = out_p.reshape(query.shape), lse_p.reshape(query.shape[:-1])
        else:
            index = self.rows.to(query.device)
            out_p = out_p.reshape(-1, *query.shape[1:]).index_select(0, index)
            lse_p = lse_p.reshape(-1, *query.shape[1:-1]).index_select(0, index)
        # The prompt part's share of the softmax mass, exp(lse_p) / (exp(lse_p) + exp(lse_t)),
        # as one sigmoid (a row's own tokens are never masked, so lse_t is finite; a prompt
        # with nothing visible has lse_p = -inf and weighs 0).
        share = torch.sigmoid(lse_p - lse_t).unsqueeze(-1)
        out = torch.lerp(out_t.float(), out_p.float(), share)
        return out.to(query.dtype).reshape(rows, heads, 1, dim)


@contextlib.contextmanager
def _set_active(name: str, value):
    previous = getattr(_ACTIVE, name, None)
    setattr(_ACTIVE, name, value)
    try:
        yield
    finally:
        setattr(_ACTIVE, name, previous)


def shared_prompt(shared: SharedPrompt | None):
    """Within this block (in this thread) one-token steps attend in two parts per ``shared``;
    ``None`` leaves attention as it is. The decode loop updates it as rows leave the batch."""
    return _set_active("shared", shared)


def set_shared_prompt(shared: SharedPrompt | None) -> None:
    """Replace the active ``SharedPrompt`` of this thread (inside ``shared_prompt``)."""
    _ACTIVE.shared = shared


def causal_attention(query, key, value, *, scale: float, window: int | None = None):
    """Attention of ``[rows, heads, q, dim]`` queries over ``[rows, kv heads, k, dim]`` keys and
    values (``k >= q``) of unpadded rows: the queries are the last ``q`` positions, each sees the
    positions up to its own, and with a ``window`` only the ``window`` last of them (Gemma's
    sliding layers). Output ``[rows, heads, q, dim]``.

    Where a query block needs no mask (plain causal attention over the whole row) the kernel is
    told ``is_causal`` and skips the blocks above the diagonal; otherwise the queries go in
    blocks, each over the keys it can see, so the keys before a block's window are never read.
    A padding mask would make the kernel compute the full square."""
    q_len, k_len = query.shape[2], key.shape[2]
    offset = k_len - q_len
    sdpa = torch.nn.functional.scaled_dot_product_attention
    if offset == 0 and (window is None or k_len <= window):
        return sdpa(query, key, value, is_causal=True, scale=scale, enable_gqa=True)
    out = query.new_empty(query.shape)
    for start in range(0, q_len, PREFILL_BLOCK):
        stop = min(q_len, start + PREFILL_BLOCK)
        last = offset + stop  # keys [low, last) are visible to some query of the block
        low = 0 if window is None else max(0, offset + start - window + 1)
        positions = torch.arange(offset + start, offset + stop, device=query.device)[:, None]
        keys = torch.arange(low, last, device=query.device)[None, :]
        mask = keys <= positions
        if window is not None:
            mask &= keys > positions - window
        out[:, :, start:stop] = sdpa(query[:, :, start:stop], key[:, :, low:last],
                                     value[:, :, low:last], attn_mask=mask, scale=scale,
                                     enable_gqa=True)
    return out


def exact_prefill(segments: Sequence[tuple[int, int]]):
    """Within this block (in this thread) multi-token steps are prefills of unpadded prompts
    packed into one sequence: ``segments`` gives each one's ``(new, length)`` (its queries,
    the last ``new`` of its ``length`` positions; ``PackedPrefill`` gives attention each one's
    ``length`` keys, packed the same way). Attention is ``causal_attention`` per segment,
    computed from the positions, whatever mask transformers built."""
    return _set_active("exact", list(segments))


def _attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    segments = getattr(_ACTIVE, "exact", None)
    if query.shape[2] > 1 and segments and not dropout and kwargs.get("softcap") is None:
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        parts, queries, keys = [], 0, 0
        for new, length in segments:
            parts.append(causal_attention(
                query[:, :, queries : queries + new], key[:, :, keys : keys + length],
                value[:, :, keys : keys + length], scale=scale,
                window=kwargs.get("sliding_window")))
            queries, keys = queries + new, keys + length
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
        return out.transpose(1, 2).contiguous(), None
    shared = getattr(_ACTIVE, "shared", None)
    if shared is not None and query.shape[2] == 1:
        # A ``SharedPromptCache`` gave ``key`` and ``value`` as the rows' own tokens only; the
        # prompts are read from the cache. Its mask is the prompts' padding (a row's own tokens
        # are all visible), so transformers' mask is not needed.
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        out = shared.attend(query, key, value, module.layer_idx, scale,
                            window=kwargs.get("sliding_window"))
        return out.transpose(1, 2).contiguous(), None
    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
    )


AttentionInterface.register(ATTENTION, _attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)
