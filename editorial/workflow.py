"""The draft's state machine in one table: which actions exist, from which states, who may take
them, where they lead and which guards they pass.

The services enforce it (``check`` before a write, ``target`` for the new state); the admin, the
API and the exports reach drafts only through the services; the pages ask
``policies.draft_actions`` which of these a user may take on a draft now. A rule changed here
changes everywhere at once.

Guards named in ``guards`` are checked by the service that carries the action out, since they
need more than the state: ``has_text`` (a current revision), ``comment`` (a reason is
required), ``stale_revision`` (the decision is on the revision the reviewer saw),
``blocking_flags`` (no blocking check on the text) and ``four_eyes`` (nobody approves their own
edits, where ``COPYDESK_FOUR_EYES`` is on).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.utils.translation import gettext, gettext_noop

from .exceptions import WorkflowError
from .models import Draft

State = Draft.State

ALL_STATES = frozenset(State.values)
# Where the page offers the editor: not while the draft waits on generation or on a reviewer
# (the services still let an editor save during review: the draft leaves review).
EDITABLE = frozenset(Draft.EDITABLE)
WAITING_FOR_EDIT = (State.READY, State.CHANGES_REQUESTED)
IN_REVIEW = frozenset({State.IN_REVIEW})


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    # The name of the ``policies`` predicate a user must pass; "" for the system's own moves
    # (workers, exports).
    permission: str
    refusal: str  # gettext_noop; may name the draft's ``%(state)s``
    moves: Mapping[str, str] = field(default_factory=dict)  # from -> to; others stay
    guards: tuple[str, ...] = ()
    offered: frozenset[str] | None = None  # where pages offer it, if fewer than ``sources``


def _to(state: str, sources) -> dict[str, str]:
    return {source: state for source in sources}


_EDIT = dict(
    sources=ALL_STATES - {State.GENERATING}, permission="can_edit",
    refusal=gettext_noop("This draft is still being generated."),
    moves=_to(State.IN_EDIT, ALL_STATES - {State.GENERATING}), offered=EDITABLE,
)
_DECIDE_REFUSAL = gettext_noop("Only drafts in review can be decided; this one is %(state)s.")

TRANSITIONS: dict[str, Transition] = {
    # A new revision (typed, restored or a candidate chosen) makes the draft in edit; an
    # approved or exported one goes back through review.
    "edit": Transition(**_EDIT),
    "restore": Transition(**_EDIT),
    "choose": Transition(**_EDIT),
    "claim": Transition(
        sources=ALL_STATES - {State.GENERATING, State.FAILED}, permission="can_edit",
        refusal=gettext_noop("A draft without generated text cannot be claimed yet."),
        moves=_to(State.IN_EDIT, WAITING_FOR_EDIT),
    ),
    "assign": Transition(
        sources=ALL_STATES - {State.GENERATING, State.FAILED}, permission="can_edit",
        refusal=gettext_noop("A draft without generated text cannot be assigned."),
        moves=_to(State.IN_EDIT, WAITING_FOR_EDIT),
    ),
    "unassign": Transition(
        sources=ALL_STATES, permission="can_edit", refusal="",
        moves={State.IN_EDIT: State.READY},
    ),
    "submit": Transition(
        sources=frozenset({State.READY, State.IN_EDIT, State.CHANGES_REQUESTED}),
        permission="can_edit",
        refusal=gettext_noop("A draft that is %(state)s cannot be submitted."),
        moves=_to(State.IN_REVIEW, {State.READY, State.IN_EDIT, State.CHANGES_REQUESTED}),
        guards=("has_text",),
    ),
    "approve": Transition(
        sources=IN_REVIEW, permission="can_review", refusal=_DECIDE_REFUSAL,
        moves={State.IN_REVIEW: State.APPROVED},
        guards=("stale_revision", "blocking_flags", "four_eyes"),
    ),
    "request_changes": Transition(
        sources=IN_REVIEW, permission="can_review", refusal=_DECIDE_REFUSAL,
        moves={State.IN_REVIEW: State.CHANGES_REQUESTED}, guards=("stale_revision", "comment"),
    ),
    "reject": Transition(
        sources=IN_REVIEW, permission="can_review", refusal=_DECIDE_REFUSAL,
        moves={State.IN_REVIEW: State.REJECTED}, guards=("stale_revision", "comment"),
    ),
    "retry": Transition(
        sources=frozenset({State.FAILED}), permission="can_generate",
        refusal=gettext_noop("Only failed drafts can be retried; this one is %(state)s."),
        moves={State.FAILED: State.GENERATING},
    ),
    # The worker stored candidates: a draft that waited for them is ready for edit.
    "generated": Transition(
        sources=ALL_STATES, permission="", refusal="",
        moves=_to(State.READY, {State.GENERATING, State.FAILED}),
    ),
    # An export wrote a draft's approved revision out: an approved draft is exported, one in
    # edit or review since keeps its state (``exporters.files._mark_exported`` does this in SQL).
    "export": Transition(
        sources=ALL_STATES, permission="can_export", refusal="",
        moves={State.APPROVED: State.EXPORTED}, guards=("approved_revision",),
    ),
}


def allows(action: str, state: str) -> bool:
    return state in TRANSITIONS[action].sources


def offers(action: str, state: str) -> bool:
    """Whether a page offers ``action`` on a draft in ``state``."""
    transition = TRANSITIONS[action]
    return state in (transition.offered if transition.offered is not None
                     else transition.sources)


def check(action: str, draft: Draft) -> None:
    """Refuse ``action`` on ``draft`` (read under its row lock) unless its state allows it."""
    if not allows(action, draft.state):
        raise WorkflowError(gettext(TRANSITIONS[action].refusal)
                            % {"state": draft.get_state_display().lower()})


def target(action: str, state: str) -> str:
    """The state a draft in ``state`` is in after ``action``."""
    return TRANSITIONS[action].moves.get(state, state)
