"""Model versions and the runs that use them: generation jobs (items, chunks), A/B tests,
fine-tunes."""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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



class JobItem(models.Model):
    """One draft's share of a job; what chunks are made of, and what makes redelivery harmless."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="items")
    draft = models.ForeignKey("Draft", on_delete=models.CASCADE, related_name="job_items")
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

