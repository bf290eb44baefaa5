"""API tokens: created once (the key shown once, its hash stored), revoked, authenticated."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from .. import policies
from ..audit import audit_log
from ..exceptions import WorkflowError
from ..models import ApiToken


def _api_token_hash(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, user, name: str, owner=None):
    """A new API token for ``owner`` (by default ``user``, who asks); returns ``(token, key)``.
    The key is not stored (only its hash), so this is the one time it can be shown.

    Only a superuser makes a token for someone else; the audit event names the superuser as the
    actor and the owner in its data."""
    import secrets

    owner = user if owner is None else owner
    policies.require(policies.can_create_api_token(user, owner_id=owner.pk),
                     gettext("You can only create tokens for yourself."))
    name = (name or "").strip()
    if not name:
        raise WorkflowError(gettext("Give the token a name."))
    max_length = ApiToken._meta.get_field("name").max_length
    if len(name) > max_length:
        raise WorkflowError(gettext("The name is longer than %(limit)d characters.")
                            % {"limit": max_length})
    key = "cdk_" + secrets.token_urlsafe(30)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=owner, name=name, key_hash=_api_token_hash(key),
            prefix=key[:ApiToken.PREFIX_CHARS],
        )
        audit_log(actor=user, verb="api_token.create", obj=token, name=name,
                  owner=owner.get_username())
    return token, key


def api_token_revoke(*, token, user):
    """Revoke ``token``: its owner and admins may. Revoking twice is harmless (one audit
    event)."""
    policies.require(policies.can_revoke_api_token(user, owner_id=token.user_id),
                     gettext("You can only revoke your own tokens."))
    now = timezone.now()
    with transaction.atomic():
        if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now):
            token.revoked_at = now
            audit_log(actor=user, verb="api_token.revoke", obj=token, name=token.name,
                      owner=token.user.get_username())
        else:
            token.refresh_from_db(fields=["revoked_at"])
    return token


def api_token_authenticate(*, key: str):
    """The active token whose key is ``key`` (with its user), or None. Stamps ``last_used_at``
    at most once a minute."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_api_token_hash(key), revoked_at__isnull=True).first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token

