"""Model versions, generation jobs and their items, fine-tune runs, A/B tests."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import services
from ..models import ABTest, FineTuneRun, GenerationJob, JobItem, ModelVersion
from ._common import PRETTY_JSON, HistoryAdmin, pretty_json, preview


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

