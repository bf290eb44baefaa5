"""Writes. Views, commands, admin actions and Celery tasks all call these, so each workflow rule
lives here once: permission and validation first, then the write, side effects after commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from generation.checks import check_text, rank_score
from generation.params import GenerationParams

from . import policies
from .audit import audit_log
from .facts import brand_rules, kind_spec, product_facts
from .models import (
    Candidate,
    ContentKind,
    Draft,
    GenerationJob,
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
            f"Someone else saved revision {current.number} while you were editing. "
            f"Your text was kept as revision {revision.number}."
        )
        self.current = current
        self.revision = revision


class StaleRevision(WorkflowError):
    """A review decision was made on a revision that is no longer the draft's current one."""


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
        raise WorkflowError("The text is empty; nothing was saved.")
    conflict = None
    with transaction.atomic():
        locked = _locked_draft(draft)
        if locked.state == State.GENERATING:
            raise WorkflowError("This draft is still being generated.")
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


def candidate_choose(*, draft: Draft, candidate: Candidate, user, base_revision_id: int | None
                     ) -> Revision:
    """Start editing from another model candidate: its text becomes a new revision."""
    if candidate.draft_id != draft.pk:
        raise WorkflowError("That candidate belongs to another draft.")
    return revision_save(
        draft=draft, user=user, text=candidate.text, base_revision_id=base_revision_id,
        candidate=candidate,
    )


def draft_claim(*, draft: Draft, user) -> Draft:
    policies.require(policies.can_edit(user), "Only editors can claim drafts.")
    with transaction.atomic():
        locked = _locked_draft(draft)
        if locked.state in {State.GENERATING, State.FAILED}:
            raise WorkflowError("A draft without generated text cannot be claimed yet.")
        locked.assignee = user
        if locked.state in {State.READY, State.CHANGES_REQUESTED}:
            locked.state = State.IN_EDIT
        locked.save(update_fields=["assignee", "state", "updated_at"])
        audit_log(actor=user, verb="draft.claim", obj=locked)
    return locked


def draft_submit(*, draft: Draft, user) -> Draft:
    policies.require(policies.can_edit(user), "Only editors can submit drafts.")
    with transaction.atomic():
        locked = _locked_draft(draft)
        if locked.state not in {State.READY, State.IN_EDIT, State.CHANGES_REQUESTED}:
            raise WorkflowError(
                f"A draft that is {locked.get_state_display().lower()} cannot be submitted."
            )
        if locked.current_revision_id is None:
            raise WorkflowError("There is no text to submit.")
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
        raise WorkflowError("Say what needs to change: a comment is required.")
    with transaction.atomic():
        locked = _locked_draft(draft)
        if locked.state != State.IN_REVIEW:
            raise WorkflowError(
                f"Only drafts in review can be decided; this one is "
                f"{locked.get_state_display().lower()}."
            )
        if locked.current_revision_id != revision_id:
            raise StaleRevision(
                "The text changed after you opened it; reload and review the new revision."
            )
        revision = locked.current_revision
        if (
            decision == ReviewDecision.Decision.APPROVE
            and settings.COPYDESK_FOUR_EYES
            and revision.author_id == user.pk
        ):
            raise WorkflowError("Four-eyes rule: someone else must approve your own revision.")
        try:
            with transaction.atomic():
                ReviewDecision.objects.create(
                    draft=locked, revision=revision, reviewer=user, decision=decision,
                    comment=comment,
                )
        except IntegrityError as exc:
            raise WorkflowError("This revision has already been approved.") from exc
        now = timezone.now()
        fields = ["state", "updated_at"]
        if decision == ReviewDecision.Decision.APPROVE:
            locked.state = State.APPROVED
            locked.approved_revision = revision
            locked.approved_at = now
            locked.approved_by = user
            fields += ["approved_revision", "approved_at", "approved_by"]
        elif decision == ReviewDecision.Decision.REQUEST_CHANGES:
            locked.state = State.CHANGES_REQUESTED
        else:
            locked.state = State.REJECTED
        locked.save(update_fields=fields)
        audit_log(actor=user, verb=f"draft.{decision}", obj=locked, revision=revision.pk,
                  comment=comment)
    return locked


def draft_approve(*, draft: Draft, user, revision_id: int, comment: str = "") -> Draft:
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
        raise WorkflowError(
            "No default model is installed; run `python manage.py install_default_model`."
        )
    return version


def generation_job_request(
    *,
    products: Iterable[Product],
    kinds: Sequence[str],
    params: dict,
    user,
    model_version: ModelVersion | None = None,
    enqueue: bool = True,
) -> GenerationJob:
    """Create a job with one item per product × kind and, unless ``enqueue`` is off (the
    caller runs it in-process), send its chunks to the workers after commit.

    Raises ``generation.params.InvalidParams`` or ``WorkflowError`` before anything is written.
    """
    if user is not None:
        policies.require(policies.can_generate(user), "Only editors can request generation.")
    checked = GenerationParams.from_dict(params)
    kind_rows = list(ContentKind.objects.filter(code__in=kinds))
    unknown = sorted(set(kinds) - {k.code for k in kind_rows})
    if unknown or not kinds:
        known = ", ".join(ContentKind.objects.values_list("code", flat=True))
        raise WorkflowError(f"Unknown content kind(s): {', '.join(unknown) or '(none given)'}; "
                            f"choose from {known}.")
    model_version = model_version or model_version_default()
    if model_version.status != ModelVersion.Status.READY:
        raise WorkflowError(f"Model version {model_version.name} is not ready.")
    product_ids = [p.pk for p in products]
    if not product_ids:
        raise WorkflowError("No products selected.")

    chunk_size = settings.COPYDESK_CHUNK_SIZE
    with transaction.atomic():
        job = GenerationJob.objects.create(
            requested_by=user if user is not None and user.is_authenticated else None,
            model_version=model_version,
            kinds=[k.code for k in kind_rows],
            params=checked.to_dict(),
        )
        Draft.objects.bulk_create(
            [Draft(product_id=pid, kind=kind) for pid in product_ids for kind in kind_rows],
            ignore_conflicts=True,
        )
        drafts = list(
            Draft.objects.filter(product_id__in=product_ids, kind__in=kind_rows)
            .order_by("product_id", "kind__position").values_list("pk", flat=True)
        )
        # Drafts with no text yet show as generating; drafts already being edited keep their
        # state and simply receive more candidates.
        Draft.objects.filter(pk__in=drafts, current_revision__isnull=True).update(
            state=State.GENERATING, error=""
        )
        JobItem.objects.bulk_create(
            [JobItem(job=job, draft_id=draft_id, chunk=i // chunk_size)
             for i, draft_id in enumerate(drafts)],
            batch_size=2000,
        )
        job.total = len(drafts)
        job.save(update_fields=["total"])
        audit_log(actor=user, verb="job.request", obj=job, total=job.total, kinds=job.kinds,
                  model_version=model_version.name)
        chunks = (len(drafts) + chunk_size - 1) // chunk_size
        if enqueue:
            transaction.on_commit(lambda: _enqueue_chunks(job.pk, chunks))
    return job


def _enqueue_chunks(job_id: int, chunks: int) -> None:
    from generation.tasks import generate_chunk

    try:
        for chunk in range(chunks):
            generate_chunk.delay(job_id, chunk)
    except Exception as exc:  # the broker client raises many kinds
        # The job is committed; a broker outage must not turn the request into a 500.
        logger.exception("job %s: could not reach the broker", job_id)
        GenerationJob.objects.filter(pk=job_id).update(
            error=f"Queued, but the broker is unavailable ({type(exc).__name__}); "
            "it has not been sent to a worker yet."
        )


def generation_job_cancel(*, job: GenerationJob, user) -> GenerationJob:
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
        ).update(state=State.FAILED, error="Generation was cancelled.")
        audit_log(actor=user, verb="job.cancel", obj=locked)
    return locked


def generation_job_mark_running(*, job_id: int) -> bool:
    """Returns False when the job is finished or cancelled and the chunk should be skipped."""
    updated = GenerationJob.objects.filter(pk=job_id, status=GenerationJob.Status.QUEUED).update(
        status=GenerationJob.Status.RUNNING, started_at=timezone.now()
    )
    if updated:
        return True
    return GenerationJob.objects.filter(pk=job_id, status=GenerationJob.Status.RUNNING).exists()


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


def generation_results_store(*, job: GenerationJob, outcomes: Sequence[ItemOutcome]) -> None:
    """Store candidates for finished items and advance the job. Idempotent: an item that is
    already done is skipped, and the candidate unique constraint drops repeats, so a redelivered
    chunk writes nothing twice."""
    done = failed = tokens = 0
    seconds = 0.0
    for outcome in outcomes:
        with transaction.atomic():
            item = (
                JobItem.objects.select_for_update(of=("self",))
                .select_related("draft__product__brand", "draft__kind")
                .filter(pk=outcome.item_id, status=JobItem.Status.PENDING)
                .first()
            )
            if item is None:
                continue
            draft = _locked_draft(item.draft)
            if outcome.error or not outcome.texts:
                item.status = JobItem.Status.FAILED
                item.error = outcome.error or "The model returned no text."
                item.attempts += 1
                item.save(update_fields=["status", "error", "attempts", "updated_at"])
                if draft.current_revision_id is None:
                    draft.state = State.FAILED
                    draft.error = item.error
                    draft.save(update_fields=["state", "error", "updated_at"])
                failed += 1
                continue
            _candidates_create(job=job, draft=draft, outcome=outcome)
            item.status = JobItem.Status.DONE
            item.attempts += 1
            item.save(update_fields=["status", "attempts", "updated_at"])
            done += 1
            tokens += sum(outcome.completion_tokens)
            seconds += outcome.seconds
    if done or failed:
        GenerationJob.objects.filter(pk=job.pk).update(
            done=F("done") + done,
            failed=F("failed") + failed,
            tokens_generated=F("tokens_generated") + tokens,
            generation_seconds=F("generation_seconds") + seconds,
        )
    generation_job_finish_if_complete(job_id=job.pk)


def _candidates_create(*, job: GenerationJob, draft: Draft, outcome: ItemOutcome) -> None:
    """Call inside a transaction holding the draft row lock."""
    facts = product_facts(draft.product)
    rules = brand_rules(draft.product.brand)
    spec = kind_spec(draft.kind)
    rows = []
    for index, (text, completion_tokens) in enumerate(
        zip(outcome.texts, outcome.completion_tokens, strict=True)
    ):
        flags = check_text(text, facts=facts, kind=spec, brand=rules)
        rows.append(
            Candidate(
                draft=draft,
                job=job,
                index=index,
                text=text,
                prompt=outcome.messages,
                params=job.params,
                seed=outcome.seed,
                model_version_id=job.model_version_id,
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=completion_tokens,
                generation_ms=int(outcome.seconds * 1000 / max(len(outcome.texts), 1)),
                flags=[flag_to_dict(f) for f in flags],
                score=rank_score(flags),
            )
        )
    # Best first: fewest and mildest flags, then the model's own order.
    for rank, row in enumerate(sorted(rows, key=lambda c: (-c.score, c.index))):
        row.rank = rank
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
    draft.save(update_fields=["current_revision", "state", "error", "updated_at"])


def flag_to_dict(flag) -> dict:
    return {
        "code": flag.code,
        "severity": flag.severity,
        "message": flag.message,
        "start": flag.start,
        "end": flag.end,
    }


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
        audit_log(actor=None, verb="job.finish", obj=job, status=job.status, done=job.done,
                  failed=job.failed)


# --- Model versions -----------------------------------------------------------------------------

def model_version_register(
    *, name: str, path: str, source: str, make_default: bool = False, parent=None,
    params: dict | None = None, metrics: dict | None = None, user=None,
) -> ModelVersion:
    """Register (or update) a model version. The first version registered becomes the default."""
    if source not in ModelVersion.Source.values:
        raise WorkflowError(f"Unknown model source {source!r}; use one of "
                            f"{', '.join(ModelVersion.Source.values)}.")
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
