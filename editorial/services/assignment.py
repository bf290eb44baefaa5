"""Who works on a draft: claims, assignments and bulk assignment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext

from .. import policies, workflow
from ..audit import audit_log
from ..exceptions import WorkflowError
from ..models import Draft
from ._rows import locked_draft

State = Draft.State


def draft_claim(*, draft: Draft, user) -> Draft:
    policies.require(policies.can_edit(user), gettext("Only editors can claim drafts."))
    with transaction.atomic():
        locked = locked_draft(draft)
        workflow.check("claim", locked)
        locked.assignee = user
        locked.state = workflow.target("claim", locked.state)
        locked.save(update_fields=["assignee", "state", "updated_at"])
        audit_log(actor=user, verb="draft.claim", obj=locked)
    return locked


def draft_assign(*, draft: Draft, user, assignee) -> Draft:
    """Give ``draft`` to ``assignee``, a member of the Editor group. Editors only take drafts
    themselves; reviewers and admins assign anyone. Like a claim, a draft that is ready (or
    had changes requested) moves into edit."""
    policies.require(policies.can_assign(user, assignee),
                     gettext("Only reviewers and admins can assign drafts to others."))
    if not policies.is_assignable(assignee, by=user):
        raise WorkflowError(
            gettext("%(name)s is not an editor.") % {"name": assignee.get_username()}
        )
    with transaction.atomic():
        locked = locked_draft(draft)
        workflow.check("assign", locked)
        if locked.assignee_id == assignee.pk:
            raise WorkflowError(
                gettext("Already assigned to %(name)s.") % {"name": assignee.get_username()}
            )
        previous = locked.assignee_id
        locked.assignee = assignee
        locked.state = workflow.target("assign", locked.state)
        locked.save(update_fields=["assignee", "state", "updated_at"])
        audit_log(actor=user, verb="draft.assign", obj=locked, assignee=assignee.pk,
                  previous=previous)
    return locked


def draft_unassign(*, draft: Draft, user) -> Draft:
    """Take the assignee off ``draft``: editors give back their own drafts, reviewers and
    admins anyone's. A draft in edit goes back to ready for edit, for someone else to take."""
    with transaction.atomic():
        locked = locked_draft(draft)
        policies.require(
            policies.can_unassign(user, assignee_id=locked.assignee_id),
            gettext("Only reviewers and admins can unassign someone else's draft."),
        )
        if locked.assignee_id is None:
            raise WorkflowError(gettext("Nobody is assigned to this draft."))
        previous = locked.assignee_id
        locked.assignee = None
        locked.state = workflow.target("unassign", locked.state)
        locked.save(update_fields=["assignee", "state", "updated_at"])
        audit_log(actor=user, verb="draft.unassign", obj=locked, previous=previous)
    return locked


@dataclass
class BulkResult:
    """What a bulk action did: the drafts it changed, and the ones it skipped with the reason
    (for the user)."""

    done: list[Draft] = field(default_factory=list)
    skipped: list[tuple[Draft, str]] = field(default_factory=list)


def draft_bulk_assign(*, drafts: Sequence[Draft], user, assignee) -> BulkResult:
    """``draft_assign`` for each draft; those it refuses are skipped with its reason."""
    policies.require(policies.can_assign(user, assignee),
                     gettext("Only reviewers and admins can assign drafts to others."))
    result = BulkResult()
    for draft in drafts:
        try:
            result.done.append(draft_assign(draft=draft, user=user, assignee=assignee))
        except WorkflowError as exc:
            result.skipped.append((draft, str(exc)))
    return result

