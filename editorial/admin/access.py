"""Who gets in: the audit log, API tokens, and user accounts."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import policies, services
from ..models import ApiToken, AuditEvent
from ._common import HistoryAdmin, pretty_json, preview


@admin.register(AuditEvent)
class AuditEventAdmin(HistoryAdmin):
    list_display = ("created_at", "verb", "actor", "object_type", "object_id", "data_preview")
    list_filter = ("verb", "object_type")
    list_select_related = ("actor",)
    search_fields = ("verb", "=object_id", "actor__username")
    date_hierarchy = "created_at"
    fields = ("created_at", "actor", "verb", "object_type", "object_id", "data_display")
    readonly_fields = ("data_display",)

    @admin.display(description=_("data"))
    def data_preview(self, event: AuditEvent) -> str:
        return preview(json.dumps(event.data, ensure_ascii=False, default=str))

    @admin.display(description=_("data"))
    def data_display(self, event: AuditEvent) -> str:
        return pretty_json(event.data)



class ApiTokenAddForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("user", "name")



@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made by ``services.api_token_create`` (the key is shown once, on the page
    after "Save") and revoked, never edited: only the hash of a key is stored. A token is its
    maker's: only a superuser picks another owner; only admins revoke others' tokens."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    list_select_related = ("user",)
    search_fields = ("name", "prefix", "user__username")
    date_hierarchy = "created_at"
    actions = ["revoke_tokens"]
    readonly_fields = ("user", "prefix", "created_at", "last_used_at", "revoked_at")
    fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request, obj=None):
        if obj is not None:
            return self.fields
        return ("user", "name") if request.user.is_superuser else ("name",)

    def get_changeform_initial_data(self, request):
        return {"user": request.user.pk, **super().get_changeform_initial_data(request)}

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        token, key = services.api_token_create(
            user=request.user, name=form.cleaned_data["name"],
            owner=form.cleaned_data.get("user") or request.user,
        )
        obj.pk = token.pk
        obj.user = token.user
        obj._state.adding = False
        obj._new_key = key

    def response_add(self, request, obj, post_url_continue=None):
        # The key is shown in this response only: not in a message (a cookie) or a redirect.
        return TemplateResponse(request, "account/admin_token_created.html", {
            **self.admin_site.each_context(request),
            "title": _("API token created"),
            "token": obj,
            "key": obj._new_key,
            "opts": self.opts,
            "changelist_url": reverse("admin:editorial_apitoken_changelist"),
        })

    def has_revoke_permission(self, request) -> bool:
        return policies.can_revoke_others_api_tokens(request.user)

    @admin.action(description=_("Revoke selected tokens"), permissions=["revoke"])
    def revoke_tokens(self, request, queryset):
        count = 0
        for token in queryset.filter(revoked_at__isnull=True).select_related("user"):
            try:
                services.api_token_revoke(token=token, user=request.user)
            except PermissionDenied as exc:
                self.message_user(request, f"{token}: {exc}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, ngettext("%(count)d token was revoked.",
                                                "%(count)d tokens were revoked.", count)
                              % {"count": count}, messages.SUCCESS)



User = get_user_model()



class CopydeskUserAdmin(UserAdmin):
    """Superusers grant roles (groups), permissions, staff and superuser status. Other admins
    manage accounts without seeing or setting any of those, and only accounts that hold no more
    than an ordinary member does: not a superuser's, not another staff member's (whose password
    would make them that person), and nobody's password but their own, since setting someone's
    password lets one approve as them (past the four-eyes rule)."""

    GRANTS = ("is_superuser", "groups", "user_permissions")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser or obj is None:
            return fieldsets
        kept = []
        for name, options in fieldsets:
            fields = tuple(f for f in options["fields"] if f not in self.GRANTS)
            if fields:
                kept.append((name, {**options, "fields": fields}))
        return kept

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser or obj is None:
            return readonly
        return (*readonly, "is_staff", "last_login", "date_joined")

    def get_list_filter(self, request):
        if request.user.is_superuser:
            return super().get_list_filter(request)
        return ("is_staff", "is_active")

    def _outranks(self, request, obj) -> bool:
        """Whether ``obj`` is beyond what a non-superuser may change."""
        if request.user.is_superuser or obj is None or obj.pk == request.user.pk:
            return False
        return obj.is_superuser or obj.is_staff

    def has_change_permission(self, request, obj=None):
        return not self._outranks(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._outranks(request, obj) and super().has_delete_permission(request, obj)

    def user_change_password(self, request, id, form_url=""):
        user = self.get_object(request, unquote(id))
        if (user is not None and not request.user.is_superuser
                and user.pk != request.user.pk):
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)



admin.site.unregister(User)



admin.site.register(User, CopydeskUserAdmin)

