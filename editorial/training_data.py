"""Approved edits as training data: SFT records and preference pairs, in the JSONL formats TRL's
``SFTTrainer`` and ``DPOTrainer`` load as they are (conversational ``messages``; conversational
``prompt`` / ``chosen`` / ``rejected``).

Two layers, like ``metrics``:

* pure functions over ``TrainingExample`` (one approved draft reduced to plain values):
  the split, the records, duplicates, statistics and the snapshot hash — reused by the learning
  benchmark on examples that never touched the database;
* ``training_examples()``, which reads approved drafts in a fixed number of queries.

Rules:

* **SFT**: one record per approved draft — the chat messages stored with the starting candidate
  (system, user; rebuilt from the product if the text started from no candidate) and the
  approved text as the assistant message. For a base model (``prompt_format="completion"``)
  the record is ``{"prompt", "completion"}`` instead (TRL's prompt-completion format): the
  completion document the candidate was written from (or one built from the product), up to
  the product's entry, and the approved text as that entry's copy.
* **DPO**: ``chosen`` = the approved text, ``rejected`` = the starting candidate's text when
  their normalized edit distance is at least ``min_edit``; plus one pair per revision a reviewer
  rejected on a draft that was later approved (the rejected text against the approved one).
* **Split**: by product, from a hash of the SKU, so a product never lands in both halves and
  the split does not move when other products are added.
* **Duplicates**: records with the same JSON are kept once.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .metrics import normalized_edit_distance, tokens

SFT = "sft"
DPO = "dpo"
FORMATS = (SFT, DPO)
TRAIN = "train"
VALIDATION = "validation"
ALL = "all"
SPLITS = (TRAIN, VALIDATION, ALL)
# The share of products held out for validation.
VALIDATION_SHARE = 0.2
DEFAULT_MIN_EDIT = 0.1


@dataclass(frozen=True)
class TrainingExample:
    """One approved draft, reduced to what training data needs."""

    sku: str
    brand: str
    kind: str
    messages: tuple[dict, ...]  # system, user (as given to the model at generation)
    approved_text: str
    start_text: str = ""  # the starting candidate's text ("" when none)
    rejected_texts: tuple[str, ...] = ()  # revisions a reviewer rejected before approval
    approved_at: datetime | None = None
    # The completion document the starting candidate was written from, else one built from the
    # product (no examples): what a base model is fine-tuned on.
    document: str = ""

    @property
    def edit_distance(self) -> float | None:
        if not self.start_text:
            return None
        return normalized_edit_distance(self.start_text, self.approved_text)


def split_of(sku: str, validation_share: float = VALIDATION_SHARE) -> str:
    """``"validation"`` or ``"train"`` for a product, from a stable hash of its SKU."""
    digest = hashlib.sha256(sku.encode("utf-8")).digest()
    bucket = int.from_bytes(digest[:8], "big") / 2**64
    return VALIDATION if bucket < validation_share else TRAIN


def _messages(messages: Iterable[dict]) -> list[dict]:
    """Only the prompt roles with their text (stored prompts may carry no assistant turn)."""
    return [
        {"role": str(m["role"]), "content": str(m.get("content", ""))}
        for m in messages
        if m.get("role") in {"system", "user", "assistant"}
    ]


def sft_record(example: TrainingExample, prompt_format: str = "chat") -> dict:
    if prompt_format == "completion":
        from generation.prompts import completion_training_pair

        prompt, completion = completion_training_pair(example.document, example.approved_text,
                                                      example.kind)
        return {"prompt": prompt, "completion": completion}
    return {"messages": [*_messages(example.messages),
                         {"role": "assistant", "content": example.approved_text.strip()}]}


def dpo_records(example: TrainingExample, *, min_edit: float = DEFAULT_MIN_EDIT) -> list[dict]:
    prompt = _messages(example.messages)
    chosen = example.approved_text.strip()
    rejected: list[str] = []
    if example.start_text.strip() and example.start_text.strip() != chosen:
        if normalized_edit_distance(example.start_text, chosen) >= min_edit:
            rejected.append(example.start_text.strip())
    for text in example.rejected_texts:
        if text.strip() and text.strip() != chosen and text.strip() not in rejected:
            rejected.append(text.strip())
    return [
        {"prompt": prompt,
         "chosen": [{"role": "assistant", "content": chosen}],
         "rejected": [{"role": "assistant", "content": text}]}
        for text in rejected
    ]


@dataclass
class Group:
    records: int = 0
    tokens: int = 0


@dataclass
class DatasetStats:
    records: int = 0
    tokens: int = 0
    duplicates: int = 0
    examples: int = 0
    per_brand: dict[str, Group] = field(default_factory=dict)
    per_kind: dict[str, Group] = field(default_factory=dict)
    per_split: dict[str, int] = field(default_factory=dict)
    mean_edit_distance: float | None = None


@dataclass
class Dataset:
    format: str
    split: str
    records: list[dict]
    stats: DatasetStats
    examples: list[TrainingExample] = field(default_factory=list)

    def jsonl(self) -> str:
        return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                       for r in self.records)

    @property
    def snapshot_hash(self) -> str:
        """SHA-256 of the JSONL: names exactly the data a model version was trained on."""
        return hashlib.sha256(self.jsonl().encode("utf-8")).hexdigest()


def word_tokens(text: str) -> int:
    return len(tokens(text))


def _record_text(record: dict) -> list[str]:
    parts = []
    for key in ("messages", "prompt", "completion", "chosen", "rejected"):
        value = record.get(key, [])
        parts += [value] if isinstance(value, str) else [m["content"] for m in value]
    return parts


def build_dataset(
    examples: Sequence[TrainingExample],
    *,
    format: str = SFT,
    split: str = ALL,
    min_edit: float = DEFAULT_MIN_EDIT,
    count_tokens: Callable[[str], int] = word_tokens,
    validation_share: float = VALIDATION_SHARE,
    prompt_format: str = "chat",
) -> Dataset:
    """The records of ``format`` for the ``split`` of ``examples``, duplicates dropped, in a
    stable order (SKU, kind), with statistics."""
    if format not in FORMATS:
        raise ValueError(f"Unknown format {format!r}; use one of {', '.join(FORMATS)}.")
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    stats = DatasetStats()
    records: list[dict] = []
    seen: set[str] = set()
    per_brand: dict[str, Group] = defaultdict(Group)
    per_kind: dict[str, Group] = defaultdict(Group)
    per_split: Counter[str] = Counter()
    distances = []
    chosen = []
    for example in sorted(examples, key=lambda e: (e.sku, e.kind)):
        part = split_of(example.sku, validation_share)
        if split != ALL and part != split:
            continue
        made = ([sft_record(example, prompt_format)] if format == SFT
                else dpo_records(example, min_edit=min_edit))
        kept = 0
        for record in made:
            key = json.dumps(record, ensure_ascii=False, sort_keys=True)
            if key in seen:
                stats.duplicates += 1
                continue
            seen.add(key)
            records.append(record)
            kept += 1
            n = sum(count_tokens(text) for text in _record_text(record))
            stats.tokens += n
            for group in (per_brand[example.brand or "—"], per_kind[example.kind]):
                group.records += 1
                group.tokens += n
            per_split[part] += 1
        if kept:
            chosen.append(example)
            if example.edit_distance is not None:
                distances.append(example.edit_distance)
    stats.records = len(records)
    stats.examples = len(chosen)
    stats.per_brand = dict(sorted(per_brand.items()))
    stats.per_kind = dict(sorted(per_kind.items()))
    stats.per_split = {name: per_split.get(name, 0) for name in (TRAIN, VALIDATION)}
    stats.mean_edit_distance = sum(distances) / len(distances) if distances else None
    return Dataset(format=format, split=split, records=records, stats=stats, examples=chosen)


# --- Reading the database -------------------------------------------------------------------------


def training_examples(*, brand: str | None = None, kind: str | None = None,
                      since: datetime | None = None,
                      prompt_format: str = "chat") -> list[TrainingExample]:
    """Approved (and exported) drafts as examples, optionally for one brand (name), one content
    kind (code), approved since a time. Five queries whatever the number of drafts. With
    ``prompt_format="completion"`` each example also carries its completion ``document``."""
    from generation.prompts import COMPLETION, build_completion, build_messages

    from .facts import brand_rules, kind_spec, product_facts
    from .metrics import starting_candidate_id
    from .models import Candidate, Draft, ReviewDecision, Revision

    drafts = Draft.objects.filter(
        state__in=[Draft.State.APPROVED, Draft.State.EXPORTED], approved_revision__isnull=False
    ).select_related("product__brand", "kind", "approved_revision")
    if brand:
        drafts = drafts.filter(product__brand__name=brand)
    if kind:
        drafts = drafts.filter(kind_id=kind)
    if since is not None:
        drafts = drafts.filter(approved_at__gte=since)
    drafts = list(drafts.order_by("product__sku", "kind_id"))
    ids = [d.pk for d in drafts]
    links = {
        pk: (parent_id, candidate_id)
        for pk, parent_id, candidate_id in Revision.objects.filter(draft_id__in=ids)
        .values_list("pk", "parent_id", "candidate_id")
    }
    starts = {d.pk: starting_candidate_id(d.approved_revision_id, links) for d in drafts}
    candidates = {
        c.pk: c for c in Candidate.objects.filter(pk__in=[c for c in starts.values() if c])
        .only("pk", "text", "prompt")
    }
    rejected: dict[int, list[str]] = defaultdict(list)
    for draft_id, text in ReviewDecision.objects.filter(
        draft_id__in=ids, decision=ReviewDecision.Decision.REJECT
    ).order_by("created_at", "pk").values_list("draft_id", "revision__text"):
        rejected[draft_id].append(text)
    examples = []
    for draft in drafts:
        candidate = candidates.get(starts[draft.pk])
        stored = candidate.prompt if candidate is not None else []
        facts, kind_rules = product_facts(draft.product), kind_spec(draft.kind)
        brand = brand_rules(draft.product.brand)
        messages = _messages(stored)
        if not any(m["role"] == "user" for m in messages):
            messages = build_messages(facts=facts, kind=kind_rules, brand=brand)
        document = ""
        if prompt_format == COMPLETION:
            document = next((str(m.get("content", "")) for m in stored
                             if m.get("role") == COMPLETION), "")
            document = document or build_completion(facts=facts, kind=kind_rules,
                                                    brand=brand).text
        examples.append(TrainingExample(
            sku=draft.product.sku,
            brand=draft.product.brand.name if draft.product.brand_id else "",
            kind=draft.kind_id,
            messages=tuple(messages),
            approved_text=draft.approved_revision.text,
            start_text=candidate.text if candidate is not None else "",
            rejected_texts=tuple(rejected.get(draft.pk, ())),
            approved_at=draft.approved_at,
            document=document,
        ))
    return examples


@functools.lru_cache(maxsize=4)
def tokenizer_counter(path: str | None) -> Callable[[str], int]:
    """Counts a model's tokens when its tokenizer loads, else words/characters (cached per
    path: the statistics page asks on every request)."""
    if path:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(path)
        except Exception:  # a missing or broken model directory: fall back
            return word_tokens
        return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return word_tokens
