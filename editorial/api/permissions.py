from rest_framework import permissions

from .. import policies


class CopydeskPolicy(permissions.BasePermission):
    """The UI's rules (``editorial.policies``) per HTTP method: a view sets ``policies`` to a
    dict such as ``{"GET": policies.can_view, "POST": policies.can_generate}``. Anonymous
    requests get 401, accounts without the role 403."""

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        rules = getattr(view, "policies", {})
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        rule = rules.get(method, policies.can_view)
        return bool(policies.can_view(request.user) and rule(request.user))
