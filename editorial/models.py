from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Locale(models.TextChoices):
    EN = "en", _("English")
    ZH_HANS = "zh-hans", _("Chinese (Simplified)")


class Brand(models.Model):
    name = models.CharField(max_length=200, unique=True)
    voice = models.TextField(blank=True, help_text=_("How the brand sounds, in a few sentences."))
    audience = models.CharField(max_length=300, blank=True)
    locale = models.CharField(max_length=10, choices=Locale.choices, default=Locale.EN)
    banned_terms = models.JSONField(default=list, blank=True)
    required_terms = models.JSONField(default=list, blank=True)
    # {"description": 600, "title": 70, ...}: maximum characters per content kind code.
    length_limits = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ContentKind(models.Model):
    """What a draft is: description, title, bullets ... Admins can add their own kinds."""

    code = models.SlugField(max_length=40, primary_key=True)
    label = models.CharField(max_length=100)
    instructions = models.TextField(
        help_text=_("The task given to the model for this kind (English; the prompt adds the "
                    "output language).")
    )
    max_chars = models.PositiveIntegerField(default=1000)
    max_new_tokens = models.PositiveIntegerField(default=200)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return str(self.display_label)

    @property
    def display_label(self):
        """The label in the reader's language: a kind the desk ships with is translated while
        its label is the shipped one; an admin's own kind, or a renamed one, shows as stored."""
        shipped = SHIPPED_KIND_LABELS.get(self.code)
        if shipped is not None and shipped[0] == self.label:
            return shipped[1]
        return self.label


# The labels migration 0002 seeds, each with its translation. The English is spelled twice
# because makemessages only finds literal strings in the translation call.
SHIPPED_KIND_LABELS = {
    "description": ("Description", pgettext_lazy("content kind", "Description")),
    "title": ("Title", pgettext_lazy("content kind", "Title")),
    "bullets": ("Bullet points", pgettext_lazy("content kind", "Bullet points")),
    "slogan": ("Slogan / ad line", pgettext_lazy("content kind", "Slogan / ad line")),
    "faq": ("FAQ", pgettext_lazy("content kind", "FAQ")),
    "seo_title": ("SEO title", pgettext_lazy("content kind", "SEO title")),
    "seo_description": ("SEO meta description",
                        pgettext_lazy("content kind", "SEO meta description")),
}


class Product(models.Model):
    class SourceFormat(models.TextChoices):
        CSV = "csv", "CSV"
        SHOPIFY = "shopify", "Shopify CSV"
        JSONL = "jsonl", "JSON Lines"
        API = "api", "API"
        MANUAL = "manual", _("Manual")

    sku = models.CharField(max_length=255, unique=True, verbose_name="SKU / handle")
    title = models.CharField(max_length=500)
    brand = models.ForeignKey(
        Brand, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    category = models.CharField(max_length=200, blank=True, db_index=True)
    attributes = models.JSONField(default=dict, blank=True)
    source_text = models.TextField(blank=True)
    locale = models.CharField(max_length=10, choices=Locale.choices, default=Locale.EN)
    source_format = models.CharField(
        max_length=10, choices=SourceFormat.choices, default=SourceFormat.MANUAL
    )
    # What the shop sent, so an export can hand it back unchanged but for the new copy:
    # {"columns": [...], "rows": [[...], ...]}. Lists, because jsonb does not keep key order.
    raw = models.JSONField(default=dict, blank=True)
    # The catalog file that last wrote this product (and its raw row); None for products made
    # by hand, through the API, or imported before imports were recorded.
    catalog_import = models.ForeignKey(
        "CatalogImport", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="products", verbose_name=_("import"),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} — {self.title}"


class CatalogImport(models.Model):
    """One catalog file imported: its name, format and column row, who and when. An export can
    take the products of one import, and a Shopify export names its files after them."""

    filename = models.CharField(max_length=255)
    format = models.CharField(max_length=10, choices=Product.SourceFormat.choices)
    # The file's column row (CSV and Shopify), as sent; [] for JSON Lines.
    columns = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        when = timezone.localtime(self.created_at).strftime("%Y-%m-%d %H:%M")
        return f"{self.filename} ({when})"


class ModelVersion(models.Model):
    class Source(models.TextChoices):
        PACKAGED = "packaged", _("Packaged")
        HUB = "hub", _("Hub")
        LOCAL = "local", _("Local path")
        FINETUNED = "finetuned", _("Fine-tuned")

    class Status(models.TextChoices):
        INSTALLING = "installing", _("Installing")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")
        RETIRED = "retired", _("Retired")

    name = models.CharField(max_length=200, unique=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    # A hub id or a directory; what transformers' from_pretrained is given.
    path = models.CharField(max_length=1000)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.READY, db_index=True
    )
    class PromptFormat(models.TextChoices):
        CHAT = "chat", _("Chat messages (instruct model)")
        COMPLETION = "completion", _("Completion document (base model)")

    is_default = models.BooleanField(default=False)
    # Instruct models take chat messages through their chat template; base models have none and
    # continue a document of examples instead. Detected from the tokenizer when registered.
    prompt_format = models.CharField(
        max_length=12, choices=PromptFormat.choices, default=PromptFormat.CHAT
    )
    params = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # Fine-tuned versions: SHA-256 of the training data JSONL they were trained on.
    data_hash = models.CharField(max_length=64, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_model"
            )
        ]

    def __str__(self) -> str:
        return self.name


class WorkerRun(models.Model):
    """What a job run by the workers keeps besides its own fields: why it failed, when it was
    requested, started and finished. Subclasses define ``Status`` and the ``FINISHED`` set."""

    FINISHED: set = set()
    # How ``error`` starts while the run waits for the broker (cleared once it is sent).
    BROKER_DOWN = "Queued, but the broker is unavailable"

    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def awaiting_broker(self) -> bool:
        return self.status == self.Status.QUEUED and self.error.startswith(self.BROKER_DOWN)


class GenerationJob(WorkerRun):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        PARTIAL = "partial", _("Finished with failures")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    FINISHED = {Status.SUCCEEDED, Status.PARTIAL, Status.FAILED, Status.CANCELLED}

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="jobs")
    kinds = models.JSONField(default=list)
    # temperature, top_k, top_p, max_new_tokens, candidates, seed, ... as validated by
    # generation.params.GenerationParams.
    params = models.JSONField(default=dict)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    tokens_generated = models.PositiveBigIntegerField(default=0)
    generation_seconds = models.FloatField(default=0)
    # One arm of an A/B test: the test's products were split between two jobs.
    ab_test = models.ForeignKey(
        "ABTest", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    ab_arm = models.CharField(max_length=1, blank=True)

    def __str__(self) -> str:
        return f"Job #{self.pk}"

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.is_finished else 0
        return int(100 * (self.done + self.failed) / self.total)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_generated / self.generation_seconds if self.generation_seconds else 0.0

    def eta_seconds(self, now=None) -> float | None:
        """Seconds until every item is handled at the rate seen since the job started (wall
        clock, so it counts every worker); None before the first item or once finished."""
        handled = self.done + self.failed
        if self.is_finished or not self.started_at or not handled:
            return None
        elapsed = ((now or timezone.now()) - self.started_at).total_seconds()
        if elapsed <= 0:
            return None
        return max(self.total - handled, 0) * elapsed / handled

    @property
    def eta_at(self):
        """When the job should be done at the current rate (None: not known yet)."""
        seconds = self.eta_seconds()
        return None if seconds is None else timezone.now() + timedelta(seconds=round(seconds))


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


class JobItem(models.Model):
    """One draft's share of a job; what chunks are made of, and what makes redelivery harmless."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="items")
    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="job_items")
    chunk = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job", "chunk", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["job", "draft"], name="one_item_per_job_draft")
        ]
        indexes = [models.Index(fields=["job", "chunk"])]

    def __str__(self) -> str:
        return f"{self.job} · {self.draft}"


class JobChunk(models.Model):
    """One worker task's share of a job: the items with the same ``chunk`` number.

    A worker claims the chunk (a fresh ``claim`` token), beats ``heartbeat_at`` between engine
    batches and marks it done. The sweeper (``resume_jobs``) sends a chunk again when its heartbeat
    is older than ``COPYDESK_CHUNK_STALL_SECONDS`` (the worker died) or when it was never sent
    (the broker was down when the job was requested)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    claim = models.CharField(max_length=40, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="one_chunk_per_job_number")
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"])]

    def __str__(self) -> str:
        return f"{self.job} · chunk {self.number}"


class ExportBatch(models.Model):
    """One export: who, when, which format and filters, how many drafts, and (for background
    exports) progress and the file under ``var/exports/`` that the download view serves."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"
        SHOPIFY = "shopify", "Shopify CSV"

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    FINISHED = {Status.DONE, Status.FAILED}

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    format = models.CharField(max_length=10, choices=Format.choices)
    # brand (name), kind (code), locale: what exporters.export_filters_clean accepts.
    filters = models.JSONField(default=dict, blank=True)
    # Only drafts whose approved revision is not the one exported last time.
    changed_only = models.BooleanField(default=False)
    bom = models.BooleanField(default=False)
    formula_guard = models.BooleanField(default=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.DONE, db_index=True
    )
    # Drafts expected (counted when the export starts) and drafts written so far.
    total = models.PositiveIntegerField(default=0)
    count = models.PositiveIntegerField(default=0)
    destination = models.CharField(max_length=1000, blank=True)
    # A background export's file, relative to the exports directory; empty for downloads.
    file = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "export batches"

    def __str__(self) -> str:
        return f"Export #{self.pk} ({self.format}, {self.count} rows)"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.total:
            return 0
        return min(100, int(100 * self.count / self.total))


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


class ABTest(models.Model):
    """Products split at random (reproducibly, by ``seed``) between two model versions: one
    generation job per arm, compared on the dashboard."""

    ARMS = ("a", "b")

    name = models.CharField(max_length=200, blank=True)
    model_a = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    model_b = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    seed = models.BigIntegerField(default=0)
    kinds = models.JSONField(default=list)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "A/B test"

    def __str__(self) -> str:
        return self.name or f"A/B #{self.pk}: {self.model_a} vs {self.model_b}"


class FineTuneRun(WorkerRun):
    """Fine-tuning a model version on approved edits; progress is written as it trains."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    FINISHED = {Status.SUCCEEDED, Status.FAILED}

    class Phase(models.TextChoices):
        """What a running run is doing: ``generation.finetune.PHASES``, in order."""

        PREPARING = "preparing", _("loading the model and the training data")
        EVALUATING_BEFORE = "evaluating_before", _(
            "measuring the base model on the validation split")
        TRAINING = "training", _("training")
        EVALUATING_AFTER = "evaluating_after", _(
            "measuring the new model on the validation split")
        SAVING = "saving", _("saving the new model")

    name = models.CharField(max_length=200, help_text=_("Name of the new model version."))
    base = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="finetune_runs")
    result = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    # epochs, lr, batch_size, grad_accum, lora, max_length, seed
    hyperparameters = models.JSONField(default=dict)
    # brand, kind, since: which approved edits were used
    filters = models.JSONField(default=dict, blank=True)
    data_hash = models.CharField(max_length=64, blank=True)
    train_records = models.PositiveIntegerField(default=0)
    validation_records = models.PositiveIntegerField(default=0)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    # [[step, loss], ...] as training goes
    progress = models.JSONField(default=list, blank=True)
    # {"before": {"loss":, "perplexity":}, "after": {...}, "seconds":}
    metrics = models.JSONField(default=dict, blank=True)
    output_path = models.CharField(max_length=1000, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    # The last phase the worker reported; kept after the run ends, so a failure says where.
    phase = models.CharField(max_length=20, choices=Phase.choices, blank=True)
    # Written when a worker claims the run, with each progress step and during each phase: a
    # run that stops beating lost its worker (see generation_jobs_resume).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Fine-tune #{self.pk} → {self.name}"

    @property
    def percent(self) -> int:
        if not self.total_steps:
            return 100 if self.status == self.Status.SUCCEEDED else 0
        return int(100 * self.step / self.total_steps)


class ApiToken(models.Model):
    """A named key for the REST API. Only a SHA-256 hash of the key is stored: the key is shown
    once, when it is made, and cannot be read back. Revoking keeps the row (for the record)."""

    PREFIX_CHARS = 10

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters of the key, so people can tell their tokens apart.
    prefix = models.CharField(max_length=PREFIX_CHARS, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["user", "-created_at", "-pk"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class CopyFeedEntry(models.Model):
    """One approval, in the order the approvals committed: what ``GET /api/v1/copy/`` serves.

    ``seq`` is taken from ``CopyFeedCounter`` while its row is locked, as the last write of the
    approving transaction, so a larger ``seq`` always commits after a smaller one: a client that
    pages by ``seq`` sees every approval exactly once, however long the approving transactions
    ran and whatever their clocks said."""

    seq = models.PositiveBigIntegerField(unique=True)
    draft = models.ForeignKey(Draft, on_delete=models.CASCADE, related_name="feed_entries")
    revision = models.ForeignKey(Revision, on_delete=models.CASCADE, related_name="+")
    approved_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "copy feed entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.draft_id} r{self.revision_id}"


class CopyFeedCounter(models.Model):
    """One row: the last ``CopyFeedEntry.seq`` handed out. Its row lock orders the feed."""

    last_seq = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"copy feed at {self.last_seq}"
