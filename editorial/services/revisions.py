"""Editing a draft: revisions (optimistic locking, nothing typed is lost), restores, comments and
presence."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from generation.text import plain_text

from .. import policies, workflow
from ..audit import audit_log
from ..exceptions import RevisionConflict, WorkflowError
from ..models import Candidate, Draft, DraftComment, DraftPresence, Revision
from ._rows import locked_draft

State = Draft.State


def _next_revision_number(draft: Draft) -> int:
    last = draft.revisions.order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def revision_create(
    *, draft: Draft, text: str, author, parent: Revision | None, candidate: Candidate | None = None
) -> Revision:
    """Call inside a transaction holding the draft row lock."""
    return Revision.objects.create(
        draft=draft,
        number=_next_revision_number(draft),
        parent=parent,
        text=text,
        author=author,
        candidate=candidate,
    )


def _editable(draft: Draft, base_revision_id: int | None
              ) -> tuple[Draft, Revision | None, bool]:
    """The draft, locked for the rest of the transaction, if its text may change now; its
    current revision; and whether that is not the one the editor loaded (``base_revision_id``):
    someone saved in the meantime."""
    locked = locked_draft(draft)
    workflow.check("edit", locked)
    current = locked.current_revision
    return locked, current, current is not None and current.pk != base_revision_id


def _make_current(locked: Draft, revision: Revision, user) -> None:
    """``revision`` becomes the draft's text: the draft is in edit (an approved or exported one
    goes back through review), and the editor takes it if nobody has."""
    locked.current_revision = revision
    if locked.assignee_id is None:
        locked.assignee = user
    locked.state = workflow.target("edit", locked.state)
    locked.save(update_fields=["current_revision", "assignee", "state", "updated_at"])


def revision_save(
    *,
    draft: Draft,
    user,
    text: str,
    base_revision_id: int | None,
    candidate: Candidate | None = None,
) -> Revision:
    """Store the editor's text as a new revision made from ``base_revision_id``.

    If someone else saved in the meantime the text is still stored (as a revision that is not
    current) and ``RevisionConflict`` is raised, so nothing typed is ever lost. Saving an
    approved or exported draft sends it back through review.
    """
    policies.check_edit(user)
    text = plain_text(text)
    if not text:
        raise WorkflowError(gettext("The text is empty; nothing was saved."))
    conflict = None
    with transaction.atomic():
        locked, current, stale = _editable(draft, base_revision_id)
        if stale:
            base = locked.revisions.filter(pk=base_revision_id).first()
            kept = revision_create(
                draft=locked, text=text, author=user, parent=base, candidate=candidate
            )
            audit_log(actor=user, verb="revision.conflict", obj=locked,
                      revision=kept.pk, current=current.pk)
            conflict = RevisionConflict(current=current, revision=kept)
        elif current is not None and current.text == text and candidate is None:
            return current
        else:
            revision = revision_create(
                draft=locked, text=text, author=user, parent=current, candidate=candidate
            )
            _make_current(locked, revision, user)
            audit_log(actor=user, verb="revision.create", obj=locked, revision=revision.pk,
                      number=revision.number)
    if conflict is not None:
        # Raised only after the commit: the editor's text must survive the refusal.
        raise conflict
    draft.refresh_from_db()
    return revision


def revision_restore(*, draft: Draft, user, revision: Revision, base_revision_id: int | None
                     ) -> Revision:
    """Make an older revision's text current again, as a new revision whose parent is the
    restored one: history is never rewritten, and the diff against the model's candidate
    follows the restored line of edits.

    The same optimistic locking as ``revision_save``: if someone saved after the editor loaded
    ``base_revision_id``, ``RevisionConflict`` is raised (with the restored revision as the
    editor's text, which is stored already) and nothing is written. Restoring an approved or
    exported draft sends it back through review.
    """
    policies.check_edit(user)
    if revision.draft_id != draft.pk:
        raise WorkflowError(gettext("That revision belongs to another draft."))
    conflict = None
    with transaction.atomic():
        locked, current, stale = _editable(draft, base_revision_id)
        if stale:
            audit_log(actor=user, verb="revision.conflict", obj=locked, restore=revision.pk,
                      current=current.pk)
            conflict = RevisionConflict(current=current, revision=revision)
        elif current is not None and current.text == revision.text:
            raise WorkflowError(
                gettext("Revision %(number)d has the same text as the current revision.")
                % {"number": revision.number}
            )
        else:
            restored = revision_create(draft=locked, text=revision.text, author=user,
                                        parent=revision)
            _make_current(locked, restored, user)
            audit_log(actor=user, verb="revision.restore", obj=locked, revision=restored.pk,
                      number=restored.number, restored=revision.pk,
                      restored_number=revision.number,
                      previous=current.pk if current is not None else None)
    if conflict is not None:
        raise conflict
    draft.refresh_from_db()
    return restored


def comment_add(*, draft: Draft, user, text: str) -> DraftComment:
    """Add a comment to the draft's discussion; anyone with a Copydesk role may comment."""
    policies.require(policies.can_view(user), gettext("Only Copydesk members can comment."))
    text = plain_text(text)
    if not text:
        raise WorkflowError(gettext("The comment is empty."))
    if len(text) > DraftComment.MAX_LENGTH:
        raise WorkflowError(
            gettext("The comment is longer than %(limit)d characters.")
            % {"limit": DraftComment.MAX_LENGTH}
        )
    with transaction.atomic():
        comment = DraftComment.objects.create(draft=draft, author=user, text=text)
        audit_log(actor=user, verb="comment.add", obj=draft, comment=comment.pk)
    return comment


def presence_beat(*, draft: Draft, user, now=None) -> None:
    """Record that ``user`` has the draft open (its page beats every
    ``DraftPresence.POLL_SECONDS``). One read per beat; a write only when ``last_seen`` is older
    than ``DraftPresence.WRITE_SECONDS``, and a new visit (``since`` reset) after a gap longer
    than ``DraftPresence.WINDOW_SECONDS``."""
    policies.require(policies.can_view(user))
    now = now or timezone.now()
    rows = DraftPresence.objects.filter(draft=draft, user=user)
    seen = rows.values_list("last_seen", flat=True).first()
    if seen is not None and seen > now - timedelta(seconds=DraftPresence.WRITE_SECONDS):
        return
    if seen is not None and seen >= now - timedelta(seconds=DraftPresence.WINDOW_SECONDS):
        rows.update(last_seen=now)
        return
    DraftPresence.objects.update_or_create(
        draft=draft, user=user, defaults={"since": now, "last_seen": now}
    )


def presence_leave(*, draft: Draft, user) -> None:
    """The user closed the draft's page: others stop seeing them at their next beat."""
    DraftPresence.objects.filter(draft=draft, user=user).delete()


def candidate_choose(*, draft: Draft, candidate: Candidate, user, base_revision_id: int | None
                     ) -> Revision:
    """Start editing from another model candidate: its text becomes a new revision."""
    policies.check_edit(user)
    if candidate.draft_id != draft.pk:
        raise WorkflowError(gettext("That candidate belongs to another draft."))
    return revision_save(
        draft=draft, user=user, text=candidate.text, base_revision_id=base_revision_id,
        candidate=candidate,
    )

