"""Seeded sampling inside a greedy decode: a counter-based random stream per row, so a draft's
seed reproduces it whatever batch it runs in, on any device."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .openmp import choose_wait_policy

choose_wait_policy()  # before torch loads

import torch  # noqa: E402
from transformers import LogitsProcessor  # noqa: E402


def row_seed(seed: int, candidate: int) -> int:
    """The generator seed for one candidate row of a request (stable across runs/machines)."""
    key = f"{int(seed)}:{int(candidate)}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") >> 1


_MASK32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, constant: int) -> torch.Tensor:
    """``x * constant mod 2**32`` for int64 tensors holding 32-bit values, without ever leaving
    the int64 range (so the result is exact and identical on every device)."""
    high, low = constant >> 16, constant & 0xFFFF
    return ((x * low) + (((x * high) & 0xFFFF) << 16)) & _MASK32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer (xorshift-multiply, "lowbias32" constants), vectorised."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def seeded_uniform(keys: torch.Tensor, step: int) -> torch.Tensor:
    """One uniform number in [0, 1) per row for ``step``: a counter-based stream, so drawing
    it is a few vectorised integer ops for all rows at once, and row ``i``'s number depends only
    on ``keys[i]`` and ``step``. ``keys`` is an int64 tensor of two 32-bit halves of the row
    seed (see ``SeededSampler``)."""
    low, high = keys & _MASK32, (keys >> 32) & _MASK32
    x = _hash32(low ^ _hash32(high + 2 * step + 1))
    x = _hash32(x ^ _hash32(high ^ (step + 0x68E31DA4)))
    return (x >> 8).to(torch.float32) * (1.0 / (1 << 24))


# Columns per block of the two-stage top-k (``top_k``); measured on 48 x 176k fp32 scores, one
# thread: torch.topk 33 ms, blocks of 64 12.6 ms, 128 10.9 ms, 256 30 ms.
TOP_K_BLOCK = 128


def top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk(scores, k, dim=-1)`` over ``[rows, width]`` scores: the same values (which
    of several equal scores at the k-th place is taken is unspecified in both), cheaper for a
    wide row. The k blocks of ``TOP_K_BLOCK`` columns with the highest maxima hold all of the k
    highest scores (a block holding one of them has a maximum at least as high as the k-th
    score, and fewer than k blocks have a higher one), so topk runs over the blocks' maxima
    and then over the k chosen blocks: one reading pass over the scores instead of topk's
    selection over all of them."""
    rows, width = scores.shape
    blocks = width // TOP_K_BLOCK
    if blocks < 4 * k:
        return torch.topk(scores, k, dim=-1)
    scores = scores.contiguous()
    body = scores[:, : blocks * TOP_K_BLOCK].view(rows, blocks, TOP_K_BLOCK)
    chosen = torch.topk(body.amax(dim=-1), k, dim=-1).indices
    values = body.gather(1, chosen.unsqueeze(-1).expand(-1, -1, TOP_K_BLOCK)).view(rows, -1)
    offsets = torch.arange(TOP_K_BLOCK, device=scores.device)
    columns = (chosen.unsqueeze(-1) * TOP_K_BLOCK + offsets).view(rows, -1)
    if width > blocks * TOP_K_BLOCK:  # the last, partial block is always a candidate
        values = torch.cat([values, scores[:, blocks * TOP_K_BLOCK:]], dim=-1)
        tail = torch.arange(blocks * TOP_K_BLOCK, width, device=scores.device)
        columns = torch.cat([columns, tail.expand(rows, -1)], dim=-1)
    values, picked = torch.topk(values, k, dim=-1)
    return values, columns.gather(1, picked)


def _log_normalizer(logits: torch.Tensor) -> torch.Tensor:
    """``logsumexp`` over the last dimension, summed in float64 so that it does not depend on
    how wide the row is: a row of the kept columns and the full-width row with -inf elsewhere
    give the same float32 norm. Summed in float32 the two differed in the last bit on some
    CPUs (the reduction's order follows the width and the vector unit), enough to move a
    top-p boundary and write another draft."""
    peak = logits.amax(dim=-1, keepdim=True)
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    total = torch.exp(logits - peak).sum(dim=-1, keepdim=True, dtype=torch.float64)
    return (total.log() + peak.double()).to(logits.dtype)


class SeededSampler(LogitsProcessor):
    """Per-row seeded temperature / top-k / top-p sampling inside a greedy ``generate``.

    For each row it keeps only the sampled token (all other logits -> -inf) so that the greedy
    argmax picks it. Row ``i`` draws its number for step ``t`` from a counter-based stream,
    ``seeded_uniform(seed_i, t)``: rows never influence each other, the numbers are the same on
    every device (exact integer arithmetic), and all rows are drawn with a few tensor ops
    instead of a Python loop over per-row generators. Nothing here syncs with the device.
    """

    def __init__(self, seeds: Sequence[int], *, temperature: float, top_k: int, top_p: float):
        self.seeds = [int(s) & (2**63 - 1) for s in seeds]
        self._keys: torch.Tensor | None = None
        self.step = 0
        self.temperature = float(temperature)
        self.top_k = int(top_k)
        self.top_p = float(top_p)

    def __len__(self) -> int:
        return len(self.seeds)

    def select_rows(self, keep: Sequence[int]) -> None:
        """Go on with rows ``keep`` only, in that order (the engine drops finished rows)."""
        self.seeds = [self.seeds[r] for r in keep]
        self._keys = None

    def _shortlist(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sorted (descending, ties by token id) tempered logits and ids that can be sampled,
        plus the log-normalizer to turn them into probabilities (top-k renormalizes, top-p does
        not).

        A full sort of a 50k vocabulary costs ~2 ms per row, so it is avoided where the answer
        is a short prefix: ``topk`` for top-k, and growing ``topk`` until the nucleus is covered
        for top-p alone. Under top-k only the shortlist is divided by the temperature (dividing
        keeps the order), not the whole vocabulary.
        """
        vocab = logits.shape[-1]
        if 0 < self.top_k < vocab:
            k = self.top_k
            values, ids = top_k(logits, k)
            values = values / self.temperature
            norm = torch.logsumexp(values, dim=-1, keepdim=True)
        elif self.top_p < 1.0:
            logits = logits / self.temperature
            norm = _log_normalizer(logits)
            k = min(64, vocab)
            while True:
                values, ids = top_k(logits, k)
                mass = torch.exp(values - norm).sum(dim=-1)
                if k >= vocab or bool((mass >= self.top_p).all()):
                    break
                k = min(vocab, k * 8)
        else:
            logits = logits / self.temperature
            ids = torch.arange(vocab, device=logits.device).expand_as(logits)
            return logits, ids, _log_normalizer(logits)
        # Canonical order for ties (topk leaves it unspecified): value descending, then id.
        ids, perm = torch.sort(ids, dim=-1, stable=True)
        values = values.gather(-1, perm)
        values, perm = torch.sort(values, dim=-1, descending=True, stable=True)
        return values, ids.gather(-1, perm), norm

    def choose(self, scores: torch.Tensor) -> torch.Tensor:
        """The token id each row draws from ``scores`` at this step (and the step advances)."""
        rows = scores.shape[0]
        if rows != len(self.seeds):
            raise ValueError(f"SeededSampler has {len(self.seeds)} seeds for {rows} rows")
        if self._keys is None or self._keys.device != scores.device:
            self._keys = torch.tensor(self.seeds, dtype=torch.int64, device=scores.device)
        values, ids, norm = self._shortlist(scores.float())
        probs = torch.exp(values - norm)
        if self.top_p < 1.0:
            # Keep the smallest prefix whose mass reaches top_p (always at least one token).
            drop = (probs.cumsum(dim=-1) - probs) >= self.top_p
            drop[:, 0] = False
            probs = probs.masked_fill(drop, 0.0)
        cdf = probs.cumsum(dim=-1)
        uniform = seeded_uniform(self._keys, self.step)
        self.step += 1
        target = uniform.to(cdf.dtype).unsqueeze(-1) * cdf[:, -1:]
        # side="left" finds the first entry whose cdf reaches the target; a zero-probability
        # entry has the same cdf as the one before it, so it can only be found if the target
        # is 0, which lands on entry 0 (the most likely token). The fallback to entry 0 is a
        # guard against float surprises, without a device sync.
        position = torch.searchsorted(cdf, target).clamp_(max=cdf.shape[-1] - 1)
        position = torch.where(probs.gather(-1, position) > 0, position, 0)
        return ids.gather(-1, position).squeeze(-1)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """As a logits processor (``generate``): every score -inf but the drawn token's."""
        chosen = self.choose(scores)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, chosen.unsqueeze(-1), 0.0)
