"""Writes. Views, commands, admin actions and Celery tasks all call these, so each workflow rule
lives here once: permission and validation first, then the write, side effects after commit."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from generation.checks import check_text, rank_score
from generation.params import GenerationParams
from generation.prompts import ProductFacts

from . import diffing, policies, selectors
from .audit import audit_log
from .facts import brand_rules, kind_spec, product_facts
from .models import (
    Candidate,
    ContentKind,
    Draft,
    DraftComment,
    DraftPresence,
    GenerationJob,
    JobChunk,
    JobItem,
    ModelVersion,
    Product,
    ReviewDecision,
    Revision,
)

logger = logging.getLogger(__name__)

State = Draft.State


class WorkflowError(Exception):
    """A request that the draft's state or the input does not allow; the message is for users."""


class RevisionConflict(WorkflowError):
    """The editor saved against a revision that is no longer current. Their text was kept as
    ``revision`` (not current); ``current`` is what someone else saved meanwhile."""

    def __init__(self, *, current: Revision, revision: Revision):
        super().__init__(
            gettext("Someone else saved revision %(current)d while you were editing. "
                    "Your text was kept as revision %(kept)d.")
            % {"current": current.number, "kept": revision.number}
        )
        self.current = current
        self.revision = revision


class StaleRevision(WorkflowError):
    """A review decision was made on a revision that is no longer the draft's current one."""


class BlockingFlags(WorkflowError):
    """The content checks raise a blocking flag on the text to approve; ``flags`` are they."""

    def __init__(self, flags: list[dict]):
        super().__init__(
            gettext("Blocking flags: %(flags)s")
            % {"flags": "; ".join(diffing.flag_message(flag) for flag in flags)}
        )
        self.flags = flags


# --- Drafts and revisions ----------------------------------------------------------------------

def _locked_draft(draft: Draft) -> Draft:
    return Draft.objects.select_for_update().get(pk=draft.pk)


def _next_revision_number(draft: Draft) -> int:
    last = draft.revisions.order_by("-number").values_list("number", flat=True).first()
    return (last or 0) + 1


def _revision_create(
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
    policies.require(policies.can_edit(user), "Only editors can change copy.")
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise WorkflowError(gettext("The text is empty; nothing was saved."))
    conflict = None
    with transaction.atomic():
        locked = _locked_draft(draft)
        if locked.state == State.GENERATING:
            raise WorkflowError(gettext("This draft is still being generated."))
        current = locked.current_revision
        if current is not None and current.pk != base_revision_id:
            base = locked.revisions.filter(pk=base_revision_id).first()
            kept = _revision_create(
                draft=locked, text=text, author=user, parent=base, candidate=candidate
            )
            audit_log(actor=user, verb="revision.conflict", obj=locked,
                      revision=kept.pk, current=current.pk)
            conflict = RevisionConflict(current=current, revision=kept)
        elif current is not None and current.text == text and candidate is None:
            return current
        else:
            revision = _revision_create(
                draft=locked, text=text, author=user, parent=current, candidate=candidate
            )
            locked.current_revision = revision
            if locked.assignee_id is None:
                locked.assignee = user
            locked.state = State.IN_EDIT
            locked.save(update_fields=["current_revision", "assignee", "state", "updated_at"])
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
    policies.require(policies.can_edit(user), gettext("Only editors can change copy."))
    if revision.draft_id != draft.pk:
        raise WorkflowError(gettext("That revision belongs to another draft."))
    conflict = None
    with transaction.atomic():
        locked = _locked_draft(draft)
        if locked.state == State.GENERATING:
            raise WorkflowError(gettext("This draft is still being generated."))
        current = locked.current_revision
        if current is not None and current.pk != base_revision_id:
            audit_log(actor=user, verb="revision.conflict", obj=locked, restore=revision.pk,
                      current=current.pk)
            conflict = RevisionConflict(current=current, revision=revision)
        elif current is not None and current.text == revision.text:
            raise WorkflowError(
                gettext("Revision %(number)d has the same text as the current revision.")
                % {"number": revision.number}
            )
        else:
            restored = _revision_create(draft=locked, text=revision.text, author=user,
                                        parent=revision)
            locked.current_revision = restored
            if locked.assignee_id is None:
                locked.assignee = user
            locked.state = State.IN_EDIT
            locked.save(update_fields=["current_revision", "assignee", "state", "updated_at"])
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
    text = (text or "").replace("\r\n", "\n").strip()
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
    if candidate.draft_id != draft.pk:
        raise WorkflowError(gettext("That candidate belongs to another draft."))
    return revision_save(
        draft=draft, user=user, text=candidate.text, base_revision_id=base_revision_id,
        candidate=candidate,
    )


def draft_claim(*, draft: Draft, user) -> Draft:
    policies.require(policies.can_edit(user), "Only editors can claim drafts.")
    with transaction.atomic():
        locked = _locked_draft(draft)
        if locked.state in {State.GENERATING, State.FAILED}:
            raise WorkflowError(gettext("A draft without generated text cannot be claimed yet."))
        locked.assignee = user
        if locked.state in {State.READY, State.CHANGES_REQUESTED}:
            locked.state = State.IN_EDIT
        locked.save(update_fields=["assignee", "state", "updated_at"])
        audit_log(actor=user, verb="draft.claim", obj=locked)
    return locked


UNASSIGNABLE = {State.GENERATING, State.FAILED}


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
        locked = _locked_draft(draft)
        if locked.state in UNASSIGNABLE:
            raise WorkflowError(gettext("A draft without generated text cannot be assigned."))
        if locked.assignee_id == assignee.pk:
            raise WorkflowError(
                gettext("Already assigned to %(name)s.") % {"name": assignee.get_username()}
            )
        previous = locked.assignee_id
        locked.assignee = assignee
        if locked.state in {State.READY, State.CHANGES_REQUESTED}:
            locked.state = State.IN_EDIT
        locked.save(update_fields=["assignee", "state", "updated_at"])
        audit_log(actor=user, verb="draft.assign", obj=locked, assignee=assignee.pk,
                  previous=previous)
    return locked


def draft_unassign(*, draft: Draft, user) -> Draft:
    """Take the assignee off ``draft``: editors give back their own drafts, reviewers and
    admins anyone's. A draft in edit goes back to ready for edit, for someone else to take."""
    with transaction.atomic():
        locked = _locked_draft(draft)
        policies.require(
            policies.can_unassign(user, assignee_id=locked.assignee_id),
            gettext("Only reviewers and admins can unassign someone else's draft."),
        )
        if locked.assignee_id is None:
            raise WorkflowError(gettext("Nobody is assigned to this draft."))
        previous = locked.assignee_id
        locked.assignee = None
        if locked.state == State.IN_EDIT:
            locked.state = State.READY
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
        if draft.state != State.IN_REVIEW:
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
    policies.require(policies.can_edit(user), "Only editors can submit drafts.")
    with transaction.atomic():
        locked = _locked_draft(draft)
        if locked.state not in {State.READY, State.IN_EDIT, State.CHANGES_REQUESTED}:
            raise WorkflowError(
                gettext("A draft that is %(state)s cannot be submitted.")
                % {"state": locked.get_state_display().lower()}
            )
        if locked.current_revision_id is None:
            raise WorkflowError(gettext("There is no text to submit."))
        locked.state = State.IN_REVIEW
        locked.save(update_fields=["state", "updated_at"])
        audit_log(actor=user, verb="draft.submit", obj=locked,
                  revision=locked.current_revision_id)
    return locked


def _decide(*, draft: Draft, user, revision_id: int, decision: str, comment: str) -> Draft:
    """Record a review decision on the revision the reviewer saw, and move the draft."""
    policies.require(policies.can_review(user), "Only reviewers can review drafts.")
    comment = (comment or "").strip()
    if decision != ReviewDecision.Decision.APPROVE and not comment:
        raise WorkflowError(gettext("Say what needs to change: a comment is required."))
    with transaction.atomic():
        locked = _locked_draft(draft)
        if locked.state != State.IN_REVIEW:
            raise WorkflowError(
                gettext("Only drafts in review can be decided; this one is %(state)s.")
                % {"state": locked.get_state_display().lower()}
            )
        if locked.current_revision_id != revision_id:
            raise StaleRevision(gettext(
                "The text changed after you opened it; reload and review the new revision."
            ))
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
        if decision == ReviewDecision.Decision.APPROVE:
            locked.state = State.APPROVED
            locked.approved_revision = revision
            locked.approved_at = now
            locked.approved_by = user
            fields += ["approved_revision", "approved_at", "approved_by"]
            # The API's copy feed; its sequence lock is held only until this commit.
            _copy_feed_publish(draft=locked, revision=revision, approved_at=now)
        elif decision == ReviewDecision.Decision.REQUEST_CHANGES:
            locked.state = State.CHANGES_REQUESTED
        else:
            locked.state = State.REJECTED
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


# --- Generation jobs ----------------------------------------------------------------------------

def model_version_default() -> ModelVersion:
    version = ModelVersion.objects.filter(is_default=True, status=ModelVersion.Status.READY).first()
    if version is None:
        raise WorkflowError(gettext(
            "No default model is installed; run `python manage.py install_default_model`."
        ))
    return version


def _product_ids(products: Iterable[Product] | QuerySet) -> list[int]:
    if isinstance(products, QuerySet):
        return list(products.values_list("pk", flat=True))
    return [p.pk for p in products]


def _in_batches(values: Sequence, size: int = 5000):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _insert_rows(model, columns: Sequence[str], rows: Sequence[tuple], *,
                 ignore_conflicts: bool = False) -> None:
    """Multi-row INSERTs of ready database values, for the hundreds of thousands of rows of a
    catalog-sized job: ``bulk_create`` prepares every value of every model instance in Python,
    which costs tens of seconds at 100,000 drafts; this costs well under one.

    ``ignore_conflicts`` skips rows that break a unique constraint (SQLite >= 3.24, PostgreSQL).
    """
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    names = ", ".join(quote(meta.get_field(c).column) for c in columns)
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    max_params = connection.features.max_query_params or 30000
    per_statement = max(1, min(1000, max_params // len(columns)))
    suffix = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    if connection.vendor == "postgresql":
        # One array per column, sent in binary through psycopg's own (server-side binding)
        # cursor: a few parameters instead of one per value, and no quoting in Python.
        arrays = ", ".join(
            f"%b::{meta.get_field(c).cast_db_type(connection)}[]" for c in columns
        )
        connection.ensure_connection()
        with connection.connection.cursor() as cursor:
            for batch in _in_batches(rows, 20000):
                cursor.execute(
                    f"INSERT INTO {quote(meta.db_table)} ({names}) "
                    f"SELECT * FROM unnest({arrays}){suffix}",
                    [list(column) for column in zip(*batch, strict=True)],
                )
        return
    with connection.cursor() as cursor:
        for batch in _in_batches(rows, per_statement):
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES "
                f"{', '.join([placeholders] * len(batch))}{suffix}",
                [value for row in batch for value in row],
            )


def generation_job_request(
    *,
    products: Iterable[Product] | QuerySet,
    kinds: Sequence[str],
    params: dict,
    user,
    model_version: ModelVersion | None = None,
    enqueue: bool = True,
) -> GenerationJob:
    """Create a job with one item per product × kind and, unless ``enqueue`` is off (the
    caller runs it in-process), send its chunks to the workers after commit.

    Bulk work: a catalog of 100,000 products is a handful of batched inserts and one message per
    chunk (``COPYDESK_CHUNK_SIZE`` drafts), not a query or a message per draft.

    Raises ``generation.params.InvalidParams`` or ``WorkflowError`` before anything is written.
    """
    if user is not None:
        policies.require(policies.can_generate(user), "Only editors can request generation.")
    checked = GenerationParams.from_dict(params)
    kind_rows = list(ContentKind.objects.filter(code__in=kinds))
    unknown = sorted(set(kinds) - {k.code for k in kind_rows})
    if unknown or not kinds:
        known = ", ".join(ContentKind.objects.values_list("code", flat=True))
        raise WorkflowError(
            gettext("Unknown content kind(s): %(unknown)s; choose from %(known)s.")
            % {"unknown": ", ".join(unknown) or gettext("(none given)"), "known": known}
        )
    model_version = _ready_model_version(model_version)
    product_ids = _product_ids(products)
    if not product_ids:
        raise WorkflowError(gettext("No products selected."))

    with transaction.atomic():
        kind_codes = [k.code for k in kind_rows]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        # Drafts that exist already (another job made them) are kept as they are.
        _insert_rows(
            Draft, ["product", "kind", "state", "error", "created_at", "updated_at"],
            [(pid, code, State.GENERATING, "", now, now)
             for pid in product_ids for code in kind_codes],
            ignore_conflicts=True,
        )
        position = {k.code: k.position for k in kind_rows}
        draft_ids: list[int] = []
        for batch in _in_batches(product_ids):
            rows = Draft.objects.filter(product_id__in=batch, kind__in=kind_codes).values_list(
                "pk", "product_id", "kind_id"
            )
            draft_ids += [pk for pk, _, _ in sorted(rows, key=lambda r: (r[1], position[r[2]]))]
        job = _job_create(
            draft_ids=draft_ids, kinds=kind_codes, params=checked, user=user,
            model_version=model_version, enqueue=enqueue,
        )
    return job


def _ready_model_version(model_version: ModelVersion | None) -> ModelVersion:
    model_version = model_version or model_version_default()
    if model_version.status != ModelVersion.Status.READY:
        raise WorkflowError(gettext("Model version %(name)s is not ready.")
                            % {"name": model_version.name})
    return model_version


def _job_create(
    *,
    draft_ids: Sequence[int],
    kinds: Sequence[str],
    params: GenerationParams,
    user,
    model_version: ModelVersion,
    enqueue: bool,
    verb: str = "job.request",
    **audit_data,
) -> GenerationJob:
    """Call inside a transaction. The job, its items and chunks in bulk; drafts without text
    show as generating (drafts already being edited keep their state and simply receive more
    candidates); the chunks go to the workers after commit."""
    chunk_size = max(1, settings.COPYDESK_CHUNK_SIZE)
    job = GenerationJob.objects.create(
        requested_by=user if user is not None and user.is_authenticated else None,
        model_version=model_version,
        kinds=list(kinds),
        params=params.to_dict(),
        total=len(draft_ids),
    )
    for batch in _in_batches(draft_ids):
        Draft.objects.filter(pk__in=batch, current_revision__isnull=True).exclude(
            state=State.GENERATING, error=""
        ).update(state=State.GENERATING, error="")
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    _insert_rows(
        JobItem, ["job", "draft", "chunk", "status", "error", "attempts", "updated_at"],
        [(job.pk, draft_id, i // chunk_size, JobItem.Status.PENDING, "", 0, now)
         for i, draft_id in enumerate(draft_ids)],
    )
    chunks = (len(draft_ids) + chunk_size - 1) // chunk_size
    JobChunk.objects.bulk_create(
        [JobChunk(job=job, number=n, size=min(chunk_size, len(draft_ids) - n * chunk_size))
         for n in range(chunks)],
        batch_size=2000,
    )
    audit_log(actor=user, verb=verb, obj=job, total=job.total, kinds=job.kinds,
              model_version=model_version.name, **audit_data)
    if enqueue:
        transaction.on_commit(lambda: _enqueue_chunks(job.pk, list(range(chunks))))
    return job


def _enqueue_chunks(job_id: int, numbers: Sequence[int]) -> int:
    """Send chunks to the workers and stamp them as sent; returns how many were sent. A broker
    outage is recorded on the job (which stays queued) for ``resume_jobs`` to send later."""
    from generation.tasks import generate_chunk

    sent: list[int] = []
    try:
        for number in numbers:
            generate_chunk.delay(job_id, number)
            sent.append(number)
    except Exception as exc:  # the broker client raises many kinds
        # The job is committed; a broker outage must not turn the request into a 500.
        logger.exception("job %s: could not reach the broker", job_id)
        GenerationJob.objects.filter(pk=job_id).update(
            error=f"{GenerationJob.BROKER_DOWN} ({type(exc).__name__}); "
            "it has not been sent to a worker yet."
        )
    now = timezone.now()
    for batch in _in_batches(sent):
        JobChunk.objects.filter(job_id=job_id, number__in=batch).update(sent_at=now)
    if sent and len(sent) == len(numbers):
        GenerationJob.objects.filter(pk=job_id, error__startswith=GenerationJob.BROKER_DOWN).update(
            error=""
        )
    return len(sent)


def generation_job_cancel(*, job: GenerationJob, user) -> GenerationJob:
    """Cancel a job: chunks not started are skipped, and a chunk in flight stores nothing more
    (``generation_results_store`` checks the status under the job row lock)."""
    policies.require(policies.can_generate(user))
    with transaction.atomic():
        locked = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if locked.is_finished:
            return locked
        locked.status = GenerationJob.Status.CANCELLED
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "finished_at"])
        pending = JobItem.objects.filter(job=locked, status=JobItem.Status.PENDING)
        Draft.objects.filter(
            pk__in=pending.values("draft_id"), state=State.GENERATING
        ).update(state=State.FAILED, error=gettext_noop("Generation was cancelled."))
        audit_log(actor=user, verb="job.cancel", obj=locked)
    return locked


# --- One draft: retry and regenerate ------------------------------------------------------------

def draft_retry_generation(*, draft: Draft, user) -> GenerationJob:
    """Generate a failed draft again, alone: a one-draft job with the parameters and model of
    the job that failed (the default ones if that model is gone or there was no job)."""
    if user is not None:
        policies.require(policies.can_generate(user), "Only editors can request generation.")
    with transaction.atomic():
        locked = _locked_draft(draft)
        if locked.state != State.FAILED:
            raise WorkflowError(
                gettext("Only failed drafts can be retried; this one is %(state)s.")
                % {"state": locked.get_state_display().lower()}
            )
        last = selectors.draft_last_job(draft=locked)
        params = GenerationParams()
        model_version = None
        if last is not None:
            params = GenerationParams.from_dict(last.params)
            if last.model_version.status == ModelVersion.Status.READY:
                model_version = last.model_version
        job = _job_create(
            draft_ids=[locked.pk], kinds=[locked.kind_id], params=params, user=user,
            model_version=_ready_model_version(model_version), enqueue=True,
            verb="draft.retry_generation", draft=locked.pk,
        )
    draft.refresh_from_db()
    return job


def draft_regenerate(
    *, draft: Draft, user, params: dict, model_version: ModelVersion | None = None
) -> GenerationJob:
    """New candidates for one draft with other parameters or another model. The draft keeps its
    text and state; the candidates appear next to the old ones when the job is done.

    Raises ``InvalidParams`` or ``WorkflowError`` before anything is written."""
    policies.require(policies.can_generate(user), "Only editors can request generation.")
    checked = GenerationParams.from_dict(params)
    model_version = _ready_model_version(model_version)
    with transaction.atomic():
        locked = _locked_draft(draft)
        job = _job_create(
            draft_ids=[locked.pk], kinds=[locked.kind_id], params=checked, user=user,
            model_version=model_version, enqueue=True, verb="draft.regenerate", draft=locked.pk,
        )
    draft.refresh_from_db()
    return job


# --- Workers: chunks, heartbeats, results -------------------------------------------------------

@dataclass
class ChunkClaim:
    """A worker's hold on one chunk; ``token`` tells its heartbeats from a later claim's."""

    chunk_id: int
    job_id: int
    number: int
    token: str


def generation_chunk_claim(*, job_id: int, number: int, worker: str = "") -> ChunkClaim | None:
    """Start (or take over) a chunk. Returns None when it should be skipped: the job is finished
    or cancelled, the chunk is done, or another worker holds it with a fresh heartbeat."""
    now = timezone.now()
    stall = timedelta(seconds=settings.COPYDESK_CHUNK_STALL_SECONDS)
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job_id)
        if job.is_finished:
            return None
        chunk, _ = JobChunk.objects.select_for_update().get_or_create(job=job, number=number)
        if chunk.status == JobChunk.Status.DONE:
            return None
        if (chunk.status == JobChunk.Status.RUNNING and chunk.heartbeat_at
                and chunk.heartbeat_at > now - stall):
            return None
        if job.status == GenerationJob.Status.QUEUED:
            job.status = GenerationJob.Status.RUNNING
            job.started_at = now
            job.save(update_fields=["status", "started_at"])
        chunk.status = JobChunk.Status.RUNNING
        chunk.claim = uuid.uuid4().hex
        chunk.worker = worker[:200]
        chunk.claimed_at = chunk.heartbeat_at = now
        chunk.attempts += 1
        chunk.save(update_fields=["status", "claim", "worker", "claimed_at", "heartbeat_at",
                                  "attempts"])
    return ChunkClaim(chunk_id=chunk.pk, job_id=job_id, number=number, token=chunk.claim)


def generation_chunk_heartbeat(*, claim: ChunkClaim) -> bool:
    """Stamp the chunk as alive. False means stop: the job was cancelled or finished, or the
    sweeper gave the chunk to another worker."""
    beat = JobChunk.objects.filter(
        pk=claim.chunk_id, claim=claim.token, status=JobChunk.Status.RUNNING
    ).update(heartbeat_at=timezone.now())
    if not beat:
        return False
    return GenerationJob.objects.filter(
        pk=claim.job_id, status=GenerationJob.Status.RUNNING
    ).exists()


def generation_chunk_finish(*, claim: ChunkClaim) -> None:
    """Mark the chunk done once none of its items is pending (a stopped chunk stays running
    for the sweeper, unless its job is finished anyway)."""
    if JobItem.objects.filter(
        job_id=claim.job_id, chunk=claim.number, status=JobItem.Status.PENDING
    ).exists():
        return
    JobChunk.objects.filter(pk=claim.chunk_id).update(
        status=JobChunk.Status.DONE, finished_at=timezone.now()
    )


@dataclass
class ItemOutcome:
    """What the generation core produced for one job item, ready to store."""

    item_id: int
    messages: list[dict]
    texts: list[str]
    completion_tokens: list[int]
    prompt_tokens: int
    seconds: float
    seed: int
    error: str = ""
    examples: list[dict] = field(default_factory=list)
    # The facts of those examples' products: their names and values must not turn up in the
    # candidates (``check_text(examples=...)``).
    example_facts: list[ProductFacts] = field(default_factory=list)


def generation_results_store(*, job: GenerationJob, outcomes: Sequence[ItemOutcome]) -> int:
    """Store candidates for finished items and advance the job, in one transaction holding the
    job row lock; returns how many items it stored.

    A cancelled (or otherwise finished) job stores nothing. Idempotent: an item that is not
    pending any more is skipped, and the candidate unique constraint drops repeats, so a
    redelivered chunk writes nothing twice."""
    if not outcomes:
        return 0
    done = failed = tokens = 0
    seconds = 0.0
    with transaction.atomic():
        locked_job = GenerationJob.objects.select_for_update().get(pk=job.pk)
        if locked_job.is_finished:
            return 0
        items = {
            item.pk: item
            for item in JobItem.objects.select_for_update(of=("self",)).filter(
                pk__in=[o.item_id for o in outcomes], job=locked_job,
                status=JobItem.Status.PENDING,
            )
        }
        # One lock query, in primary key order, so two workers never wait on each other in a
        # circle.
        drafts = {
            d.pk: d
            for d in Draft.objects.select_for_update(of=("self",))
            .select_related("product__brand", "kind")
            .filter(pk__in=[i.draft_id for i in items.values()]).order_by("pk")
        }
        for outcome in outcomes:
            item = items.get(outcome.item_id)
            if item is None:
                continue
            draft = drafts[item.draft_id]
            item.attempts += 1
            if outcome.error or not outcome.texts:
                item.status = JobItem.Status.FAILED
                item.error = outcome.error or gettext_noop("The model returned no text.")
                item.save(update_fields=["status", "error", "attempts", "updated_at"])
                if draft.current_revision_id is None:
                    draft.state = State.FAILED
                    draft.error = item.error
                    draft.save(update_fields=["state", "error", "updated_at"])
                failed += 1
                continue
            _candidates_create(job=locked_job, draft=draft, outcome=outcome)
            item.status = JobItem.Status.DONE
            item.save(update_fields=["status", "attempts", "updated_at"])
            done += 1
            tokens += sum(outcome.completion_tokens)
            seconds += outcome.seconds
        if done or failed:
            GenerationJob.objects.filter(pk=locked_job.pk).update(
                done=F("done") + done,
                failed=F("failed") + failed,
                tokens_generated=F("tokens_generated") + tokens,
                generation_seconds=F("generation_seconds") + seconds,
            )
            generation_job_finish_if_complete(job_id=locked_job.pk)
    return done + failed


def _candidates_create(*, job: GenerationJob, draft: Draft, outcome: ItemOutcome) -> None:
    """Store the outcome's candidates, flagged, ranked and each judged usable; the draft's
    ``usable`` becomes its best candidate's. Call inside a transaction holding the draft row
    lock."""
    from generation.checks import is_usable

    facts = product_facts(draft.product)
    rules = brand_rules(draft.product.brand)
    spec = kind_spec(draft.kind)
    rows = []
    for index, (text, completion_tokens) in enumerate(
        zip(outcome.texts, outcome.completion_tokens, strict=True)
    ):
        flags = check_text(text, facts=facts, kind=spec, brand=rules,
                           examples=outcome.example_facts)
        rows.append(
            Candidate(
                draft=draft,
                job=job,
                index=index,
                text=text,
                prompt=outcome.messages,
                examples=outcome.examples,
                params=job.params,
                seed=outcome.seed,
                model_version_id=job.model_version_id,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=completion_tokens,
                generation_ms=int(outcome.seconds * 1000 / max(len(outcome.texts), 1)),
                flags=[f.to_dict() for f in flags],
                usable=is_usable(flags),
                score=rank_score(flags),
            )
        )
    # Best first: fewest and mildest flags, then the model's own order.
    for rank, row in enumerate(sorted(rows, key=lambda c: (-c.score, c.index))):
        row.rank = rank
        if rank == 0:
            draft.usable = row.usable
    Candidate.objects.bulk_create(rows, ignore_conflicts=True)
    if draft.current_revision_id is None:
        best = Candidate.objects.filter(draft=draft, job=job).order_by("rank").first()
        revision = _revision_create(
            draft=draft, text=best.text, author=None, parent=None, candidate=best
        )
        draft.current_revision = revision
    if draft.state in {State.GENERATING, State.FAILED}:
        draft.state = State.READY
        draft.error = ""
    draft.save(update_fields=["current_revision", "state", "error", "usable", "updated_at"])


def generation_job_finish_if_complete(*, job_id: int) -> None:
    with transaction.atomic():
        job = GenerationJob.objects.select_for_update().get(pk=job_id)
        if job.is_finished:
            return
        if JobItem.objects.filter(job=job, status=JobItem.Status.PENDING).exists():
            return
        if job.failed == 0:
            job.status = GenerationJob.Status.SUCCEEDED
        elif job.done == 0:
            job.status = GenerationJob.Status.FAILED
        else:
            job.status = GenerationJob.Status.PARTIAL
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
        JobChunk.objects.filter(job=job).exclude(status=JobChunk.Status.DONE).update(
            status=JobChunk.Status.DONE, finished_at=job.finished_at
        )
        audit_log(actor=None, verb="job.finish", obj=job, status=job.status, done=job.done,
                  failed=job.failed)


@dataclass
class ResumeReport:
    """What ``generation_jobs_resume`` did: chunks sent again (by job id), chunks given up
    (their items failed) and jobs closed."""

    stalled: dict[int, list[int]] = field(default_factory=dict)
    unsent: dict[int, list[int]] = field(default_factory=dict)
    lost: dict[int, list[int]] = field(default_factory=dict)
    runs: list[int] = field(default_factory=list)  # fine-tune runs sent again
    runs_failed: list[int] = field(default_factory=list)  # fine-tunes whose worker died
    given_up: int = 0
    finished: int = 0
    sent: int = 0

    def summary(self) -> str:
        stalled = sum(len(v) for v in self.stalled.values())
        unsent = sum(len(v) for v in self.unsent.values())
        lost = sum(len(v) for v in self.lost.values())
        return (f"{stalled} stalled, {unsent} unsent and {lost} lost chunk(s) sent again "
                f"({self.sent} messages), {self.given_up} chunk(s) given up, "
                f"{self.finished} job(s) closed, {len(self.runs)} fine-tune run(s) sent again, "
                f"{len(self.runs_failed)} failed (worker lost)")


def generation_jobs_resume(
    *, stall_seconds: float | None = None, unsent_grace_seconds: float = 60,
    lost_seconds: float | None = None, queue_depth=None, user=None,
) -> ResumeReport:
    """The sweeper (Celery beat and ``manage.py resume_jobs``): finds the work that no worker
    will do and sends it again.

    * a running chunk whose heartbeat is older than ``stall_seconds`` (default
      ``COPYDESK_CHUNK_STALL_SECONDS``): its worker died or was killed. After
      ``COPYDESK_CHUNK_MAX_ATTEMPTS`` claims its pending items fail instead (a chunk that kills
      every worker must not loop for ever);
    * a queued chunk never sent (the broker was down when the job was requested) whose job is
      older than ``unsent_grace_seconds``;
    * a queued chunk sent more than ``lost_seconds`` ago (default the stall time) while the
      broker's gpu queue is empty: its message was lost (a broker restarted without
      persistence). ``queue_depth`` (default ``generation.tasks.gpu_queue_depth``) asks the
      broker; while it cannot answer nothing is resent, and a long queue is never doubled;
    * a job left running with nothing pending is closed;
    * a fine-tune run still queued because the broker was down when it was requested (older
      than ``unsent_grace_seconds``), or whose message was lost (queued longer than
      ``lost_seconds`` while the gpu queue is empty), is sent again; a running one without a
      heartbeat for ``COPYDESK_FINETUNE_STALL_SECONDS`` is failed.

    Safe to run at any time and from several places: each chunk is taken back with a
    conditional update, and workers write idempotently."""
    stall = settings.COPYDESK_CHUNK_STALL_SECONDS if stall_seconds is None else stall_seconds
    now = timezone.now()
    report = ResumeReport()
    active = [GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING]
    stalled = JobChunk.objects.filter(
        status=JobChunk.Status.RUNNING, heartbeat_at__lt=now - timedelta(seconds=stall),
        job__status__in=active,
    ).values_list("pk", "job_id", "number", "attempts", "heartbeat_at")
    for chunk_id, job_id, number, attempts, heartbeat_at in stalled:
        if attempts >= settings.COPYDESK_CHUNK_MAX_ATTEMPTS:
            if _chunk_give_up(chunk_id=chunk_id, job_id=job_id, number=number,
                              attempts=attempts, heartbeat_at=heartbeat_at):
                report.given_up += 1
            continue
        taken = JobChunk.objects.filter(
            pk=chunk_id, status=JobChunk.Status.RUNNING, heartbeat_at=heartbeat_at
        ).update(status=JobChunk.Status.QUEUED, claim="", sent_at=None)
        if taken:
            report.stalled.setdefault(job_id, []).append(number)
    unsent = JobChunk.objects.filter(
        status=JobChunk.Status.QUEUED, sent_at__isnull=True, job__status__in=active,
        job__created_at__lt=now - timedelta(seconds=unsent_grace_seconds),
    ).values_list("job_id", "number")
    for job_id, number in unsent:
        if number not in report.stalled.get(job_id, ()):
            report.unsent.setdefault(job_id, []).append(number)
    lost = settings.COPYDESK_CHUNK_STALL_SECONDS if lost_seconds is None else lost_seconds
    waiting = list(JobChunk.objects.filter(
        status=JobChunk.Status.QUEUED, sent_at__lt=now - timedelta(seconds=lost),
        job__status__in=active,
    ).values_list("job_id", "number"))
    if queue_depth is None:
        from generation.tasks import gpu_queue_depth as queue_depth
    # Asked at most once, and only when something waits.
    broker_empty = functools.cache(lambda: queue_depth() == 0)
    if waiting and broker_empty():
        for job_id, number in waiting:
            report.lost.setdefault(job_id, []).append(number)
    for job_id in sorted(set(report.stalled) | set(report.unsent) | set(report.lost)):
        numbers = sorted(report.stalled.get(job_id, []) + report.unsent.get(job_id, [])
                         + report.lost.get(job_id, []))
        report.sent += _enqueue_chunks(job_id, numbers)
        audit_log(actor=user, verb="job.resume", obj=GenerationJob(pk=job_id),
                  stalled=report.stalled.get(job_id, []), unsent=report.unsent.get(job_id, []),
                  lost=report.lost.get(job_id, []))
    running = GenerationJob.objects.filter(status=GenerationJob.Status.RUNNING).exclude(
        pk__in=JobItem.objects.filter(status=JobItem.Status.PENDING).values("job_id")
    ).values_list("pk", flat=True)
    for job_id in running:
        generation_job_finish_if_complete(job_id=job_id)
        report.finished += 1
    report.runs = _finetune_runs_resume(
        unsent_before=now - timedelta(seconds=unsent_grace_seconds),
        lost_before=now - timedelta(seconds=lost), broker_empty=broker_empty,
    )
    report.runs_failed = _finetune_runs_fail_stalled(
        before=now - timedelta(seconds=settings.COPYDESK_FINETUNE_STALL_SECONDS))
    return report


def _finetune_runs_fail_stalled(*, before) -> list[int]:
    """Fail the running fine-tunes whose worker stopped beating before ``before``: the message
    a dead worker held finds the run claimed, so nobody would ever finish it."""
    from .models import FineTuneRun

    stalled = list(FineTuneRun.objects.filter(
        status=FineTuneRun.Status.RUNNING, heartbeat_at__lt=before,
    ).values_list("pk", "heartbeat_at"))
    failed = []
    for run_id, heartbeat_at in stalled:
        if FineTuneRun.objects.filter(
            pk=run_id, status=FineTuneRun.Status.RUNNING, heartbeat_at=heartbeat_at
        ).update(
            status=FineTuneRun.Status.FAILED, finished_at=timezone.now(),
            error=gettext_noop("The worker stopped while fine-tuning (killed, or out of memory); "
                               "no progress since then. Start the run again."),
        ):
            logger.warning("fine-tune run %s failed: no heartbeat since %s", run_id,
                           heartbeat_at)
            failed.append(run_id)
    return failed


def _finetune_runs_resume(*, unsent_before, lost_before, broker_empty) -> list[int]:
    """Fine-tune runs sent again: those the broker was down for, and those whose message it
    lost. A run's claim (``finetune_run_start``) takes it only once, so a second message for
    a run that did arrive does nothing."""
    from .models import FineTuneRun

    queued = FineTuneRun.objects.filter(status=FineTuneRun.Status.QUEUED)
    unsent = list(queued.filter(error__startswith=FineTuneRun.BROKER_DOWN,
                                created_at__lt=unsent_before).values_list("pk", flat=True))
    waiting = list(queued.filter(error="", created_at__lt=lost_before)
                   .values_list("pk", flat=True))
    lost = waiting if waiting and broker_empty() else []
    return [run_id for run_id in sorted(unsent + lost) if _enqueue_finetune(run_id)]


def _chunk_give_up(*, chunk_id: int, job_id: int, number: int, attempts: int, heartbeat_at
                   ) -> bool:
    """Fail the pending items of a chunk that stalled on every attempt."""
    taken = JobChunk.objects.filter(
        pk=chunk_id, status=JobChunk.Status.RUNNING, heartbeat_at=heartbeat_at
    ).update(status=JobChunk.Status.DONE, claim="", finished_at=timezone.now())
    if not taken:
        return False
    error = gettext_noop("A worker stopped each time it generated this chunk (out of memory, or "
                         "killed); it was given up.")
    pending = JobItem.objects.filter(job_id=job_id, chunk=number, status=JobItem.Status.PENDING)
    outcomes = [
        ItemOutcome(item_id=pk, messages=[], texts=[], completion_tokens=[], prompt_tokens=0,
                    seconds=0.0, seed=0, error=error)
        for pk in pending.values_list("pk", flat=True)
    ]
    generation_results_store(job=GenerationJob(pk=job_id), outcomes=outcomes)
    logger.warning("job %s chunk %s given up after %s attempts", job_id, number, attempts)
    return True


# --- Model versions -----------------------------------------------------------------------------

def model_version_register(
    *, name: str, path: str, source: str, make_default: bool = False, parent=None,
    params: dict | None = None, metrics: dict | None = None, user=None,
) -> ModelVersion:
    """Register (or update) a model version. The first version registered becomes the default."""
    if source not in ModelVersion.Source.values:
        raise WorkflowError(
            gettext("Unknown model source %(source)s; use one of %(sources)s.")
            % {"source": repr(source), "sources": ", ".join(ModelVersion.Source.values)}
        )
    with transaction.atomic():
        version, created = ModelVersion.objects.update_or_create(
            name=name,
            defaults={"path": path, "source": source, "status": ModelVersion.Status.READY,
                      "parent": parent, "params": params or {}, "metrics": metrics or {}},
        )
        others = ModelVersion.objects.filter(is_default=True).exclude(pk=version.pk)
        no_default = not others.exists()
        if make_default or no_default:
            ModelVersion.objects.filter(is_default=True).exclude(pk=version.pk).update(
                is_default=False
            )
            version.is_default = True
            version.save(update_fields=["is_default"])
        audit_log(actor=user, verb="model.register" if created else "model.update", obj=version,
                  path=path, source=source)
    return version


def model_version_make_default(*, version: ModelVersion, user=None) -> ModelVersion:
    """Make ``version`` the model new jobs generate with (one default at a time)."""
    if version.status != ModelVersion.Status.READY:
        raise WorkflowError(
            gettext("%(name)s is not ready (%(status)s); only a ready model can be the default.")
            % {"name": version.name, "status": version.get_status_display()}
        )
    with transaction.atomic():
        ModelVersion.objects.filter(is_default=True).exclude(pk=version.pk).update(
            is_default=False)
        version.is_default = True
        version.save(update_fields=["is_default"])
        audit_log(actor=user, verb="model.default", obj=version)
    return version


# --- API: tokens, bulk product upsert, copy feed ------------------------------------------------

def _api_token_hash(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, user, name: str, owner=None):
    """A new API token for ``owner`` (by default ``user``, who asks); returns ``(token, key)``.
    The key is not stored (only its hash), so this is the one time it can be shown.

    Only a superuser makes a token for someone else; the audit event names the superuser as the
    actor and the owner in its data."""
    import secrets

    from .models import ApiToken

    owner = user if owner is None else owner
    policies.require(policies.can_create_api_token(user, owner_id=owner.pk),
                     gettext("You can only create tokens for yourself."))
    name = (name or "").strip()
    if not name:
        raise WorkflowError(gettext("Give the token a name."))
    max_length = ApiToken._meta.get_field("name").max_length
    if len(name) > max_length:
        raise WorkflowError(gettext("The name is longer than %(limit)d characters.")
                            % {"limit": max_length})
    key = "cdk_" + secrets.token_urlsafe(30)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=owner, name=name, key_hash=_api_token_hash(key),
            prefix=key[:ApiToken.PREFIX_CHARS],
        )
        audit_log(actor=user, verb="api_token.create", obj=token, name=name,
                  owner=owner.get_username())
    return token, key


def api_token_revoke(*, token, user):
    """Revoke ``token``: its owner and admins may. Revoking twice is harmless (one audit
    event)."""
    from .models import ApiToken

    policies.require(policies.can_revoke_api_token(user, owner_id=token.user_id),
                     gettext("You can only revoke your own tokens."))
    now = timezone.now()
    with transaction.atomic():
        if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
            token.revoked_at = now
            audit_log(actor=user, verb="api_token.revoke", obj=token, name=token.name,
                      owner=token.user.get_username())
        else:
            token.refresh_from_db(fields=["revoked_at"])
    return token


def api_token_authenticate(*, key: str):
    """The active token whose key is ``key`` (with its user), or None. Stamps ``last_used_at``
    at most once a minute."""
    from .models import ApiToken

    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_api_token_hash(key), revoked_at__isnull=True).first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def _copy_feed_publish(*, draft: Draft, revision: Revision, approved_at) -> None:
    """Call inside the approving transaction, as late as possible: takes the next feed sequence
    number under the counter's row lock, which is held until the commit, so sequence order is
    commit order."""
    from .models import CopyFeedCounter, CopyFeedEntry

    counter = CopyFeedCounter.objects.select_for_update().filter(pk=1).first()
    if counter is None:
        counter, _ = CopyFeedCounter.objects.get_or_create(pk=1)
        counter = CopyFeedCounter.objects.select_for_update().get(pk=1)
    counter.last_seq += 1
    counter.save(update_fields=["last_seq"])
    CopyFeedEntry.objects.create(seq=counter.last_seq, draft=draft, revision=revision,
                                 approved_at=approved_at)


@dataclass
class UpsertItemError:
    index: int
    message: str
    field: str = ""
    sku: str = ""


@dataclass
class UpsertResult:
    """Per item of a bulk upsert: (index, sku) created or updated, or an error."""

    created: list[tuple[int, str]] = field(default_factory=list)
    updated: list[tuple[int, str]] = field(default_factory=list)
    errors: list[UpsertItemError] = field(default_factory=list)


def product_bulk_upsert(*, items: Sequence[dict], user,
                        errors: Sequence[UpsertItemError] = ()) -> UpsertResult:
    """Create or update products by SKU, with the catalog importer's rules and writer (each
    product written atomically; one that fails is reported, the others are kept).

    ``items`` are ``(index, fields)`` pairs already checked for types (the API's serializer):
    ``fields`` has ``sku`` and ``title`` and any of ``brand``, ``category``, ``locale``,
    ``description``, ``attributes``; a key that is absent leaves that field as it is (a new
    product gets no brand, no category, no description, no attributes and a detected locale).
    An empty ``brand``, ``category``, ``description`` or ``attributes`` clears it; a ``None``
    locale is detected again from the title and the description sent. An update never changes
    where the product came from: a Shopify product keeps its format and raw rows, so it stays
    in Shopify exports. ``errors`` are items refused before (they are reported with the
    rest)."""
    from .importers import ImportReport, RowError, _locale_for, _Record, _validate, _write

    policies.require(policies.can_import(user),
                     gettext("You do not have permission to import products."))
    result = UpsertResult(errors=list(errors))
    limit = int(getattr(settings, "COPYDESK_MAX_IMPORT_FIELD_CHARS", 20000))
    valid = []
    seen: dict[str, int] = {}
    for index, fields_ in items:
        record = _Record(
            line=index,
            sku=fields_["sku"],
            title=fields_["title"],
            brand=fields_.get("brand"),
            category=fields_.get("category"),
            locale=fields_.get("locale") or None,
            source_text=fields_.get("description"),
            attributes=(dict(fields_["attributes"] or {}) if "attributes" in fields_
                        else None),
            raw={"record": fields_.get("raw", fields_)},
            cells=[(name, value) for name, value in fields_.items() if isinstance(value, str)],
        )
        problem = _validate(record, limit=limit, brand_name=None)
        if problem is None and record.sku in seen:
            problem = RowError(index, f"duplicate sku {record.sku!r} (first at index "
                               f"{seen[record.sku]}); this item was skipped", field="sku")
        if problem is not None:
            result.errors.append(UpsertItemError(index=index, message=problem.message,
                                                 field=problem.field, sku=record.sku))
            continue
        seen[record.sku] = index
        valid.append((record, _locale_for(record, None) if "locale" in fields_ else None))
    existing = set()
    for batch in _in_batches(list(seen)):
        existing.update(Product.objects.filter(sku__in=batch).values_list("sku", flat=True))
    report = ImportReport()
    last = _write(valid, report=report, source_format=Product.SourceFormat.API, brand_name=None,
                  keep_origin=True)
    failed = {}
    for error in report.errors:
        failed[error.line] = error
    for record, _locale in valid:
        if record.line in failed:
            result.errors.append(UpsertItemError(index=record.line,
                                                 message=failed[record.line].message,
                                                 field=failed[record.line].field,
                                                 sku=record.sku))
        elif record.sku in existing:
            result.updated.append((record.line, record.sku))
        else:
            result.created.append((record.line, record.sku))
    result.errors.sort(key=lambda e: e.index)
    if last is not None:
        audit_log(actor=user, verb="catalog.api_upsert", obj=last, created=len(result.created),
                  updated=len(result.updated), failed=len(result.errors))
    return result



# --- Fine-tuning and A/B tests ------------------------------------------------------------------

def _require_admin(user) -> None:
    if user is not None:
        policies.require(policies.ADMIN in policies.user_roles(user),
                         "Only admins can fine-tune models.")


def finetune_run_request(
    *, base: ModelVersion, name: str, hyperparameters: dict, user, filters: dict | None = None,
    enqueue: bool = True,
):
    """Record a fine-tuning run of ``base`` into a new model version ``name`` and, unless
    ``enqueue`` is off (the caller runs it in-process), send it to a GPU worker after commit.

    ``name`` is also the folder the model is saved in, directly inside the model folder's
    ``finetuned``: one folder name of ASCII letters, digits, ``.``, ``-`` and ``_``, starting
    with a letter or digit. Raises ``WorkflowError`` before anything is written."""
    from generation.finetune import OUTPUT_NAME_MAX_LENGTH, FineTuneConfig, output_name_valid
    from generation.tasks import finetune_output_dir

    from .models import FineTuneRun

    _require_admin(user)
    name = (name or "").strip()
    if not name:
        raise WorkflowError(gettext("Name the new model version."))
    if not output_name_valid(name):
        raise WorkflowError(
            gettext("The name of the new model version, %(name)s, is also its folder name: use "
                    "only letters, digits, “.”, “-” and “_”, start with a letter or digit, at "
                    "most %(limit)d characters.")
            % {"name": repr(name), "limit": OUTPUT_NAME_MAX_LENGTH})
    try:
        finetune_output_dir(name)
    except ValueError as exc:
        raise WorkflowError(
            gettext("The name of the new model version, %(name)s, leads to a folder outside "
                    "the model folder (a link?).") % {"name": repr(name)}) from exc
    if ModelVersion.objects.filter(name=name).exists() or FineTuneRun.objects.filter(
        name=name
    ).exclude(status=FineTuneRun.Status.FAILED).exists():
        raise WorkflowError(gettext("A model version named %(name)s exists already.")
                            % {"name": repr(name)})
    if base.status != ModelVersion.Status.READY:
        raise WorkflowError(gettext("Model version %(name)s is not ready.")
                            % {"name": base.name})
    config = FineTuneConfig.from_dict(hyperparameters)
    if config.epochs < 1 or config.batch_size < 1 or config.grad_accum < 1 or config.lr <= 0:
        raise WorkflowError(gettext("Epochs, batch size and gradient accumulation must be at "
                                    "least 1, and the learning rate positive."))
    with transaction.atomic():
        run = FineTuneRun.objects.create(
            name=name, base=base, hyperparameters=config.to_dict(),
            filters={k: v for k, v in (filters or {}).items() if v},
            requested_by=user if user is not None and user.is_authenticated else None,
        )
        audit_log(actor=user, verb="finetune.request", obj=run, base=base.name, name=name)
        if enqueue:
            transaction.on_commit(lambda: _enqueue_finetune(run.pk))
    return run


def finetune_run_retry(*, run, user):
    """Start a failed run again: a new run of the same base, name, settings and filters (the
    failed one stays, with its error, for the record)."""
    from .models import FineTuneRun

    if run.status != FineTuneRun.Status.FAILED:
        raise WorkflowError(gettext("Only a failed run can be started again."))
    return finetune_run_request(base=run.base, name=run.name, user=user,
                                hyperparameters=run.hyperparameters, filters=run.filters)


def _enqueue_finetune(run_id: int) -> bool:
    from generation.tasks import finetune_model

    from .models import FineTuneRun

    try:
        finetune_model.delay(run_id)
    except Exception as exc:  # the broker client raises many kinds
        logger.exception("fine-tune run %s: could not reach the broker", run_id)
        FineTuneRun.objects.filter(pk=run_id).update(
            error=f"{FineTuneRun.BROKER_DOWN} ({type(exc).__name__})."
        )
        return False
    FineTuneRun.objects.filter(pk=run_id, status=FineTuneRun.Status.QUEUED,
                               error__startswith=FineTuneRun.BROKER_DOWN).update(error="")
    return True


def finetune_run_start(*, run_id: int):
    """Claim a queued run for this worker; None when it is not queued any more (a redelivered
    message, or another worker has it)."""
    from .models import FineTuneRun

    now = timezone.now()
    claimed = FineTuneRun.objects.filter(pk=run_id, status=FineTuneRun.Status.QUEUED).update(
        status=FineTuneRun.Status.RUNNING, started_at=now, heartbeat_at=now, error="",
        phase=FineTuneRun.Phase.PREPARING,
    )
    return FineTuneRun.objects.select_related("base").get(pk=run_id) if claimed else None


def finetune_run_progress(*, run_id: int, step: int, total_steps: int, loss: float) -> None:
    from .models import FineTuneRun

    run = FineTuneRun.objects.only("progress").get(pk=run_id)
    progress = list(run.progress) + [[step, round(float(loss), 5)]]
    FineTuneRun.objects.filter(pk=run_id).update(
        step=step, total_steps=total_steps, loss=float(loss), progress=progress,
        heartbeat_at=timezone.now(),
    )


def finetune_run_phase(*, run_id: int, phase: str) -> None:
    """Record what the running run is doing now; this also beats its heartbeat, so a long
    evaluation is not mistaken for a dead worker."""
    from .models import FineTuneRun

    FineTuneRun.objects.filter(pk=run_id, status=FineTuneRun.Status.RUNNING).update(
        phase=FineTuneRun.Phase(phase), heartbeat_at=timezone.now(),
    )


def finetune_run_data(*, run) -> tuple:
    """The run's training data: (train records, validation records, snapshot hash)."""
    from . import training_data

    # A base model is fine-tuned on the completion documents it generates from.
    prompt_format = run.base.prompt_format
    examples = training_data.training_examples(
        brand=run.filters.get("brand"), kind=run.filters.get("kind"), prompt_format=prompt_format,
    )
    train = training_data.build_dataset(examples, split=training_data.TRAIN,
                                        prompt_format=prompt_format)
    validation = training_data.build_dataset(examples, split=training_data.VALIDATION,
                                             prompt_format=prompt_format)
    every = training_data.build_dataset(examples, split=training_data.ALL,
                                        prompt_format=prompt_format)
    return train.records, validation.records, every.snapshot_hash


def finetune_run_finish(*, run_id: int, output_dir: str, metrics: dict, data_hash: str,
                        train_records: int, validation_records: int) -> ModelVersion:
    """Register the fine-tuned model as a ready model version (usable for generation at once)
    and close the run."""
    from .models import FineTuneRun

    with transaction.atomic():
        run = FineTuneRun.objects.select_for_update().select_related("base").get(pk=run_id)
        version = model_version_register(
            name=run.name, path=output_dir, source=ModelVersion.Source.FINETUNED,
            parent=run.base, params=run.hyperparameters, metrics=metrics,
            user=run.requested_by,
        )
        version.data_hash = data_hash
        # Trained on its base's prompt format, it generates with it too.
        version.prompt_format = run.base.prompt_format
        version.save(update_fields=["data_hash", "prompt_format"])
        run.status = FineTuneRun.Status.SUCCEEDED
        run.result = version
        run.metrics = metrics
        run.data_hash = data_hash
        run.output_path = output_dir
        run.train_records = train_records
        run.validation_records = validation_records
        run.finished_at = timezone.now()
        run.save()
        audit_log(actor=None, verb="finetune.finish", obj=run, model_version=version.name,
                  metrics=metrics)
    return version


def finetune_run_fail(*, run_id: int, error: str) -> None:
    from .models import FineTuneRun

    FineTuneRun.objects.filter(pk=run_id).update(
        status=FineTuneRun.Status.FAILED, error=error[:4000], finished_at=timezone.now()
    )


def ab_assign(*, keys: Sequence[str], seed: int) -> dict[str, str]:
    """Arm ``"a"`` or ``"b"`` per key (SKU): a shuffle by ``seed`` of the sorted keys, the first
    half to A — random, reproducible, and as balanced as the count allows."""
    import random

    ordered = sorted(set(keys))
    random.Random(seed).shuffle(ordered)
    half = (len(ordered) + 1) // 2
    return {key: ("a" if i < half else "b") for i, key in enumerate(ordered)}


def ab_test_request(
    *, products: Iterable[Product] | QuerySet, kinds: Sequence[str], params: dict, user,
    model_a: ModelVersion, model_b: ModelVersion, seed: int = 0, name: str = "",
    enqueue: bool = True,
):
    """Split ``products`` at random (reproducibly, by ``seed``) between two model versions: one
    generation job per arm, linked by an ``ABTest`` the dashboard compares."""
    from .models import ABTest

    if model_a.pk == model_b.pk:
        raise WorkflowError(gettext("An A/B test needs two different model versions."))
    rows = list(Product.objects.filter(pk__in=_product_ids(products)).values_list("pk", "sku"))
    if len(rows) < 2:
        raise WorkflowError(gettext("An A/B test needs at least two products."))
    arms = ab_assign(keys=[sku for _, sku in rows], seed=seed)
    with transaction.atomic():
        test = ABTest.objects.create(
            name=name, model_a=model_a, model_b=model_b, seed=seed, kinds=list(kinds),
            requested_by=user if user is not None and user.is_authenticated else None,
        )
        for arm, version in (("a", model_a), ("b", model_b)):
            job = generation_job_request(
                products=[Product(pk=pk) for pk, sku in rows if arms[sku] == arm],
                kinds=kinds, params=params, user=user, model_version=version,
                enqueue=enqueue,
            )
            GenerationJob.objects.filter(pk=job.pk).update(ab_test=test, ab_arm=arm)
        audit_log(actor=user, verb="abtest.request", obj=test, model_a=model_a.name,
                  model_b=model_b.name, seed=seed)
    return test
