"""What the admin pages share: previews, pretty JSON, history links, read-only inlines."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.db import models
from django.forms.fields import InvalidJSONInput
from django.utils.html import format_html
from django.utils.text import Truncator

PREVIEW_CHARS = 80



def preview(text: str | None, chars: int = PREVIEW_CHARS) -> str:
    """A one-line excerpt, returned as plain text (the admin escapes it)."""
    return Truncator(" ".join((text or "").split())).chars(chars)



def pretty_json(value) -> str:
    return format_html(
        '<pre style="white-space: pre-wrap; margin: 0">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, default=str),
    )



class PrettyJSONFormField(forms.JSONField):
    """JSON shown indented in the form, so attributes and rules are readable and editable."""

    def prepare_value(self, value):
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)



PRETTY_JSON = {
    models.JSONField: {
        "form_class": PrettyJSONFormField,
        "widget": forms.Textarea(attrs={"rows": 8, "cols": 80, "style": "font-family: monospace"}),
    }
}



class HistoryAdmin(admin.ModelAdmin):
    """History is written by the services: nobody adds or edits it here; superusers may delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser



class ReadOnlyInline(admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

