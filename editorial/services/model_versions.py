"""Model versions: registering them and choosing the desk's default."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext

from ..audit import audit_log
from ..exceptions import WorkflowError
from ..models import ModelVersion


def model_version_default() -> ModelVersion:
    version = ModelVersion.objects.filter(is_default=True, status=ModelVersion.Status.READY).first()
    if version is None:
        raise WorkflowError(gettext(
            "No default model is installed; run `python manage.py install_default_model`."
        ))
    return version


def ready_model_version(model_version: ModelVersion | None) -> ModelVersion:
    model_version = model_version or model_version_default()
    if model_version.status != ModelVersion.Status.READY:
        raise WorkflowError(gettext("Model version %(name)s is not ready.")
                            % {"name": model_version.name})
    return model_version


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

