"""Review: submitting a draft and deciding on it, one by one or in bulk."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from .. import metrics, policies, selectors, workflow
from ..audit import audit_log
from ..exceptions import BlockingFlags, StaleRevision, WorkflowError
from ..models import Draft, ReviewDecision, Revision
from ._rows import locked_draft
from .assignment import BulkResult
from .copy_feed import copy_feed_publish

State = Draft.State


def draft_bulk_approve(*, drafts: Sequence[Draft], user, seen: Mapping[int, int],
                       comment: str = "") -> BulkResult:
    """``draft_approve`` for each draft, pinned to the revision the reviewer saw of it
    (``seen``: draft id -> revision id, as the queue showed them); a draft whose text changed
    since, or that the approval rules refuse, is skipped with the reason."""
    policies.require(policies.can_review(user), gettext("Only reviewers can approve drafts."))
    return _bulk_decide(drafts=drafts, seen=seen, decide=functools.partial(
        draft_approve, user=user, comment=comment))


def _bulk_decide(*, drafts: Sequence[Draft], seen: Mapping[int, int], decide) -> BulkResult:
    result = BulkResult()
    for draft in drafts:
        revision_id = seen.get(draft.pk)
        if not workflow.allows("approve", draft.state):
            result.skipped.append((draft, gettext("It is %(state)s, not in review.")
                                   % {"state": draft.get_state_display().lower()}))
            continue
        if revision_id is None:
            result.skipped.append((draft, gettext(
                "Which text you saw was not sent; reload the queue and try again.")))
            continue
        try:
            result.done.append(decide(draft=draft, revision_id=revision_id))
        except WorkflowError as exc:
            result.skipped.append((draft, str(exc)))
    return result


def draft_bulk_reject(*, drafts: Sequence[Draft], user, seen: Mapping[int, int],
                      comment: str) -> BulkResult:
    """``draft_reject`` for each draft, pinned to the revision the reviewer saw (``seen``, as
    for ``draft_bulk_approve``), with ``comment``; the others are skipped with the reason."""
    policies.require(policies.can_review(user), gettext("Only reviewers can reject drafts."))
    comment = (comment or "").strip()
    if not comment:
        raise WorkflowError(gettext("Say why: a comment is required to reject."))
    return _bulk_decide(drafts=drafts, seen=seen, decide=functools.partial(
        draft_reject, user=user, comment=comment))


def draft_submit(*, draft: Draft, user) -> Draft:
    policies.require(policies.can_edit(user), gettext("Only editors can submit drafts."))
    with transaction.atomic():
        locked = locked_draft(draft)
        workflow.check("submit", locked)
        if locked.current_revision_id is None:
            raise WorkflowError(gettext("There is no text to submit."))
        locked.state = workflow.target("submit", locked.state)
        locked.save(update_fields=["state", "updated_at"])
        audit_log(actor=user, verb="draft.submit", obj=locked,
                  revision=locked.current_revision_id)
    return locked


def _decide(*, draft: Draft, user, revision_id: int, decision: str, comment: str) -> Draft:
    """Record a review decision on the revision the reviewer saw, and move the draft."""
    policies.check_review(user)
    comment = (comment or "").strip()
    if decision != ReviewDecision.Decision.APPROVE and not comment:
        raise WorkflowError(gettext("Say what needs to change: a comment is required."))
    with transaction.atomic():
        locked = locked_draft(draft)
        workflow.check(decision, locked)
        if locked.current_revision_id != revision_id:
            raise StaleRevision(gettext(
                "The text changed after you opened it; reload and review the new revision."
            ), current=locked.current_revision)
        revision = locked.current_revision
        if decision == ReviewDecision.Decision.APPROVE:
            _check_approvable(draft=locked, revision=revision, user=user)
        try:
            with transaction.atomic():
                ReviewDecision.objects.create(
                    draft=locked, revision=revision, reviewer=user, decision=decision,
                    comment=comment,
                )
        except IntegrityError as exc:
            raise WorkflowError(gettext("This revision has already been approved.")) from exc
        now = timezone.now()
        fields = ["state", "updated_at"]
        locked.state = workflow.target(decision, locked.state)
        if decision == ReviewDecision.Decision.APPROVE:
            locked.approved_revision = revision
            locked.approved_at = now
            locked.approved_by = user
            fields += ["approved_revision", "approved_at", "approved_by"]
            # The API's copy feed; its sequence lock is held only until this commit.
            copy_feed_publish(draft=locked, revision=revision, approved_at=now)
            if revision.origin_distance is None:
                # Stored now, so the dashboard's edit distances need no text comparison.
                metrics.revision_origin_distances([revision.pk])
        locked.save(update_fields=fields)
        audit_log(actor=user, verb=f"draft.{decision}", obj=locked, revision=revision.pk,
                  comment=comment)
    return locked


def _check_approvable(*, draft: Draft, revision: Revision, user) -> None:
    """The rules every approval obeys, whoever asks (page, queue, admin, API): no blocking
    flag in the text, and with the four-eyes rule nobody approves text they wrote or changed
    since the draft's last approval (not only the last revision: a colleague's one-character
    edit on top does not make the reviewer's own text someone else's)."""
    blocking = selectors.draft_blocking_flags(draft=draft, text=revision.text)
    if blocking:
        raise BlockingFlags(blocking)
    if not settings.COPYDESK_FOUR_EYES:
        return
    since = draft.approved_revision.number if draft.approved_revision_id else 0
    if draft.revisions.filter(author_id=user.pk, number__gt=since,
                              number__lte=revision.number).exists():
        raise WorkflowError(gettext(
            "Four-eyes rule: you wrote or changed this text since its last approval; "
            "someone else must approve it."))


def draft_approve(*, draft: Draft, user, revision_id: int, comment: str = "") -> Draft:
    """Approve ``revision_id``, the revision the reviewer saw; refused when it is no longer
    current, has a blocking flag, or breaks the four-eyes rule (``_check_approvable``)."""
    return _decide(draft=draft, user=user, revision_id=revision_id,
                   decision=ReviewDecision.Decision.APPROVE, comment=comment)


def draft_request_changes(*, draft: Draft, user, revision_id: int, comment: str) -> Draft:
    return _decide(draft=draft, user=user, revision_id=revision_id,
                   decision=ReviewDecision.Decision.REQUEST_CHANGES, comment=comment)


def draft_reject(*, draft: Draft, user, revision_id: int, comment: str) -> Draft:
    return _decide(draft=draft, user=user, revision_id=revision_id,
                   decision=ReviewDecision.Decision.REJECT, comment=comment)

