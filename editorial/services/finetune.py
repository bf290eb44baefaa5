"""Fine-tuning runs: requested by admins, run on the GPU queue, tracked through their phases."""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from generation.params import (
    OUTPUT_NAME_MAX_LENGTH,
    FineTuneConfig,
    output_dir_in,
    output_name_valid,
)

from .. import broker, policies
from ..audit import audit_log
from ..exceptions import WorkflowError
from ..models import FineTuneRun, ModelVersion
from .model_versions import model_version_register

logger = logging.getLogger(__name__)


def require_admin(user) -> None:
    if user is not None:
        policies.require(policies.ADMIN in policies.user_roles(user),
                         gettext("Only admins can fine-tune models."))


def finetune_output_dir(name: str) -> Path:
    """Where run ``name`` saves its model: directly inside the model folder's ``finetuned``,
    checked again here because a save deletes what is there (a run recorded before the name
    rules, or written to the database by hand, must not reach anywhere else)."""
    return output_dir_in(Path(settings.COPYDESK_MODEL_DIR) / "finetuned", name)



def finetune_run_request(
    *, base: ModelVersion, name: str, hyperparameters: dict, user, filters: dict | None = None,
    enqueue: bool = True,
):
    """Record a fine-tuning run of ``base`` into a new model version ``name`` and, unless
    ``enqueue`` is off (the caller runs it in-process), send it to a GPU worker after commit.

    ``name`` is also the folder the model is saved in, directly inside the model folder's
    ``finetuned``: one folder name of ASCII letters, digits, ``.``, ``-`` and ``_``, starting
    with a letter or digit. Raises ``WorkflowError`` before anything is written."""
    require_admin(user)
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
            transaction.on_commit(lambda: enqueue_finetune(run.pk))
    return run


def finetune_run_retry(*, run, user):
    """Start a failed run again: a new run of the same base, name, settings and filters (the
    failed one stays, with its error, for the record)."""
    if run.status != FineTuneRun.Status.FAILED:
        raise WorkflowError(gettext("Only a failed run can be started again."))
    return finetune_run_request(base=run.base, name=run.name, user=user,
                                hyperparameters=run.hyperparameters, filters=run.filters)


def enqueue_finetune(run_id: int) -> bool:
    try:
        broker.send(broker.FINETUNE_MODEL, run_id)
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
    now = timezone.now()
    claimed = FineTuneRun.objects.filter(pk=run_id, status=FineTuneRun.Status.QUEUED).update(
        status=FineTuneRun.Status.RUNNING, started_at=now, heartbeat_at=now, error="",
        phase=FineTuneRun.Phase.PREPARING,
    )
    return FineTuneRun.objects.select_related("base").get(pk=run_id) if claimed else None


def finetune_run_progress(*, run_id: int, step: int, total_steps: int, loss: float) -> None:
    run = FineTuneRun.objects.only("progress").get(pk=run_id)
    progress = list(run.progress) + [[step, round(float(loss), 5)]]
    FineTuneRun.objects.filter(pk=run_id).update(
        step=step, total_steps=total_steps, loss=float(loss), progress=progress,
        heartbeat_at=timezone.now(),
    )


def finetune_run_phase(*, run_id: int, phase: str) -> None:
    """Record what the running run is doing now; this also beats its heartbeat, so a long
    evaluation is not mistaken for a dead worker."""
    FineTuneRun.objects.filter(pk=run_id, status=FineTuneRun.Status.RUNNING).update(
        phase=FineTuneRun.Phase(phase), heartbeat_at=timezone.now(),
    )


def finetune_run_data(*, run) -> tuple:
    """The run's training data: (train records, validation records, snapshot hash)."""
    from .. import training_data

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
    FineTuneRun.objects.filter(pk=run_id).update(
        status=FineTuneRun.Status.FAILED, error=error[:4000], finished_at=timezone.now()
    )

