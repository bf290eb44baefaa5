"""One draft's page: its candidates, history, thread, presence and live checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from generation.checks import BLOCKING, ERROR, check_length, check_text, is_usable, max_text_chars
from generation.prompts import effective_max_chars

from ..diffing import flag_message
from ..examples import house_example_index
from ..facts import brand_rules, kind_spec, product_facts
from ..models import Candidate, Draft, DraftComment, DraftPresence, ReviewDecision, Revision


def draft_blocking_flags(*, draft: Draft, text: str) -> list[dict[str, Any]]:
    """The blocking flags the content checks raise on ``text`` as this draft's copy."""
    return [f for f in draft_text_checks(draft=draft, text=text) if f["severity"] == BLOCKING]



def draft_detail(*, draft_id: int) -> Draft:
    return get_object_or_404(
        Draft.objects.select_related(
            "product",
            "product__brand",
            "kind",
            "assignee",
            "approved_by",
            "current_revision",
            "current_revision__author",
            "approved_revision",
        ),
        pk=draft_id,
    )



def draft_candidate(*, draft: Draft, candidate_id: Any) -> Candidate | None:
    """One of the draft's candidates, or None for an id that is not one (or not a number)."""
    try:
        pk = int(candidate_id)
    except (TypeError, ValueError):
        return None
    return Candidate.objects.filter(draft=draft, pk=pk).first()



def draft_comment_list(*, draft: Draft) -> list[DraftComment]:
    return list(
        DraftComment.objects.filter(draft=draft).select_related("author")
        .order_by("created_at", "pk")
    )



@dataclass(frozen=True)
class ThreadEntry:
    """One post in a draft's discussion: a comment, or a review decision with its comment."""

    kind: str  # "comment" | "decision"
    pk: int
    author: str
    text: str
    created_at: datetime
    decision: str = ""
    decision_label: str = ""
    revision_number: int | None = None



def draft_thread(*, comments: list[DraftComment], decisions: list[ReviewDecision]
                 ) -> list[ThreadEntry]:
    """Comments and review decisions (as ``draft_comment_list`` and ``draft_decision_list``
    load them) in one conversation, oldest first."""
    entries = [
        ThreadEntry(kind="comment", pk=c.pk, author=c.author_name, text=c.text,
                    created_at=c.created_at)
        for c in comments
    ] + [
        ThreadEntry(
            kind="decision", pk=d.pk,
            author=d.reviewer.get_username() if d.reviewer_id else "—",
            text=d.comment, created_at=d.created_at, decision=d.decision,
            decision_label=str(d.get_decision_display()), revision_number=d.revision.number,
        )
        for d in decisions
    ]
    return sorted(entries, key=lambda e: (e.created_at, e.kind == "comment", e.pk))



def draft_presence_others(*, draft: Draft, user, now: datetime | None = None
                          ) -> list[DraftPresence]:
    """The other people who have the draft open now (seen within the presence window)."""
    now = now or timezone.now()
    return list(
        DraftPresence.objects.filter(
            draft=draft, last_seen__gte=now - timedelta(seconds=DraftPresence.WINDOW_SECONDS)
        ).exclude(user_id=user.pk).select_related("user").order_by("since", "pk")
    )



# A draft's candidates: newest job first, by rank within a job. The job's time, not the
# candidates': one job stores its candidates microseconds apart, in no particular rank order.
# A candidate whose job was deleted falls back to its own time.
CANDIDATE_ORDER = (
    Coalesce("job__created_at", "created_at").desc(),
    F("job_id").desc(nulls_last=True),
    "rank",
    "index",
)



def draft_candidate_list(*, draft: Draft) -> list[Candidate]:
    return list(
        Candidate.objects.filter(draft=draft)
        .select_related("model_version")
        .order_by(*CANDIDATE_ORDER)
    )



def draft_revision_list(*, draft: Draft) -> list[Revision]:
    return list(Revision.objects.filter(draft=draft).select_related("author").order_by("-number"))



def draft_decision_list(*, draft: Draft) -> list[ReviewDecision]:
    return list(
        ReviewDecision.objects.filter(draft=draft)
        .select_related("reviewer", "revision")
        .order_by("-created_at", "-pk")
    )



def revision_origin_candidate(
    *, revision: Revision | None, revisions: list[Revision], candidates: list[Candidate]
) -> Candidate | None:
    """The model candidate that ``revision``'s line of edits started from (walking parents)."""
    by_id = {r.pk: r for r in revisions}
    candidates_by_id = {c.pk: c for c in candidates}
    seen: set[int] = set()
    while revision is not None and revision.pk not in seen:
        seen.add(revision.pk)
        if revision.candidate_id is not None:
            return candidates_by_id.get(revision.candidate_id)
        revision = by_id.get(revision.parent_id)
    return None



def draft_char_limit(*, draft: Draft) -> int:
    """The brand's limit for the draft's kind if it sets one, else the kind's (0: none)."""
    return effective_max_chars(kind_spec(draft.kind), brand_rules(draft.product.brand))



def draft_text_max_chars(*, draft: Draft) -> int:
    """The longest text the desk checks or saves as this draft's copy: a few times its length
    limit, within a fixed ceiling (``generation.checks.max_text_chars``)."""
    return max_text_chars(draft_char_limit(draft=draft))



def draft_text_checks(*, draft: Draft, text: str) -> list[dict[str, Any]]:
    """The content checks for ``text`` as this draft's copy, as dicts like ``Candidate.flags``.
    Text longer than ``draft_text_max_chars`` (stored before there was a limit) gets only its
    length flag: it cannot be saved as it is, and checking all of it is wasted work."""
    kind, brand = kind_spec(draft.kind), brand_rules(draft.product.brand)
    if len(text) > max_text_chars(effective_max_chars(kind, brand)):
        flags = check_length(text, kind=kind, brand=brand)
    else:
        flags = check_text(text, facts=product_facts(draft.product), kind=kind, brand=brand)
    return [f.to_dict() for f in flags]



@dataclass(frozen=True)
class FirstDraft:
    """The best candidate of the draft's latest generation (what an editor starts from), whether
    it is usable (``generation.checks.is_usable``) and, when not, its error flags (dicts with
    the message in the reader's language)."""

    candidate: Candidate
    usable: bool
    errors: list[dict[str, Any]]



def draft_first_draft(*, candidates: list[Candidate]) -> FirstDraft | None:
    """``candidates`` as ``draft_candidate_list`` orders them (latest generation first, best
    first); None without candidates. ``Candidate.usable`` is stored with each candidate;
    candidates stored before it was are judged from their stored flags."""
    if not candidates:
        return None
    best = candidates[0]
    flags = [f for f in (best.flags or []) if isinstance(f, dict)]
    usable = best.usable if best.usable is not None else is_usable(flags)
    errors = [{**f, "message": flag_message(f)} for f in flags if f.get("severity") == ERROR]
    return FirstDraft(candidate=best, usable=usable, errors=[] if usable else errors)



@dataclass(frozen=True)
class ExampleSource:
    """Where one example in a candidate's prompt came from: an approved draft of the shop
    (``draft_id``, shown as "SKU · kind") or a house example (``house_key`` and its title)."""

    draft_id: int | None = None
    sku: str = ""
    kind_label: str = ""
    house_key: str = ""
    house_title: str = ""

    @property
    def is_house(self) -> bool:
        return bool(self.house_key)



def candidate_example_sources(*, candidates: list[Candidate]) -> list[Candidate]:
    """``candidates``, each given ``example_sources``: the examples its prompt showed
    (``Candidate.examples``), in prompt order. One query for all candidates' drafts, none for
    house examples (read from their file); a draft deleted since is left out, a house example
    no longer in the file shows its key."""
    entries = {
        candidate.pk: [e for e in candidate.examples if isinstance(e, dict)]
        if isinstance(candidate.examples, list) else []
        for candidate in candidates
    }
    draft_ids = {e["draft"] for found in entries.values() for e in found
                 if type(e.get("draft")) is int}
    drafts = {}
    if draft_ids:
        drafts = {
            draft.pk: draft for draft in
            Draft.objects.filter(pk__in=draft_ids).select_related("product", "kind")
            .only("pk", "product", "kind", "product__sku", "kind__code", "kind__label")
        }
    wants_house = any("house" in e for found in entries.values() for e in found)
    house = house_example_index() if wants_house else {}
    for candidate in candidates:
        sources = []
        for entry in entries[candidate.pk]:
            if "house" in entry:
                key = str(entry["house"])
                example = house.get(key)
                sources.append(ExampleSource(
                    house_key=key, house_title=example.facts.title if example else key))
            elif entry.get("draft") in drafts:
                draft = drafts[entry["draft"]]
                sources.append(ExampleSource(draft_id=draft.pk, sku=draft.product.sku,
                                             kind_label=str(draft.kind.display_label)))
        candidate.example_sources = sources
    return candidates

