"""The Django admin: look-ups for staff and configuration for admins.

Workflow changes go through the services (admin actions call them), never through forms: drafts
and generation jobs are view-only here, and the history (revisions, candidates, review decisions,
audit events, export batches) cannot be added or changed; only superusers may delete it.

Model output and product data are untrusted text: everything is auto-escaped, and the little HTML
built here goes through ``format_html``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count
from django.forms.fields import InvalidJSONInput
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import policies, services
from .models import (
    ABTest,
    ApiToken,
    AuditEvent,
    Brand,
    Candidate,
    CatalogImport,
    ContentKind,
    Draft,
    DraftComment,
    DraftPresence,
    ExportBatch,
    FineTuneRun,
    GenerationJob,
    JobItem,
    ModelVersion,
    Product,
    ReviewDecision,
    Revision,
)

admin.site.site_header = "Copydesk admin"
admin.site.site_title = "Copydesk admin"
admin.site.index_title = _("Administration")

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


# --- Catalog and configuration ------------------------------------------------------------------

@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ("name", "locale", "audience", "product_count", "updated_at")
    list_filter = ("locale",)
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    formfield_overrides = PRETTY_JSON

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_product_count=Count("products"))

    @admin.display(description=_("products"), ordering="_product_count")
    def product_count(self, obj: Brand) -> int:
        return obj._product_count


@admin.register(ContentKind)
class ContentKindAdmin(admin.ModelAdmin):
    list_display = ("code", "label", "max_chars", "max_new_tokens", "position")
    search_fields = ("code", "label")
    ordering = ("position", "code")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "title", "brand", "category", "locale", "source_format", "updated_at")
    list_filter = ("locale", "source_format", "brand", "category")
    list_select_related = ("brand",)
    search_fields = ("sku", "title")
    date_hierarchy = "created_at"
    autocomplete_fields = ("brand",)
    readonly_fields = ("source_format", "raw_display", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("sku", "title", "brand", "category", "locale")}),
        (_("Product data"), {"fields": ("attributes", "source_text")}),
        (_("Import"), {"fields": ("source_format", "raw_display", "created_at", "updated_at"),
                       "classes": ("collapse",)}),
    )
    formfield_overrides = PRETTY_JSON

    @admin.display(description=_("imported row"))
    def raw_display(self, obj: Product) -> str:
        return pretty_json(obj.raw)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "source", "status", "is_default", "parent", "created_at")
    list_filter = ("status", "source", "is_default")
    list_select_related = ("parent",)
    search_fields = ("name", "path", "notes")
    date_hierarchy = "created_at"
    autocomplete_fields = ("parent",)
    # The default changes through the action: one default at a time, and only a ready model.
    readonly_fields = ("created_at", "is_default")
    formfield_overrides = PRETTY_JSON
    actions = ("make_default",)

    @admin.action(description=_("Make the default model"), permissions=["change"])
    def make_default(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one model version."), messages.ERROR)
            return
        version = queryset.get()
        try:
            services.model_version_make_default(version=version, user=request.user)
        except services.WorkflowError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, _("New jobs now generate with %(name)s.")
                          % {"name": version.name}, messages.SUCCESS)


# --- Generation ---------------------------------------------------------------------------------

@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    """Jobs are requested through ``generation_job_request`` (it creates the items and enqueues
    the chunks), so they are view-only here; the one change is the cancel action."""

    list_display = ("__str__", "status", "model_version", "requested_by", "progress",
                    "tokens_per_second_display", "created_at", "finished_at")
    list_filter = ("status", "model_version")
    list_select_related = ("model_version", "requested_by")
    search_fields = ("=id", "model_version__name", "requested_by__username")
    date_hierarchy = "created_at"
    actions = ("cancel_jobs",)
    fieldsets = (
        (None, {"fields": ("status", "model_version", "requested_by", "kinds", "params_display",
                           "error")}),
        (_("Progress"), {"fields": ("progress", "items", "total", "done", "failed",
                                    "tokens_generated", "generation_seconds",
                                    "tokens_per_second_display", "created_at", "started_at",
                                    "finished_at")}),
    )
    readonly_fields = ("progress", "items", "params_display", "tokens_per_second_display")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # The changelist may act (cancel); a job's own page is view-only.
        return obj is None and super().has_change_permission(request)

    @admin.display(description=_("progress"))
    def progress(self, job: GenerationJob) -> str:
        text = f"{job.done + job.failed}/{job.total} ({job.percent}%)"
        return f"{text}, {job.failed} failed" if job.failed else text

    @admin.display(description=_("items"))
    def items(self, job: GenerationJob) -> str:
        url = reverse("admin:editorial_jobitem_changelist")
        return format_html('<a href="{}?job__id__exact={}">{}</a>', url, job.pk,
                           _("Items of this job"))

    @admin.display(description=_("tokens/s"))
    def tokens_per_second_display(self, job: GenerationJob) -> str:
        return f"{job.tokens_per_second:.1f}"

    @admin.display(description=_("params"))
    def params_display(self, job: GenerationJob) -> str:
        return pretty_json(job.params)

    @admin.action(description=_("Cancel selected jobs"), permissions=["change"])
    def cancel_jobs(self, request, queryset):
        cancelled = 0
        for job in queryset:
            if job.is_finished:
                continue
            try:
                services.generation_job_cancel(job=job, user=request.user)
            except PermissionDenied as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            cancelled += 1
        self.message_user(
            request,
            ngettext("%(count)d job cancelled.", "%(count)d jobs cancelled.", cancelled)
            % {"count": cancelled},
            messages.SUCCESS if cancelled else messages.WARNING,
        )


@admin.register(JobItem)
class JobItemAdmin(HistoryAdmin):
    list_display = ("pk", "job", "draft", "chunk", "status", "attempts", "error_preview",
                    "updated_at")
    list_filter = ("status",)
    list_select_related = ("job", "draft__product")
    search_fields = ("=job__id", "draft__product__sku")
    raw_id_fields = ("job", "draft")

    @admin.display(description=_("error"))
    def error_preview(self, item: JobItem) -> str:
        return preview(item.error)


# --- Drafts and their history -------------------------------------------------------------------

class RevisionInline(ReadOnlyInline):
    model = Revision
    fk_name = "draft"
    fields = ("number", "author", "source", "text", "created_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author", "candidate__model_version")

    @admin.display(description=_("from"))
    def source(self, revision: Revision) -> str:
        if revision.candidate is None:
            return "—"
        return f"candidate {revision.candidate.index} ({revision.candidate.model_version})"


class CandidateInline(ReadOnlyInline):
    model = Candidate
    fields = ("rank", "index", "model_version", "score", "flag_codes", "text", "created_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("model_version")

    @admin.display(description=_("flags"))
    def flag_codes(self, candidate: Candidate) -> str:
        return ", ".join(str(flag.get("code", "?")) for flag in candidate.flags or []) or "—"


class ReviewDecisionInline(ReadOnlyInline):
    model = ReviewDecision
    fields = ("created_at", "decision", "revision_number", "reviewer", "comment")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("revision", "reviewer")

    @admin.display(description=_("revision"))
    def revision_number(self, decision: ReviewDecision) -> int:
        return decision.revision.number


class DecisionCommentForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment"),
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text=_("What needs to change; the editors see this."),
    )

    def __init__(self, *args, comment_required: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not comment_required:
            self.fields["comment"].required = False
            self.fields["comment"].help_text = _("Optional; the editors see this.")


# Rendered from a string so the admin needs no template file of its own.
DECISION_TEMPLATE = """{% extends "admin/base_site.html" %}{% load i18n l10n admin_urls %}
{% block bodyclass %}{{ block.super }} app-{{ opts.app_label }} model-{{ opts.model_name }}
{% endblock %}
{% block breadcrumbs %}<div class="breadcrumbs">
<a href="{% url 'admin:index' %}">{% translate 'Home' %}</a>
&rsaquo; <a href="{% url opts|admin_urlname:'changelist' %}">
{{ opts.verbose_name_plural|capfirst }}</a>
&rsaquo; {{ title }}</div>{% endblock %}
{% block content %}
<form method="post">{% csrf_token %}
<p>{% blocktranslate trimmed count counter=count %}
  {{ counter }} draft, with the text that will be decided:
{% plural %}
  {{ counter }} drafts, with the text that will be decided:
{% endblocktranslate %}</p>
<ul>{% for draft in shown %}<li><strong>{{ draft }}</strong>
{% if draft.current_revision %}
({% blocktranslate trimmed with number=draft.current_revision.number %}
  revision {{ number }}
{% endblocktranslate %})
<blockquote style="white-space: pre-wrap">{{ draft.current_revision.text|truncatechars:600 }}
</blockquote>{% endif %}
</li>{% endfor %}
{% if more %}<li>{% blocktranslate %}… {{ more }} more{% endblocktranslate %}</li>{% endif %}</ul>
{{ form.as_p }}
{% for pk in pks %}<input type="hidden" name="{{ checkbox_name }}" value="{{ pk|unlocalize }}">
{% endfor %}
{% for pair in seen %}<input type="hidden" name="seen" value="{{ pair }}">
{% endfor %}
<input type="hidden" name="action" value="{{ action }}">
<input type="hidden" name="post" value="yes">
<input type="submit" value="{{ title }}">
<a href="{% url opts|admin_urlname:'changelist' %}" class="button cancel-link">
{% translate 'Cancel' %}</a>
</form>
{% endblock %}
"""


@admin.register(Draft)
class DraftAdmin(admin.ModelAdmin):
    """Drafts are view-only; review decisions are the actions, which call the services."""

    list_display = ("__str__", "product_title", "kind", "state", "assignee", "text_preview",
                    "approved_by", "approved_at", "updated_at")
    list_filter = ("state", "kind", "product__brand", "product__locale")
    list_select_related = ("product", "kind", "assignee", "approved_by", "current_revision")
    search_fields = ("product__sku", "product__title", "current_revision__text")
    date_hierarchy = "updated_at"
    fields = ("product", "kind", "state", "assignee", "current_revision", "approved_revision",
              "approved_by", "approved_at", "exported_revision", "error", "created_at",
              "updated_at")
    inlines = (RevisionInline, CandidateInline, ReviewDecisionInline)
    actions = ("approve_current_revision", "request_changes", "reject", "retry_generation")

    def has_add_permission(self, request):
        return False  # drafts are made by generation jobs

    def has_change_permission(self, request, obj=None):
        # The changelist may act (review decisions); a draft's own page is view-only.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    @admin.display(description=_("title"), ordering="product__title")
    def product_title(self, draft: Draft) -> str:
        return preview(draft.product.title, 60)

    @admin.display(description=_("current text"))
    def text_preview(self, draft: Draft) -> str:
        return preview(draft.current_revision.text) if draft.current_revision else "—"

    # Review decisions. Each goes through a page that shows the text to be decided and posts
    # the revision it showed, so a text saved meanwhile is refused as stale by the service (as
    # on the draft page) instead of being approved unread. The service checks permission,
    # state, blocking flags and four-eyes per draft; refusals are reported one by one.

    def _decide(self, request, queryset, service, done: Callable[[int], str], *,
                seen: dict[int, int], comment: str = "") -> None:
        """``done(count)`` is the success message."""
        count = 0
        for draft in queryset:
            kwargs = {"comment": comment} if comment else {}
            if draft.pk not in seen:
                missing = _("It was not on the confirmation page; select it again.")
                self.message_user(request, f"{draft}: {missing}", messages.ERROR)
                continue
            try:
                service(draft=draft, user=request.user, revision_id=seen[draft.pk], **kwargs)
            except PermissionDenied as exc:
                self.message_user(request, str(exc) or _("Permission denied."), messages.ERROR)
                return
            except services.WorkflowError as exc:
                self.message_user(request, f"{draft}: {exc}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(request, done(count), messages.SUCCESS)

    @staticmethod
    def _seen(request) -> dict[int, int]:
        seen: dict[int, int] = {}
        for pair in request.POST.getlist("seen"):
            draft_id, _sep, revision_id = pair.partition(":")
            if draft_id.isdigit() and revision_id.isdigit():
                seen[int(draft_id)] = int(revision_id)
        return seen

    def _decide_after_confirmation(self, request, queryset, *, action: str, title: str,
                                   service, done: Callable[[int], str],
                                   comment_required: bool):
        """Show the selected drafts' texts (and ask for the comment), then decide each on the
        revision that page showed."""
        if request.POST.get("post") == "yes":
            form = DecisionCommentForm(request.POST, comment_required=comment_required)
            if form.is_valid():
                self._decide(request, queryset, service, done, seen=self._seen(request),
                             comment=form.cleaned_data["comment"])
                return None
        else:
            form = DecisionCommentForm(comment_required=comment_required)
        queryset = queryset.select_related("current_revision", "product", "kind")
        decided = list(queryset.values_list("pk", "current_revision_id"))
        shown = list(queryset[:50])
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "form": form,
            "action": action,
            "checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "pks": [pk for pk, _revision in decided],
            "seen": [f"{pk}:{revision}" for pk, revision in decided if revision],
            "count": len(decided),
            "shown": shown,
            "more": len(decided) - len(shown),
        }
        return TemplateResponse(request, engines["django"].from_string(DECISION_TEMPLATE),
                                context)

    @admin.action(description=_("Approve current revision…"), permissions=["change"])
    def approve_current_revision(self, request, queryset):
        return self._decide_after_confirmation(
            request, queryset, action="approve_current_revision", title=str(_("Approve")),
            service=services.draft_approve, comment_required=False,
            done=lambda n: ngettext("%(count)d draft approved.",
                                    "%(count)d drafts approved.", n) % {"count": n},
        )

    @admin.action(description=_("Request changes…"), permissions=["change"])
    def request_changes(self, request, queryset):
        return self._decide_after_confirmation(
            request, queryset, action="request_changes", title=str(_("Request changes")),
            service=services.draft_request_changes, comment_required=True,
            done=lambda n: ngettext("Changes requested on %(count)d draft.",
                                    "Changes requested on %(count)d drafts.", n) % {"count": n},
        )

    @admin.action(description=_("Reject…"), permissions=["change"])
    def reject(self, request, queryset):
        return self._decide_after_confirmation(
            request, queryset, action="reject", title=str(_("Reject")),
            service=services.draft_reject, comment_required=True,
            done=lambda n: ngettext("%(count)d draft rejected.",
                                    "%(count)d drafts rejected.", n) % {"count": n},
        )

    @admin.action(description=_("Retry generation of failed drafts"), permissions=["change"])
    def retry_generation(self, request, queryset):
        """One job per failed draft, with the parameters of the job that failed."""
        count = 0
        for draft in queryset:
            try:
                services.draft_retry_generation(draft=draft, user=request.user)
            except PermissionDenied as exc:
                self.message_user(request, str(exc) or _("Permission denied."), messages.ERROR)
                return
            except services.WorkflowError as exc:
                self.message_user(request, f"{draft}: {exc}", messages.ERROR)
            else:
                count += 1
        if count:
            self.message_user(
                request,
                ngettext("Generation of %(count)d draft was sent again.",
                         "Generation of %(count)d drafts was sent again.", count)
                % {"count": count},
                messages.SUCCESS,
            )


@admin.register(Revision)
class RevisionAdmin(HistoryAdmin):
    list_display = ("__str__", "number", "author", "text_preview", "model_version", "created_at")
    list_filter = ("draft__kind",)
    list_select_related = ("draft__product", "author", "candidate__model_version")
    search_fields = ("draft__product__sku", "draft__product__title", "text")
    date_hierarchy = "created_at"
    fields = ("draft", "number", "parent", "author", "candidate", "model_version", "text",
              "created_at")
    readonly_fields = ("model_version",)

    @admin.display(description=_("text"))
    def text_preview(self, revision: Revision) -> str:
        return preview(revision.text)

    @admin.display(description=_("model version"))
    def model_version(self, revision: Revision) -> str:
        return str(revision.candidate.model_version) if revision.candidate else "—"


@admin.register(Candidate)
class CandidateAdmin(HistoryAdmin):
    list_display = ("__str__", "rank", "model_version", "job", "score", "completion_tokens",
                    "text_preview", "created_at")
    list_filter = ("model_version", "draft__kind")
    list_select_related = ("draft__product", "model_version", "job")
    search_fields = ("draft__product__sku", "draft__product__title", "text")
    date_hierarchy = "created_at"
    fields = ("draft", "job", "model_version", "index", "rank", "score", "text", "flags_display",
              "prompt_display", "params_display", "seed", "prompt_tokens", "completion_tokens",
              "generation_ms", "created_at")
    readonly_fields = ("flags_display", "prompt_display", "params_display")

    @admin.display(description=_("text"))
    def text_preview(self, candidate: Candidate) -> str:
        return preview(candidate.text)

    @admin.display(description=_("flags"))
    def flags_display(self, candidate: Candidate) -> str:
        return pretty_json(candidate.flags)

    @admin.display(description=_("prompt"))
    def prompt_display(self, candidate: Candidate) -> str:
        return pretty_json(candidate.prompt)

    @admin.display(description=_("params"))
    def params_display(self, candidate: Candidate) -> str:
        return pretty_json(candidate.params)


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(HistoryAdmin):
    list_display = ("draft", "revision_number", "decision", "reviewer", "comment_preview",
                    "created_at")
    list_filter = ("decision",)
    # The action checkbox labels each row with str(decision), which names the revision's draft.
    list_select_related = ("draft__product", "revision__draft__product", "reviewer")
    search_fields = ("draft__product__sku", "comment", "reviewer__username")
    date_hierarchy = "created_at"

    @admin.display(description=_("revision"), ordering="revision__number")
    def revision_number(self, decision: ReviewDecision) -> int:
        return decision.revision.number

    @admin.display(description=_("comment"))
    def comment_preview(self, decision: ReviewDecision) -> str:
        return preview(decision.comment)


@admin.register(DraftComment)
class DraftCommentAdmin(HistoryAdmin):
    """Comments are written on the draft page (``comment_add``); here they can be looked up."""

    list_display = ("draft", "author", "text_preview", "created_at")
    list_select_related = ("draft__product", "author")
    search_fields = ("draft__product__sku", "text", "author__username")
    date_hierarchy = "created_at"
    fields = ("draft", "author", "text", "created_at")
    readonly_fields = ("created_at",)

    @admin.display(description=_("text"))
    def text_preview(self, comment: DraftComment) -> str:
        return preview(comment.text)


@admin.register(DraftPresence)
class DraftPresenceAdmin(HistoryAdmin):
    """Who had which draft open, as the pages' heartbeats last said."""

    list_display = ("draft", "user", "since", "last_seen")
    list_select_related = ("draft__product", "user")
    search_fields = ("draft__product__sku", "user__username")
    fields = ("draft", "user", "since", "last_seen")


# --- Records ------------------------------------------------------------------------------------

@admin.register(CatalogImport)
class CatalogImportAdmin(HistoryAdmin):
    """Which file each product came from: exports filter by it, Shopify zips are named after it."""

    list_display = ("filename", "format", "product_count", "created_by", "created_at")
    list_filter = ("format",)
    list_select_related = ("created_by",)
    search_fields = ("filename", "created_by__username")
    date_hierarchy = "created_at"
    fields = ("filename", "format", "columns_display", "created_by", "created_at")
    readonly_fields = ("columns_display",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(product_total=Count("products"))

    @admin.display(description=_("products"), ordering="product_total")
    def product_count(self, record: CatalogImport) -> int:
        return record.product_total

    @admin.display(description=_("columns"))
    def columns_display(self, record: CatalogImport) -> str:
        return pretty_json(record.columns)


@admin.register(ExportBatch)
class ExportBatchAdmin(HistoryAdmin):
    list_display = ("__str__", "format", "status", "count", "changed_only", "created_by",
                    "destination", "created_at")
    list_filter = ("format", "status", "changed_only")
    list_select_related = ("created_by",)
    search_fields = ("destination", "created_by__username", "file")
    date_hierarchy = "created_at"
    fields = ("format", "status", "count", "total", "filters_display", "changed_only", "bom",
              "formula_guard", "destination", "file", "size", "error", "created_by",
              "created_at", "started_at", "finished_at")
    readonly_fields = ("filters_display",)

    @admin.display(description=_("filters"))
    def filters_display(self, batch: ExportBatch) -> str:
        return pretty_json(batch.filters)


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


# --- API tokens ---------------------------------------------------------------------------------

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


# --- Accounts -----------------------------------------------------------------------------------

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


# --- Fine-tuning and A/B tests --------------------------------------------------------------------


@admin.register(FineTuneRun)
class FineTuneRunAdmin(HistoryAdmin):
    """Runs are requested on the Training page (or ``manage.py finetune``) and written by the
    worker; here they are looked up."""

    list_display = ("name", "base", "status", "phase", "step", "total_steps", "loss", "result",
                    "created_at")
    list_filter = ("status",)
    search_fields = ("name", "base__name")
    list_select_related = ("base", "result")
    readonly_fields = [f.name for f in FineTuneRun._meta.fields]


@admin.register(ABTest)
class ABTestAdmin(HistoryAdmin):
    list_display = ("__str__", "model_a", "model_b", "seed", "created_at")
    list_select_related = ("model_a", "model_b")
    readonly_fields = [f.name for f in ABTest._meta.fields]
