"""The score columns of a trimmed output layer, and the vocabulary ids they stand for.

``TrimmedHead`` scores 176k of Gemma 3's 262k tokens. Widening those scores to the whole
vocabulary (an -inf fill and a scatter) and then reading all 262k columns again in the
processors and the sampler cost about as much per 48-row decode step as the model's own matrix
products. So the decode loop keeps the head's columns as they come out, and whatever speaks in
vocabulary ids (the decoding rules, the repetition penalty, EOS) translates through ``Columns``.

Column order is id order (the kept ids are sorted), so ties broken by column are broken by id,
as on full-width scores: sampling in columns picks the same token the full-width path picks.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["Columns"]


class Columns:
    """Column ``c`` of a score row stands for vocabulary id ``ids[c]``; ids that have no column
    cannot be chosen (on full-width scores they would be -inf)."""

    def __init__(self, ids: torch.Tensor, vocab_size: int):
        if ids.ndim != 1 or (len(ids) > 1 and not bool((ids[1:] > ids[:-1]).all())):
            raise ValueError("column ids must be a strictly increasing 1-d tensor")
        self.ids = ids.long()
        self.vocab_size = int(vocab_size)
        inverse = torch.full((self.vocab_size,), -1, dtype=torch.long, device=ids.device)
        inverse[self.ids] = torch.arange(len(ids), device=ids.device)
        self.inverse = inverse
        self._inverse = inverse.cpu().numpy()

    def __len__(self) -> int:
        return len(self.ids)

    def of(self, ids: np.ndarray) -> np.ndarray:
        """The columns of those of ``ids`` that have one (the others are dropped: masking or
        allowing a token that cannot be chosen changes nothing)."""
        ids = np.asarray(ids, dtype=np.int64)
        columns = self._inverse[ids[(ids >= 0) & (ids < self.vocab_size)]]
        return columns[columns >= 0]

    def flat_of(self, ids: torch.Tensor) -> torch.Tensor:
        """Flat indices (``row * len(self) + column``) into ``[rows, len(self)]`` scores of the
        entries of ``ids`` (``[rows, n]`` vocabulary ids) that have a column."""
        columns = self.inverse[ids]
        offsets = torch.arange(ids.shape[0], device=ids.device).unsqueeze(1) * len(self)
        return (columns + offsets)[columns >= 0]

    def token_ids(self, columns: torch.Tensor) -> torch.Tensor:
        return self.ids[columns]
