"""Generation jobs, model versions and A/B tests as the job pages and the dashboard show them."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from ..models import ABTest, ContentKind, Draft, GenerationJob, ModelVersion


def model_version_ready_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(status=ModelVersion.Status.READY).order_by(
        "-is_default", "-created_at"
    )



def job_recent_list(*, limit: int = 8) -> QuerySet[GenerationJob]:
    return job_list()[:limit]



def job_list() -> QuerySet[GenerationJob]:
    return GenerationJob.objects.select_related("model_version", "requested_by").order_by(
        "-created_at", "-pk"
    )



def job_detail(*, job_id: int) -> GenerationJob:
    return get_object_or_404(job_list(), pk=job_id)



def job_kind_labels(*, jobs: list[GenerationJob]) -> list[GenerationJob]:
    """``jobs``, each given ``kind_labels``: its kinds' labels in the reader's language, in the
    order requested (one query for all of them; a kind deleted since shows as its code)."""
    requested = {job.pk: job.kinds if isinstance(job.kinds, list) else [] for job in jobs}
    codes = {str(code) for kinds in requested.values() for code in kinds}
    labels = {k.code: str(k.display_label) for k in ContentKind.objects.filter(code__in=codes)}
    for job in jobs:
        job.kind_labels = [labels.get(str(code), str(code)) for code in requested[job.pk]]
    return jobs



def draft_last_job(*, draft: Draft) -> GenerationJob | None:
    """The most recent job that generated (or tried to generate) this draft."""
    return (
        GenerationJob.objects.filter(items__draft=draft).select_related("model_version")
        .order_by("-created_at", "-pk").first()
    )



def draft_job_list(*, draft: Draft, limit: int = 3) -> list[GenerationJob]:
    """The draft's latest jobs, for the progress panel on its page."""
    return list(
        GenerationJob.objects.filter(items__draft=draft).select_related("model_version")
        .order_by("-created_at", "-pk")[:limit]
    )



def job_draft_list(*, job: GenerationJob, limit: int = 50) -> QuerySet[Draft]:
    """The first drafts of a job, for its page; the queue filtered by job shows all of them."""
    return (
        Draft.objects.filter(job_items__job=job)
        .select_related("product", "kind")
        .order_by("job_items__pk")[:limit]
    )



def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.order_by("-created_at", "name")



def ab_test_recent_list(*, limit: int) -> list[ABTest]:
    return list(ABTest.objects.select_related("model_a", "model_b")
                .order_by("-created_at", "-pk")[:limit])

