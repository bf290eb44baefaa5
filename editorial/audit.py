from django.db import models

from .models import AuditEvent


def audit_log(*, actor, verb: str, obj: models.Model, **data) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        verb=verb,
        object_type=obj._meta.model_name,
        object_id=str(obj.pk),
        data=data,
    )
