"""Who may do what. Every view, partial, API call and admin action asks here, so a rule lives in
one place. Roles are Django groups so admins manage them in the admin."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

EDITOR = "Editor"
REVIEWER = "Reviewer"
ADMIN = "Admin"
ROLES = (EDITOR, REVIEWER, ADMIN)

User = AbstractBaseUser | AnonymousUser


def user_roles(user: User) -> frozenset[str]:
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_copydesk_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached = cached | {ADMIN}
        user._copydesk_roles = cached
    return cached


def can_view(user: User) -> bool:
    """Any Copydesk role may read the desk; accounts in no group see nothing."""
    return bool(user_roles(user) & set(ROLES))


def can_edit(user: User) -> bool:
    return bool(user_roles(user) & {EDITOR, REVIEWER, ADMIN})


def can_review(user: User) -> bool:
    return bool(user_roles(user) & {REVIEWER, ADMIN})


def can_generate(user: User) -> bool:
    return can_edit(user)


def can_import(user: User) -> bool:
    return bool(user_roles(user) & {EDITOR, ADMIN})


def can_export(user: User) -> bool:
    return bool(user_roles(user) & {REVIEWER, ADMIN})


def require(allowed: bool, message: str = "You do not have permission to do that.") -> None:
    if not allowed:
        raise PermissionDenied(message)
