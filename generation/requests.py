"""What goes into the engine and what comes out: requests, generated texts and their results,
and the step from a batch's new token ids to each request's cleaned, de-duplicated texts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .decoding import RowRules, cut_at_stop

__all__ = ["GeneratedText", "GenerationRequest", "GenerationResult", "clean_completion",
           "collect_results"]


@dataclass
class GenerationRequest:
    """One prompt: chat ``messages`` (instruct models, through the chat template) or a
    completion document ``prompt`` (base models), whose leading ``context`` (header, examples)
    other requests may share. ``lead_in`` is the start of the copy that ends the document; the
    returned texts begin with it. ``rules`` constrain decoding (grounded numbers, banned terms,
    markup, stop strings; see ``generation.decoding``).

    ``candidates``, ``seed`` and ``max_new_tokens`` are per request; ``max_new_tokens=None``
    means ``params.max_new_tokens``."""

    messages: list[dict] | None = None
    candidates: int = 1
    seed: int = 0
    max_new_tokens: int | None = None
    prompt: str = ""
    context: str = ""
    lead_in: str = ""
    rules: RowRules | None = None


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


@dataclass
class Prepared:
    """A request as the engine batches it: its token ids and its shared prefix."""

    index: int
    ids: list[int]
    candidates: int
    seed: int
    max_new_tokens: int
    prefix: tuple[int, ...] = ()  # leading ids shared with requests that have the same context
    lead_in: str = ""
    rules: RowRules | None = None

    @property
    def suffix(self) -> list[int]:
        return self.ids[len(self.prefix):]


def collect_results(batch: Sequence[Prepared], new_tokens: list[list[int]], tokenizer,
                    eos_token_ids: Sequence[int], seconds: float) -> list[GenerationResult]:
    """Each request's texts from its rows' new tokens (``batch``'s rows in order, each cut at
    its first EOS), with the batch's ``seconds`` shared out by rows."""
    results = []
    row = 0
    eos = set(eos_token_ids)
    for item in batch:
        texts: list[GeneratedText] = []
        seen: set[str] = set()
        for _ in range(item.candidates):
            tokens = new_tokens[row]
            row += 1
            cut = next((i for i, t in enumerate(tokens) if t in eos), None)
            finished = cut is not None
            kept = tokens if cut is None else tokens[:cut]
            text = tokenizer.decode(kept, skip_special_tokens=True)
            if item.rules is not None and item.rules.stop_strings:
                text = cut_at_stop(text, item.rules.stop_strings)
            text = clean_completion(item.lead_in + text)
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
                seconds=seconds * item.candidates / len(new_tokens),
            )
        )
    return results
