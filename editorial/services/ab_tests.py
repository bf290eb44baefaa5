"""A/B tests between two model versions on the same products."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext

from ..audit import audit_log
from ..exceptions import WorkflowError
from ..models import ABTest, GenerationJob, ModelVersion, Product
from ._rows import product_ids_of
from .generation_jobs import generation_job_request


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
    if model_a.pk == model_b.pk:
        raise WorkflowError(gettext("An A/B test needs two different model versions."))
    rows = list(Product.objects.filter(pk__in=product_ids_of(products)).values_list("pk", "sku"))
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

