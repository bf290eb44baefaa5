"""The decoding loop of one batch: a model step per token for every row still writing, the
logits processors, then the choice of each row's token.

Where the vocabulary is large (Gemma 3: 262k tokens) the work on full-width scores costs more
than the model's step for a batch of rows (profiled: filling, copying, dividing, ``topk`` and
``argmax`` over 24 x 262k scores took 2.5x the output layer's matrix product), so every pass
over them here is one that cannot be avoided: the penalty is applied in place, the sampler
returns its choice instead of a score row to take the argmax of, and with a trimmed output layer
the scores stay in its columns (``generation.columns``): ids translate, scores are not widened.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

from .attention import SharedPrompt, set_shared_prompt, shared_prompt
from .columns import Columns
from .kvcache import PreallocatedCache
from .sampling import SeededSampler

__all__ = ["RepetitionPenalty", "decode"]


class RepetitionPenalty(LogitsProcessor):
    """transformers' repetition penalty (a seen token's score divided by ``penalty`` if positive,
    multiplied if negative), applied to ``scores`` in place: the same numbers without the two
    vocabulary-wide copies (padding and scatter) transformers' processor makes each step.
    With ``columns`` the scores are a trimmed head's columns: a seen token without a column
    scores -inf at full width, and the penalty leaves -inf as it is, so it is skipped."""

    def __init__(self, penalty: float, columns: Columns | None = None):
        self.penalty = float(penalty)
        self.columns = columns

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.columns is None:
            seen = scores.gather(1, input_ids)
            seen = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
            return scores.scatter_(1, input_ids, seen)
        flat, index = scores.view(-1), self.columns.flat_of(input_ids)
        seen = flat[index]
        # A token seen twice is written twice with the same value.
        flat[index] = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
        return scores


@torch.inference_mode()
def decode(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
           cache: PreallocatedCache, processors: Sequence[LogitsProcessor], *,
           eos_token_ids: Sequence[int], pad_token_id: int, max_new: int,
           min_new: int, columns: Columns | None = None,
           shared: SharedPrompt | None = None) -> list[list[int]]:
    """Each row's new tokens (up to and with its EOS), decoding from its last prompt token
    (``cache`` holds the rest): the processors shape the scores, then a ``SeededSampler`` at
    their end draws each row's token, or else the top score wins. ``min_new`` steps cannot
    choose EOS. With ``columns`` the model's logits are those columns of the vocabulary (a
    trimmed head inside ``TrimmedHead.narrow``), and the processors were built with them.
    ``shared``: which request's prompt each row continues, for attention that reads each prompt
    once from a ``SharedPromptCache`` (``generation.attention``); None with any other cache.

    A row leaves the batch once it has finished (its cache row, ids and processor state are
    dropped), as soon as finished rows are an eighth of the batch: the steps after go only to
    rows still writing. With best of N, candidates of one prompt differ in length by several
    times, and a batch otherwise runs every row as long as its longest."""
    processors = list(processors)
    sampler = processors.pop() if processors and isinstance(processors[-1], SeededSampler) else None
    device = input_ids.device
    eos = torch.tensor(list(eos_token_ids), dtype=torch.long, device=device)
    # EOS among the scores' columns; ``eos`` itself stays in ids (what the chosen tokens are).
    no_eos = eos if columns is None else torch.from_numpy(columns.of(eos.cpu().numpy())).to(device)
    rows = input_ids.shape[0]
    out: list[list[int]] = [[] for _ in range(rows)]
    alive = list(range(rows))  # the original row of each row still in the batch
    done = torch.zeros(rows, dtype=torch.bool, device=device)
    ids, mask = input_ids, attention_mask
    positions = mask.sum(-1, keepdim=True) - 1
    tokens = ids[:, -1:]
    if shared is not None:
        # The two-part attention masks the prompts' padding itself and ignores transformers'
        # mask; a 4-d mask is taken as already built, so none is built per step (two masks of
        # rows x width for Gemma's full and sliding layers) and none grows with the steps.
        mask = mask.new_ones((rows, 1, 1, 1), dtype=torch.bool)
    with shared_prompt(shared):
        for step in range(max_new):
            logits = model(input_ids=tokens, attention_mask=mask, position_ids=positions,
                           cache=cache, use_cache=True, logits_to_keep=1).logits
            scores = logits[:, -1, :].float()
            if step < min_new:
                scores[:, no_eos] = float("-inf")
            for processor in processors:
                scores = processor(ids, scores)
            chosen = scores.argmax(dim=-1) if sampler is None else sampler.choose(scores)
            if columns is not None:
                chosen = columns.token_ids(chosen)
            chosen = chosen.masked_fill(done, pad_token_id)
            tokens = chosen.unsqueeze(-1)
            ids = torch.cat([ids, tokens], dim=-1)
            if shared is None:
                mask = torch.cat([mask, torch.ones_like(tokens)], dim=-1)
            positions = positions + 1
            for row, token, finished in zip(alive, chosen.tolist(), done.tolist(), strict=True):
                if not finished:
                    out[row].append(token)
            done = done | torch.isin(chosen, eos)
            finished = int(done.sum())
            if finished == len(alive):
                break
            if finished and finished * 8 >= len(alive):
                keep = (~done).nonzero().squeeze(-1)
                kept = keep.tolist()
                ids, mask, positions, tokens = ids[keep], mask[keep], positions[keep], tokens[keep]
                cache.batch_select_indices(keep)
                for processor in [*processors, sampler]:
                    if hasattr(processor, "select_rows"):
                        processor.select_rows(kept)
                if shared is not None:
                    shared = shared.select_rows(kept)
                    set_shared_prompt(shared)
                alive = [alive[i] for i in kept]
                done = done[keep]
    return out
