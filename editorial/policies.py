"""Who may do what. Every view, partial, API call and admin action asks here, so a rule lives in
one place. Roles are Django groups so admins manage them in the admin."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext

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


def can_train(user: User) -> bool:
    """Training data downloads and fine-tuning: admins only."""
    return ADMIN in user_roles(user)


def can_revoke_others_api_tokens(user: User) -> bool:
    """Admins, so a leaked key is stopped at once; nobody else, or any reviewer could cut off
    the shop's integration."""
    return ADMIN in user_roles(user)


def can_revoke_api_token(user: User, *, owner_id: int) -> bool:
    return (user.is_authenticated and user.pk == owner_id) or can_revoke_others_api_tokens(user)


def can_create_api_token(user: User, *, owner_id: int) -> bool:
    """Tokens are for oneself: one made for someone else acts as them (approving what its maker
    wrote, past the four-eyes rule), so only a superuser, who could anyway, makes one."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.pk == owner_id or user.is_superuser


def can_assign_others(user: User) -> bool:
    """Reviewers and admins hand drafts to editors; editors only take drafts themselves."""
    return can_review(user)


def is_assignable(user: User, *, by: User) -> bool:
    """Drafts go to members of the Editor group, or to whoever claims one (``by`` themselves)."""
    if not user.is_authenticated or not user.is_active:
        return False
    return EDITOR in user_roles(user) or (user.pk == by.pk and can_edit(user))


def can_assign(user: User, assignee: User) -> bool:
    return can_edit(user) and (assignee.pk == user.pk or can_assign_others(user))


def can_unassign(user: User, *, assignee_id: int | None) -> bool:
    """Editors give back their own drafts; reviewers and admins unassign anyone's."""
    return can_edit(user) and (assignee_id == user.pk or can_assign_others(user))


def require(allowed: bool, message: str = "You do not have permission to do that.") -> None:
    if not allowed:
        raise PermissionDenied(message)


# The refusals pages and services share, with their translated reason: a view checks before it
# validates a form (a refused user hears why, not what to fix) and the service checks again
# before it writes.

def check_edit(user: User) -> None:
    require(can_edit(user), gettext("Only editors can change copy."))


def check_review(user: User) -> None:
    require(can_review(user), gettext("Only reviewers can review drafts."))


def check_generate(user: User) -> None:
    require(can_generate(user), gettext("Only editors can request generation."))


def draft_actions(user: User, draft) -> dict[str, bool]:
    """Which of the workflow's actions ``user`` may take on ``draft`` now, by name: what the
    draft page offers (``workflow.TRANSITIONS``; the services still check each one)."""
    from . import workflow

    checks = globals()
    actions = {
        name: bool(transition.permission) and checks[transition.permission](user)
        and workflow.offers(name, draft.state)
        for name, transition in workflow.TRANSITIONS.items()
    }
    actions["submit"] = actions["submit"] and draft.current_revision_id is not None
    actions["claim"] = actions["claim"] and draft.assignee_id != user.pk
    return actions
