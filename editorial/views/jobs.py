from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HTMX_STOP_POLLING

from .. import policies, selectors, services
from ._common import HtmxHttpRequest, member_required, paginate, render_page, wants_fragment

JOBS_PER_PAGE = 25


@member_required
@require_GET
def job_list(request: HtmxHttpRequest):
    context = {"page_obj": paginate(request, selectors.job_list(), JOBS_PER_PAGE)}
    return render_page(request, "jobs/list.html", context, fragment="job-list")


def _job_progress(request: HtmxHttpRequest, job, *, status: int = 200):
    """The job page, or for htmx its progress fragment; a finished job's fragment answers
    286 so htmx stops polling (the fragment has no trigger either)."""
    context = {"job": job}
    if not wants_fragment(request):
        context["drafts"] = selectors.job_draft_list(job=job)
        params = job.params if isinstance(job.params, dict) else {}
        context["params"] = sorted(params.items())
    response = render_page(request, "jobs/detail.html", context, fragment="job-progress",
                           status=status)
    if wants_fragment(request) and job.is_finished and status == 200:
        response.status_code = HTMX_STOP_POLLING
    return response


@member_required
@require_GET
def job_detail(request: HtmxHttpRequest, job_id: int):
    return _job_progress(request, selectors.job_detail(job_id=job_id))


@member_required
@require_POST
def job_cancel(request: HtmxHttpRequest, job_id: int):
    policies.require(policies.can_generate(request.user), _("Only editors can cancel jobs."))
    job = selectors.job_detail(job_id=job_id)
    services.generation_job_cancel(job=job, user=request.user)
    if wants_fragment(request):
        return _job_progress(request, selectors.job_detail(job_id=job_id))
    messages.success(request, _("Job #%(id)d was cancelled.") % {"id": job.pk})
    return redirect("job_detail", job_id=job.pk)
