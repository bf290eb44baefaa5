"""``GroundedDecoding``: the logits processor that applies each row's rules at every step."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from transformers import LogitsProcessor

from ..checks.facts import _mentions, _text_index
from ..columns import Columns
from .rules import RowRules, _is_zh
from .vocabulary import DecodingVocabulary, _is_word, _keep, _last_char, _norm, _rules_terms

logger = logging.getLogger(__name__)



# Added to the score of a token that starts a fact not yet mentioned: at temperature 0.7 such a
# token becomes about 30x likelier. On 10 held-out demo descriptions fact coverage went from
# 53% (no nudge) to 61% at 1.6 and 65% at 2.6, with no loss of usable drafts.
FACT_NUDGE = 2.4



_NEG_INF = float("-inf")



class _Row:
    """One rule set compiled against the vocabulary (shared by the rows of one request)."""

    def __init__(self, vocab: DecodingVocabulary, rules: RowRules):
        self.rules = rules
        self.terms = vocab.compiled_terms(_rules_terms(rules))
        self.numbers = (vocab.compiled_numbers(frozenset(rules.allowed_numbers))
                        if rules.ground_numbers else None)
        self.stops = tuple(s.encode() for s in rules.stop_strings if s)
        self.stop_keep = max((len(s) for s in self.stops), default=1) - 1
        context = rules.context.encode()
        self.context_tail = _keep(_norm(context), self.terms.tail_size)
        number = ""
        if self.numbers is not None and context:
            number = self.numbers.open_number("", context[-64:])
            if number and not (self.numbers.ok(number, open_end=True)):
                number = ""  # the context's own number is not ours to police
        self.context_number = number



class _State:
    __slots__ = ("finished", "norm", "number", "pending", "raw", "seen", "stopped", "text")

    def __init__(self, row: _Row):
        self.seen = 0
        self.finished = False
        self.stopped = False
        self.raw = b""
        self.norm = row.context_tail
        self.number = row.context_number
        self.text = row.rules.context.encode()  # only kept while facts are pending
        self.pending = list(row.rules.fact_values)



class GroundedDecoding(LogitsProcessor):
    """Masks, per row, the tokens that would break that row's ``RowRules`` (see the module
    docstring); a row whose rules are ``None`` is left alone.

    ``input_ids[:, prompt_width:]`` are each row's generated tokens (rows padded on the left).
    Rows keep their state (byte tails, open number, stop seen) and update it from the last token
    each step; a processor that meets a sequence it has not followed (a fresh one, or a
    restart) rebuilds the state from all generated tokens. Scores are changed in place. A row
    left with no allowed token gets EOS. Put it before the sampler, so sampling picks among the
    allowed tokens. One host sync per step (the last token ids).

    ``columns``: the scores are those columns of the vocabulary (a trimmed output layer's, see
    ``generation.columns``); every id the rules name is looked up there, and one without a
    column is left out (it cannot be chosen anyway)."""

    def __init__(
        self,
        vocabulary: DecodingVocabulary,
        rows: Sequence[RowRules | None],
        prompt_width: int,
        eos_token_ids: Sequence[int],
        columns: Columns | None = None,
    ):
        self.vocabulary = vocabulary
        self.columns = columns
        self.rows = list(rows)
        self.prompt_width = int(prompt_width)
        self.eos_token_ids = sorted({int(i) for i in eos_token_ids})
        if not self.eos_token_ids:
            raise ValueError("GroundedDecoding needs at least one EOS token id")
        self._eos = set(self.eos_token_ids)
        compiled: dict[RowRules, _Row] = {}
        self._row_rules: list[_Row | None] = []
        for rules in self.rows:
            if rules is None:
                self._row_rules.append(None)
                continue
            if rules not in compiled:
                compiled[rules] = _Row(vocabulary, rules)
            self._row_rules.append(compiled[rules])
        self._active = [i for i, row in enumerate(self._row_rules) if row is not None]
        self._states: list[_State | None] = [
            _State(row) if row is not None else None for row in self._row_rules
        ]
        self._static: torch.Tensor | None = None
        self._static_key: tuple | None = None
        self._governed_mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.rows)

    # -- state --------------------------------------------------------------------------------

    def _push(self, row: _Row, state: _State, token: int) -> None:
        state.seen += 1
        if state.finished:
            return
        if token in self._eos:
            state.finished = True
            return
        data = self.vocabulary.token_bytes[token] if 0 <= token < self.vocabulary.size else b""
        if not data:
            return
        if row.stops and not state.stopped:
            window = _keep(state.raw, row.stop_keep) + data
            if any(stop in window for stop in row.stops):
                state.stopped = True
            state.raw = _keep(window, row.stop_keep)
        norm = self.vocabulary.norm[token]
        if state.norm.endswith(b" ") and norm.startswith(b" "):
            norm = norm[1:]
        state.norm = _keep(state.norm + norm, row.terms.tail_size)
        if row.numbers is not None:
            state.number = row.numbers.open_number(state.number[-64:], data)
        if state.pending:
            state.text += data

    def _sync(self, input_ids: torch.LongTensor) -> None:
        generated = input_ids.shape[1] - self.prompt_width
        if generated < 0:
            raise ValueError(f"input_ids are {input_ids.shape[1]} wide, shorter than the "
                             f"prompt width {self.prompt_width}")
        last = input_ids[:, -1].tolist() if generated > 0 else None
        full: list[list[int]] | None = None
        for r in self._active:
            state, row = self._states[r], self._row_rules[r]
            if state.seen == generated:
                continue
            if last is not None and state.seen == generated - 1:
                self._push(row, state, int(last[r]))
                continue
            if full is None:
                full = input_ids[:, self.prompt_width:].tolist()
            state = self._states[r] = _State(row)
            for token in full[r]:
                self._push(row, state, int(token))

    # -- masks --------------------------------------------------------------------------------

    def _columns(self, ids: np.ndarray, width: int) -> np.ndarray:
        """Where ``ids`` are among ``width`` scores (those that are there)."""
        if self.columns is not None:
            return self.columns.of(ids)
        return ids if self.vocabulary.size <= width else ids[ids < width]

    def _static_index(self, width: int, device: torch.device) -> torch.Tensor:
        """Flat indices (``row * width + id``) of the tokens each row may never produce: those
        containing a banned term, special tokens (with ``block_markup``) and ids the tokenizer
        does not know (a model vocabulary padded past the tokenizer's)."""
        key = (width, str(device))
        if self._static is not None and self._static_key == key:
            return self._static
        vocab = self.vocabulary
        eos = np.array(self.eos_token_ids, dtype=np.int64)
        per_rules: dict[int, np.ndarray] = {}
        flat: list[np.ndarray] = []
        for r in self._active:
            row = self._row_rules[r]
            ids = per_rules.get(id(row))
            if ids is None:
                full = width if self.columns is None else self.columns.vocab_size
                banned = [row.terms.always, np.arange(vocab.size, full, dtype=np.int64)]
                if row.rules.block_markup:
                    banned.append(vocab.special_ids)
                ids = np.setdiff1d(np.concatenate(banned), eos)
                ids = per_rules[id(row)] = self._columns(ids, width)
            flat.append(ids + r * width)
        self._static = torch.from_numpy(np.concatenate(flat)).to(device)
        self._static_key = key
        return self._static

    def _row_constraints(self, r: int) -> tuple[list[np.ndarray], np.ndarray | None, bool]:
        """``(banned id arrays, allowed ids or None, force EOS)`` for row ``r`` now."""
        row, state = self._row_rules[r], self._states[r]
        if state.stopped:
            return [], None, True
        banned: list[np.ndarray] = []
        allowed: np.ndarray | None = None
        terms = row.terms
        if terms.longest:
            if not _is_word(_last_char(state.norm)) and len(terms.at_start):
                banned.append(terms.at_start)
            banned.extend(terms.continuations(self.vocabulary, state.norm))
            if terms.exemptable:
                required = terms.pending(state.norm)
                if required:
                    allowed = self.vocabulary._pending_allowed(required)
        if row.numbers is not None:
            ban, only = row.numbers.for_state(state.number)
            if only is not None:
                allowed = only if allowed is None else np.intersect1d(allowed, only)
            elif len(ban):
                banned.append(ban)
        return banned, allowed, False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows, width = scores.shape
        if rows != len(self.rows):
            raise ValueError(f"GroundedDecoding has rules for {len(self.rows)} rows, got {rows}")
        if not self._active:
            return scores
        self._sync(input_ids)
        if not scores.is_contiguous():
            scores = scores.contiguous()
        device = scores.device
        flat = scores.view(-1)
        self._nudge_facts(flat, width, device)
        flat.index_fill_(0, self._static_index(width, device), _NEG_INF)

        banned_flat: list[np.ndarray] = []
        kept_flat: list[np.ndarray] = []
        kept: list[int] = []
        forced: list[int] = []
        for r in self._active:
            if self._states[r].finished:
                continue
            banned, allowed, force = self._row_constraints(r)
            if force:
                forced.append(r)
                continue
            banned = [self._columns(ids, width) for ids in banned]
            allowed = self._columns(allowed, width) if allowed is not None else None
            for ids in banned:
                banned_flat.append(ids + r * width)
            if allowed is not None:
                kept.append(r)
                kept_flat.append(allowed + r * width)

        if banned_flat:
            index = torch.from_numpy(np.concatenate(banned_flat)).to(device)
            flat.index_fill_(0, index, _NEG_INF)
        eos = torch.from_numpy(self._columns(np.array(self.eos_token_ids, dtype=np.int64),
                                             width)).to(device)
        if kept:
            # Only the allowed ids keep their (already masked) scores.
            index = torch.from_numpy(np.concatenate(kept_flat)).to(device)
            values = flat[index]
            scores.index_fill_(0, torch.tensor(kept, device=device), _NEG_INF)
            flat[index] = values
        if forced:
            forced_t = torch.tensor(forced, device=device)
            scores.index_fill_(0, forced_t, _NEG_INF)
            scores[forced_t.unsqueeze(1), eos.unsqueeze(0)] = 0.0
        # Never leave a governed row without a choice: EOS (score 0) when all else is -inf.
        # One reduction over the scores, no host sync.
        dead = self._governed(rows, device) & (scores.amax(dim=-1) == _NEG_INF)
        current = scores[:, eos]
        scores[:, eos] = torch.where(dead.unsqueeze(1), torch.zeros_like(current), current)
        return scores

    def _nudge_facts(self, flat: torch.Tensor, width: int, device: torch.device) -> None:
        """Raise the tokens that start each fact a row has not mentioned yet (``checks``'
        sense of mentioned: the value, or half its words), so copy covers the product's facts;
        the masks applied after still decide what may be written."""
        boosted: list[np.ndarray] = []
        for r in self._active:
            state = self._states[r]
            if not state.pending or state.finished or state.stopped:
                continue
            words, normalized = _text_index(state.text.decode("utf-8", "ignore"))
            state.pending = [v for v in state.pending if not _mentions(v, words, normalized)]
            zh = _is_zh(self._row_rules[r].rules.locale)
            for value in state.pending:
                ids = self._columns(self.vocabulary.starting_tokens(value, zh=zh), width)
                if len(ids):
                    boosted.append(ids + r * width)
        if boosted:
            index = torch.from_numpy(np.unique(np.concatenate(boosted))).to(device)
            flat.index_add_(0, index, torch.full((len(index),), FACT_NUDGE, dtype=flat.dtype,
                                                 device=device))

    def select_rows(self, keep: Sequence[int]) -> None:
        """Go on with rows ``keep`` only, in that order (the engine drops finished rows)."""
        self.rows = [self.rows[r] for r in keep]
        self._row_rules = [self._row_rules[r] for r in keep]
        self._states = [self._states[r] for r in keep]
        self._active = [i for i, row in enumerate(self._row_rules) if row is not None]
        self._static = self._static_key = self._governed_mask = None

    def _governed(self, rows: int, device: torch.device) -> torch.Tensor:
        """Which rows have rules, as a bool tensor on ``device``."""
        if self._governed_mask is None or self._governed_mask.device != device:
            mask = torch.zeros(rows, dtype=torch.bool)
            mask[self._active] = True
            self._governed_mask = mask.to(device)
        return self._governed_mask

