"""Running on a CPU: how many threads, which dtype, and an output layer cut to the tokens copy
is written in."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import threading

from .columns import Columns
from .openmp import choose_wait_policy

choose_wait_policy()  # before torch loads

import torch  # noqa: E402


def cpu_threads() -> int:
    """Threads for CPU inference: ``$COPYDESK_TORCH_THREADS``, else the CPUs this process may use
    that other processes are not already keeping busy (1-minute load average), at least one.

    On a shared machine more threads than free cores slow decoding down (measured on a 2-core
    box with a load of 4: one thread decoded 20-40% faster than two, and with OpenMP's default
    spin-waiting two threads were 3-7x slower). Set the variable to pin the count, e.g. for a
    dedicated worker.
    """
    configured = os.environ.get("COPYDESK_TORCH_THREADS", "").strip()
    if configured:
        return max(1, int(configured))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        cpus = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - Windows
        busy = 0.0
    return max(1, min(cpus, int(cpus - busy + 0.5)))


def release_freed_memory() -> bool:
    """Give memory that the process has freed back to the system (glibc's ``malloc_trim``);
    whether it could. Freed heap chunks otherwise stay in the resident set: after loading Gemma
    3 270M (fp32 weights converted to bf16, projections fused, the head trimmed) 160 MB of
    them, which every later peak then sits on. A no-op without glibc."""
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (AttributeError, OSError):  # pragma: no cover - not glibc
        return False
    trim(0)
    return True


def cpu_dtype() -> torch.dtype:
    """Weights' dtype on CPU: ``$COPYDESK_CPU_DTYPE`` (``float32`` / ``bfloat16``), else bf16
    where the CPU multiplies bf16 natively (AVX512-BF16 or AMX), fp32 elsewhere. Measured on
    such a CPU with Gemma 3 270M: a decode step 1.8x faster for 36 rows, and half the memory.
    Without native bf16 the conversions make it slower than fp32."""
    configured = os.environ.get("COPYDESK_CPU_DTYPE", "").strip().lower()
    if configured:
        if configured not in ("float32", "bfloat16"):
            raise ValueError(f"COPYDESK_CPU_DTYPE={configured!r}: use float32 or bfloat16")
        return getattr(torch, configured)
    # Private helpers of torch.cpu (present in the pinned torch); a build without them: fp32.
    native = any(getattr(torch.cpu, probe, lambda: False)()
                 for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return torch.bfloat16 if native else torch.float32


# Set while a thread decodes in a trimmed head's columns (``TrimmedHead.narrow``): per thread, so
# a plain ``model.generate`` elsewhere in the process still gets full-width logits.
_NARROW = threading.local()


class TrimmedHead(torch.nn.Module):
    """An output layer that scores only ``keep`` (token ids, increasing) and gives every other
    token -inf: such a token can never be chosen, and the matrix product reads a third less for
    Gemma 3 (whose 262k x 640 output layer costs more per step than the rest of the model).
    Inside ``narrow()`` it returns only the kept columns (see ``generation.columns``)."""

    def __init__(self, head: torch.nn.Linear, keep: torch.Tensor):
        super().__init__()
        self.vocab_size = head.weight.shape[0]
        self.register_buffer("keep", keep.to(head.weight.device), persistent=False)
        self.weight = torch.nn.Parameter(head.weight.detach()[self.keep].clone(),
                                         requires_grad=False)
        self.bias = (None if head.bias is None else
                     torch.nn.Parameter(head.bias.detach()[self.keep].clone(), requires_grad=False))
        self.columns = Columns(self.keep, self.vocab_size)

    @contextlib.contextmanager
    def narrow(self):
        """Within this block (in this thread) ``forward`` returns the scores of the kept
        columns only, in the weight's dtype; yields the ``Columns`` that map them to ids."""
        previous = getattr(_NARROW, "active", False)
        _NARROW.active = True
        try:
            yield self.columns
        finally:
            _NARROW.active = previous

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # A flat, contiguous input keeps this a plain matrix product: the last position of a
        # prefill ([rows, 1, hidden] sliced from [rows, width, hidden]) is not contiguous, and
        # linear() then ran it as a batched product over a copy of the whole weight per row
        # (4.5 s for two Gemma rows, more than the prefill itself).
        scores = torch.nn.functional.linear(hidden.reshape(-1, hidden.shape[-1]), self.weight,
                                            self.bias)
        if getattr(_NARROW, "active", False):
            return scores.view(*hidden.shape[:-1], scores.shape[-1])
        # Scores come out in fp32 (what sampling reads), written once at full width.
        full = scores.new_full((scores.shape[0], self.vocab_size), float("-inf"),
                               dtype=torch.float32)
        full.index_copy_(-1, self.keep, scores.float())
        return full.view(*hidden.shape[:-1], self.vocab_size)


class OffsetRMSNorm(torch.nn.Module):
    """Gemma's RMSNorm (``x * rsqrt(mean(x^2) + eps) * (1 + weight)`` in fp32, cast back) as one
    fused ``rms_norm`` over a flat input, with ``1 + weight`` computed once: the same numbers,
    bit for bit, as transformers' module, whose nine separate passes (casts, power, mean, two
    products) made norms ~16% of a CPU prefill. Measured in the engine (8 Gemma prompts x 6
    candidates x 24 tokens, two threads, load ~1, three alternating rounds): 10.5 / 8.6 / 8.3 s
    -> 9.0 / 7.8 / 7.7 s, texts identical."""

    def __init__(self, weight: torch.Tensor, eps: float):
        super().__init__()
        self.register_buffer("scale", 1.0 + weight.detach().float(), persistent=False)
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and not x.is_contiguous() and x.transpose(1, 2).is_contiguous():
            # Queries and keys come as a [rows, heads, positions, dim] view of the projection:
            # normalised in the projection's own layout, the kernel reads it contiguously.
            return self.forward(x.transpose(1, 2)).transpose(1, 2)
        out = torch.nn.functional.rms_norm(x.float(), (x.shape[-1],), self.scale, self.eps)
        return out.to(x.dtype)


def fuse_norms(model: torch.nn.Module) -> int:
    """Replace every Gemma 3 RMSNorm of ``model`` with an ``OffsetRMSNorm`` (inference only:
    it keeps no trainable weight); how many were replaced."""
    from transformers.models.gemma3.modeling_gemma3 import Gemma3RMSNorm

    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is Gemma3RMSNorm:
                setattr(parent, name, OffsetRMSNorm(child.weight, child.eps))
                replaced += 1
    return replaced



@functools.cache
def _fused_attention_class():
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    from transformers.models.gemma3.modeling_gemma3 import (
        Gemma3Attention,
        apply_rotary_pos_emb,
        eager_attention_forward,
    )

    class FusedGemmaAttention(Gemma3Attention):
        """Gemma 3's attention with its query, key and value projections as one matrix product
        (``qkv_proj``): a decode step of 48 rows ran three small products per layer, each paying
        the call and threading overhead that dominates at that size. Otherwise transformers'
        forward as it is."""

        def forward(self, hidden_states, position_embeddings=None, attention_mask=None,
                    cache=None, **kwargs):
            input_shape = hidden_states.shape[:-1]
            qkv = self.qkv_proj(hidden_states)
            query, key, value = (part.view(*input_shape, -1, self.head_dim).transpose(1, 2)
                                 for part in qkv.split(self.qkv_sizes, dim=-1))
            query, key = self.q_norm(query), self.k_norm(key)
            cos, sin = position_embeddings
            query, key = apply_rotary_pos_emb(query, key, cos, sin)
            if cache is not None:
                key, value = cache.update(key, value, self.layer_idx, kwargs=kwargs)
            attend = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation,
                                                           eager_attention_forward)
            out, weights = attend(self, query, key, value, attention_mask, dropout=0.0,
                                  scaling=self.scaling, sliding_window=self.sliding_window,
                                  **kwargs)
            return self.o_proj(out.reshape(*input_shape, -1).contiguous()), weights

    return FusedGemmaAttention


class FusedGemmaMLP(torch.nn.Module):
    """Gemma 3's MLP (``down(act(gate(x)) * up(x))``) with gate and up as one matrix product."""

    def __init__(self, mlp: torch.nn.Module):
        super().__init__()
        self.gate_up = _fused_linear(mlp.gate_proj, mlp.up_proj)
        self.down_proj, self.act_fn = mlp.down_proj, mlp.act_fn
        self.intermediate = mlp.gate_proj.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).split(self.intermediate, dim=-1)
        return self.down_proj(self.act_fn(gate) * up)


def _fused_linear(*parts: torch.nn.Linear) -> torch.nn.Linear:
    """One ``Linear`` whose outputs are ``parts``' outputs side by side."""
    weight = torch.cat([p.weight.detach() for p in parts])
    fused = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=parts[0].bias is not None,
                            device=weight.device, dtype=weight.dtype)
    fused.weight = torch.nn.Parameter(weight, requires_grad=False)
    if parts[0].bias is not None:
        fused.bias = torch.nn.Parameter(torch.cat([p.bias.detach() for p in parts]),
                                        requires_grad=False)
    return fused


def fuse_projections(model: torch.nn.Module) -> int:
    """Give every Gemma 3 attention one q/k/v product and every MLP one gate/up product
    (inference only: the separate weights are dropped); how many modules were changed."""
    from transformers.models.gemma3.modeling_gemma3 import Gemma3Attention, Gemma3MLP

    attention_class = _fused_attention_class()
    changed = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is Gemma3MLP:
                setattr(parent, name, FusedGemmaMLP(child))
                changed += 1
            elif type(child) is Gemma3Attention:
                projections = (child.q_proj, child.k_proj, child.v_proj)
                child.qkv_proj = _fused_linear(*projections)
                child.qkv_sizes = [p.out_features for p in projections]
                del child.q_proj, child.k_proj, child.v_proj
                child.__class__ = attention_class
                changed += 1
    return changed
