"""Keeps the role groups' Django permissions in step with the models, so reviewers and admins can
work in the Django admin. Workflow rules themselves live in ``policies`` and ``services``."""

from django.contrib.auth.models import Group, Permission

from .policies import ADMIN, EDITOR, REVIEWER


def roles_sync(**kwargs) -> None:
    editorial = Permission.objects.filter(content_type__app_label="editorial")
    view = editorial.filter(codename__startswith="view_")
    grants = {
        EDITOR: view.none(),
        # Reviewers look things up and decide drafts through admin actions (which call services).
        REVIEWER: view | editorial.filter(codename="change_draft"),
        ADMIN: editorial | Permission.objects.filter(
            content_type__app_label="auth", codename__in=["view_user", "change_user", "add_user"]
        ),
    }
    for name, permissions in grants.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)
