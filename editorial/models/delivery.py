"""What leaves the desk: export batches, API tokens and the copy feed."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .drafts import Draft, Revision


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

