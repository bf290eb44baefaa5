"""A product's copy of one kind and its history: candidates, revisions, reviews, comments,
presence, and the audit trail."""

from django.conf import settings
from django.db import connections, models, router
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from generation.checks import BLOCKING, WARNING

from .. import search
from .catalog import ContentKind, Product
from .generation import GenerationJob, ModelVersion

# What a draft copies from its product and current text: saving one of these recomputes it.
_COPIED_FROM = {"current_revision", "current_revision_id", "product", "product_id"}
# What decides the review figures a draft keeps (``review_*``).
_REVIEWED_FROM = {"state", "current_revision", "current_revision_id", "approved_revision",
                  "approved_revision_id"}


class DraftQuerySet(models.QuerySet):
    def refresh_copied(self) -> int:
        """Recompute what these drafts copy from their product, kind and current text
        (``search_text``, ``search_grams``, ``product_brand``, ``product_sku``,
        ``kind_position``) after a write that bypassed ``Draft.save``: products renamed or
        rebranded in bulk. Returns how many drafts were written."""
        rows = self.order_by().values_list(
            "pk", "product__sku", "product__title", "current_revision__text",
            "product__brand_id", "kind__position")
        connection = connections[router.db_for_write(Draft)]
        quote = connection.ops.quote_name
        sql = (f"UPDATE {quote(Draft._meta.db_table)} SET {quote('search_text')} = %s, "
               f"{quote('search_grams')} = %s, {quote('product_brand_id')} = %s, "
               f"{quote('product_sku')} = %s, {quote('kind_position')} = %s "
               f"WHERE {quote('id')} = %s")
        params = []
        for pk, sku, title, text, brand_id, position in rows.iterator(chunk_size=5000):
            joined = search.search_text(sku=sku, title=title, text=text)
            params.append((joined, search.search_grams(joined), brand_id, sku, position, pk))
        with connection.cursor() as cursor:
            for start in range(0, len(params), 5000):
                cursor.executemany(sql, params[start:start + 5000])
        return len(params)


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
    # The product's SKU and title and the current text, for the queue's search (see
    # editorial/search.py); kept by ``save`` and ``DraftQuerySet.refresh_copied``.
    search_text = models.TextField(blank=True, default="", db_default="", editable=False)
    search_grams = models.TextField(blank=True, default="", db_default="", editable=False)
    # The product's brand, so the queue filters and counts a brand's drafts from one index.
    product_brand = models.ForeignKey(
        "Brand", null=True, blank=True, editable=False, on_delete=models.SET_NULL,
        related_name="+", db_index=False,  # draft_brand_state leads with it
    )
    # A reviewed draft (approved, exported, rejected) as the dashboard counts it: the model
    # version of the candidate its judged revision (the approved one; a rejected draft's
    # current one) started from, when that candidate was made, and whether the approved text
    # is that candidate's unchanged. Empty for drafts not reviewed; kept by ``save``.
    review_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, editable=False, on_delete=models.SET_NULL,
        related_name="+", db_index=False,  # draft_review_figures leads with it
    )
    # The queue's default order (product SKU, kind position), so a page of a filtered or
    # searched queue is read in order from one index instead of sorting every match through
    # the product and kind joins; kept like ``search_text``.
    product_sku = models.CharField(max_length=255, blank=True, default="", db_default="",
                                   editable=False)
    kind_position = models.PositiveSmallIntegerField(default=0, db_default=0, editable=False)
    review_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    review_unchanged = models.BooleanField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DraftQuerySet.as_manager()

    class Meta:
        ordering = ["product__sku", "kind__position"]
        indexes = [
            # The queue: a brand's drafts per state; the most recently updated first.
            models.Index(fields=["product_brand", "state"], name="draft_brand_state"),
            models.Index(fields=["updated_at", "id"], name="draft_updated"),
            models.Index(fields=["product_sku", "kind_position", "id"], name="draft_sku_order"),
            # The dashboard's figures per model version, from the index alone.
            models.Index(
                fields=["review_version", "state", "id", "review_unchanged", "approved_at",
                        "review_started_at"],
                condition=Q(review_version__isnull=False), name="draft_review_figures"),
            # Each version's approved drafts in id order: the edit distance sample's positions.
            models.Index(
                fields=["review_version", "id"],
                condition=Q(review_version__isnull=False, state__in=["approved", "exported"]),
                name="draft_review_order"),
        ]
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

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is None or not _COPIED_FROM.isdisjoint(update_fields):
            text = self.current_revision.text if self.current_revision_id else ""
            self.search_text = search.search_text(
                sku=self.product.sku, title=self.product.title, text=text)
            self.search_grams = search.search_grams(self.search_text)
            self.product_brand_id = self.product.brand_id
            self.product_sku = self.product.sku
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "search_text", "search_grams",
                                           "product_brand", "product_sku"}
        if update_fields is None or not {"kind", "kind_id"}.isdisjoint(update_fields):
            self.kind_position = self.kind.position
            if update_fields is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "kind_position"}
        if update_fields is None or not _REVIEWED_FROM.isdisjoint(update_fields):
            self._set_review_figures()
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "review_version",
                                           "review_started_at", "review_unchanged"}
        super().save(*args, **kwargs)

    def _set_review_figures(self) -> None:
        approved = self.state in {self.State.APPROVED, self.State.EXPORTED}
        judged_id = (self.approved_revision_id if approved
                     else self.current_revision_id if self.state == self.State.REJECTED
                     else None)
        origin = None
        if judged_id is not None:
            judged = Revision.objects.select_related("origin_candidate").get(pk=judged_id)
            origin = judged.origin_candidate
        self.review_version_id = origin.model_version_id if origin else None
        self.review_started_at = origin.created_at if origin else None
        self.review_unchanged = (approved and origin.text.strip() == judged.text.strip()
                                 if origin else None)

    def get_state_display(self):
        # Django's version rebuilds a dict of every choice per call: ~70 µs, on each queue row.
        return self.State(self.state).label



class Candidate(models.Model):
    FLAGGED_SEVERITIES = (BLOCKING, WARNING)

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
    # Whether ``flags`` holds a blocking or a warning flag, so the queue's flag filter and the
    # dashboard's flag rate read a boolean instead of parsing JSON; kept by ``save`` and set
    # by ``flagged_by`` where candidates are inserted in bulk.
    flagged = models.BooleanField(default=False)
    usable = models.BooleanField(null=True, blank=True)
    score = models.FloatField(default=0)
    rank = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["draft", "rank", "index"]
        indexes = [
            # The queue's flag filter; the dashboard's counts per model version, read from the
            # index alone.
            models.Index(fields=["draft"], condition=Q(flagged=True), name="candidate_flagged"),
            models.Index(fields=["model_version", "flagged", "draft"],
                         name="candidate_version_counts"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["draft", "job", "index"], name="one_candidate_per_draft_job_index"
            )
        ]

    def __str__(self) -> str:
        return f"Candidate {self.index} of {self.draft}"

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        self.flagged = self.flagged_by(self.flags)
        if update_fields is not None and "flags" in update_fields:
            kwargs["update_fields"] = {*update_fields, "flagged"}
        super().save(*args, **kwargs)

    @classmethod
    def flagged_by(cls, flags) -> bool:
        return isinstance(flags, list) and any(
            isinstance(flag, dict) and flag.get("severity") in cls.FLAGGED_SEVERITIES
            for flag in flags)



class VersionCandidateCount(models.Model):
    """How many candidates a model version made, how many are flagged, and for how many
    drafts: the dashboard's per-version counts, which cost a scan of every candidate. Written
    only by database triggers on the candidate table (migration 0018), so every write path
    keeps it right: bulk inserts, cascaded deletions, raw SQL, COPY and TRUNCATE."""

    model_version = models.OneToOneField(
        ModelVersion, primary_key=True, on_delete=models.CASCADE, related_name="+")
    candidates = models.BigIntegerField(default=0)
    flagged = models.BigIntegerField(default=0)
    drafts = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.model_version_id}: {self.candidates} candidates"



class DraftStateTally(models.Model):
    """Drafts per state, for the queue's tabs and the dashboard, which otherwise count every
    draft on each view (300,000 at catalog size). Rows of changes, summed per state: database
    triggers on the draft table (migration 0019) add a row per state a statement changed, so
    concurrent writers never wait on one counter row, and every write path counts (bulk
    updates, cascaded deletions, raw SQL, COPY, TRUNCATE). ``selectors.draft_state_counts``
    sums them and folds them back into a row per state when they pile up."""

    state = models.CharField(max_length=20)
    drafts = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.state}: {self.drafts:+d}"



class VersionReviewTally(models.Model):
    """Reviewed drafts per model version as the dashboard counts them (``Draft.review_*``):
    approved or exported, of those unchanged and timed (an approval time), and rejected.
    Rows of changes like ``DraftStateTally``, added by triggers on the draft table (migration
    0020): a row per version for every statement that writes one of its reviewed drafts,
    even when the sums do not move, so the rows' count and highest id change whenever a
    version's sample or medians may have (``metrics``' cache key)."""

    # No foreign key: the triggers add rows while a deleted version's drafts are set to NULL,
    # after Django has deleted what referenced the version. Such rows sum to zero and folding
    # drops them.
    model_version = models.ForeignKey(ModelVersion, on_delete=models.DO_NOTHING,
                                      db_constraint=False, db_index=False, related_name="+")
    approved = models.BigIntegerField()
    unchanged = models.BigIntegerField()
    timed = models.BigIntegerField()
    rejected = models.BigIntegerField()

    def __str__(self) -> str:
        return (f"{self.model_version_id}: approved {self.approved:+d}, "
                f"rejected {self.rejected:+d}")



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
    # The candidate this line of revisions started from: ``candidate``, or the parent's origin
    # (editorial/metrics.py, "starting candidate"). Revisions never change, so it is set once,
    # by ``save``; the dashboard reads it instead of walking every reviewed draft's history.
    origin_candidate = models.ForeignKey(
        Candidate, null=True, blank=True, editable=False, on_delete=models.SET_NULL,
        related_name="+",
    )
    # The normalised edit distance from the origin candidate's text to this text, stored the
    # first time an approval of this revision needs it (metrics.revision_origin_distances).
    origin_distance = models.FloatField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["draft", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["draft", "number"], name="revision_number_per_draft")
        ]

    def __str__(self) -> str:
        return f"{self.draft} r{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.origin_candidate_id is None:
            self.origin_candidate_id = self.candidate_id or (
                self.parent.origin_candidate_id if self.parent_id else None)
        super().save(*args, **kwargs)

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

