"""A product's copy of one kind and its history: candidates, revisions, reviews, comments,
presence, and the audit trail."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .catalog import ContentKind, Product
from .generation import GenerationJob, ModelVersion


class Draft(models.Model):
    class State(models.TextChoices):
        GENERATING = "generating", _("Generating")
        READY = "ready", _("Ready for edit")
        IN_EDIT = "in_edit", _("In edit")
        IN_REVIEW = "in_review", _("In review")
        CHANGES_REQUESTED = "changes_requested", _("Changes requested")
        APPROVED = "approved", _("Approved")
        EXPORTED = "exported", _("Exported")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")

    EDITABLE = {State.READY, State.IN_EDIT, State.CHANGES_REQUESTED, State.APPROVED,
                State.EXPORTED, State.REJECTED}

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="drafts")
    kind = models.ForeignKey(ContentKind, on_delete=models.PROTECT, related_name="drafts")
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.GENERATING, db_index=True
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="assigned_drafts",
    )
    # RESTRICT: a revision a draft points at cannot be deleted on its own, but deleting the
    # draft (or its product) deletes its revisions with it. SET_NULL made that deletion first
    # blank approved_revision on an approved draft, which the check constraint below refuses.
    current_revision = models.ForeignKey(
        "Revision", null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    approved_revision = models.ForeignKey(
        "Revision", null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    exported_revision = models.ForeignKey(
        "Revision", null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    error = models.TextField(blank=True)
    # Whether the best candidate of the draft's latest generation is worth editing (in the
    # product's language, grounded, no error flag); None until a generation stored candidates.
    usable = models.BooleanField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["product__sku", "kind__position"]
        constraints = [
            models.UniqueConstraint(fields=["product", "kind"], name="one_draft_per_product_kind"),
            models.CheckConstraint(
                condition=(
                    ~Q(state__in=["approved", "exported"]) | Q(approved_revision__isnull=False)
                ),
                name="approved_draft_has_pinned_revision",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} · {self.kind_id}"

    def get_state_display(self):
        # Django's version rebuilds a dict of every choice per call: ~70 µs, on each queue row.
        return self.State(self.state).label



class Candidate(models.Model):
    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="candidates")
    job = models.ForeignKey(
        GenerationJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="candidates"
    )
    index = models.PositiveSmallIntegerField()
    text = models.TextField()
    # The exact prompt the model was given: chat messages, or for a base model one
    # ``{"role": "completion", "content": document}`` entry.
    prompt = models.JSONField(default=list)
    # The approved copy the prompt showed as examples: ``{"draft": id, "revision": id}`` for the
    # shop's own approvals, ``{"house": key}`` for the demo brands' house examples.
    examples = models.JSONField(default=list, blank=True)
    params = models.JSONField(default=dict)
    seed = models.BigIntegerField(null=True, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="candidates"
    )
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    generation_ms = models.PositiveIntegerField(default=0)
    flags = models.JSONField(default=list, blank=True)
    usable = models.BooleanField(null=True, blank=True)
    score = models.FloatField(default=0)
    rank = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["draft", "rank", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["draft", "job", "index"], name="one_candidate_per_draft_job_index"
            )
        ]

    def __str__(self) -> str:
        return f"Candidate {self.index} of {self.draft}"



class Revision(models.Model):
    """An immutable snapshot of a draft's text. ``author`` is empty for the model's starting
    point."""

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    text = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="revisions",
    )
    candidate = models.ForeignKey(
        Candidate, null=True, blank=True, on_delete=models.SET_NULL, related_name="revisions"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["draft", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["draft", "number"], name="revision_number_per_draft")
        ]

    def __str__(self) -> str:
        return f"{self.draft} r{self.number}"

    @property
    def author_name(self) -> str:
        return self.author.get_username() if self.author_id else "model"



class ReviewDecision(models.Model):
    class Decision(models.TextChoices):
        APPROVE = "approve", _("Approve")
        REQUEST_CHANGES = "request_changes", _("Request changes")
        REJECT = "reject", _("Reject")

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="decisions")
    revision = models.ForeignKey(Revision, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    decision = models.CharField(max_length=20, choices=Decision.choices, db_index=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["revision"], condition=Q(decision="approve"),
                name="one_approval_per_revision",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_decision_display()} {self.revision}"



class DraftComment(models.Model):
    """A note on a draft by an editor or reviewer; shown in the draft's discussion thread
    together with the review decisions."""

    MAX_LENGTH = 5000

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
        related_name="draft_comments",
    )
    text = models.TextField(max_length=MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["draft", "created_at", "pk"]
        indexes = [models.Index(fields=["draft", "created_at"])]

    def __str__(self) -> str:
        return f"Comment by {self.author_name} on {self.draft_id}"

    @property
    def author_name(self) -> str:
        return self.author.get_username() if self.author_id else "—"



class DraftPresence(models.Model):
    """Who has a draft's page open: the page beats every ``POLL_SECONDS``; a row seen within
    ``WINDOW_SECONDS`` means "is here". In the database, so every web process sees it.

    ``since`` is when the current visit began (a beat after a gap longer than the window starts
    a new visit); ``last_seen`` is written at most every ``WRITE_SECONDS``."""

    POLL_SECONDS = 15
    WINDOW_SECONDS = 45
    WRITE_SECONDS = 10

    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="presences")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="draft_presences"
    )
    since = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["draft", "since", "pk"]
        verbose_name_plural = "draft presences"
        constraints = [
            models.UniqueConstraint(fields=["draft", "user"], name="one_presence_per_draft_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} on draft {self.draft_id}"



class AuditEvent(models.Model):
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    verb = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=60)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.verb} {self.object_type}:{self.object_id}"

