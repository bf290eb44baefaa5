"""Drafts and what hangs off them: revisions, candidates, review decisions, comments, presence.
Review actions go through the services, after a confirmation page."""

from __future__ import annotations

from typing import NamedTuple

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.template import engines
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, ngettext_lazy

from .. import services
from ..models import Candidate, Draft, DraftComment, DraftPresence, ReviewDecision, Revision
from ._common import HistoryAdmin, ReadOnlyInline, pretty_json, preview


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



class _Decision(NamedTuple):
    title: str
    service: str  # the name in ``services``, looked up when deciding
    comment_required: bool
    done: str  # the success message, formatted with ``count``


DECISIONS = {
    "approve_current_revision": _Decision(
        _("Approve"), "draft_approve", False,
        ngettext_lazy("%(count)d draft approved.", "%(count)d drafts approved.", "count")),
    "request_changes": _Decision(
        _("Request changes"), "draft_request_changes", True,
        ngettext_lazy("Changes requested on %(count)d draft.",
                      "Changes requested on %(count)d drafts.", "count")),
    "reject": _Decision(
        _("Reject"), "draft_reject", True,
        ngettext_lazy("%(count)d draft rejected.", "%(count)d drafts rejected.", "count")),
}



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

    def _each(self, request, drafts, act) -> int:
        """Run ``act(draft)`` on each draft and report refusals one by one; a permission refusal
        stops the lot (it would refuse every draft). Returns how many went through."""
        count = 0
        for draft in drafts:
            try:
                act(draft)
            except PermissionDenied as exc:
                self.message_user(request, str(exc) or _("Permission denied."), messages.ERROR)
                return count
            except services.WorkflowError as exc:
                self.message_user(request, f"{draft}: {exc}", messages.ERROR)
            else:
                count += 1
        return count

    def _decide(self, request, queryset, decision: _Decision, *, seen: dict[int, int],
                comment: str = "") -> None:
        service = getattr(services, decision.service)
        kwargs = {"comment": comment} if comment else {}
        missing = _("It was not on the confirmation page; select it again.")
        confirmed = []
        for draft in queryset:
            if draft.pk in seen:
                confirmed.append(draft)
            else:
                self.message_user(request, f"{draft}: {missing}", messages.ERROR)
        count = self._each(request, confirmed, lambda draft: service(
            draft=draft, user=request.user, revision_id=seen[draft.pk], **kwargs))
        if count:
            self.message_user(request, decision.done % {"count": count}, messages.SUCCESS)

    @staticmethod
    def _seen(request) -> dict[int, int]:
        seen: dict[int, int] = {}
        for pair in request.POST.getlist("seen"):
            draft_id, _sep, revision_id = pair.partition(":")
            if draft_id.isdigit() and revision_id.isdigit():
                seen[int(draft_id)] = int(revision_id)
        return seen

    def _decide_after_confirmation(self, request, queryset, action: str):
        """Show the selected drafts' texts (and ask for the comment), then decide each on the
        revision that page showed."""
        decision = DECISIONS[action]
        if request.POST.get("post") == "yes":
            form = DecisionCommentForm(request.POST,
                                       comment_required=decision.comment_required)
            if form.is_valid():
                self._decide(request, queryset, decision, seen=self._seen(request),
                             comment=form.cleaned_data["comment"])
                return None
        else:
            form = DecisionCommentForm(comment_required=decision.comment_required)
        queryset = queryset.select_related("current_revision", "product", "kind")
        decided = list(queryset.values_list("pk", "current_revision_id"))
        shown = list(queryset[:50])
        context = {
            **self.admin_site.each_context(request),
            "title": str(decision.title),
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
        return self._decide_after_confirmation(request, queryset, "approve_current_revision")

    @admin.action(description=_("Request changes…"), permissions=["change"])
    def request_changes(self, request, queryset):
        return self._decide_after_confirmation(request, queryset, "request_changes")

    @admin.action(description=_("Reject…"), permissions=["change"])
    def reject(self, request, queryset):
        return self._decide_after_confirmation(request, queryset, "reject")

    @admin.action(description=_("Retry generation of failed drafts"), permissions=["change"])
    def retry_generation(self, request, queryset):
        """One job per failed draft, with the parameters of the job that failed."""
        count = self._each(request, queryset, lambda draft: services.draft_retry_generation(
            draft=draft, user=request.user))
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

