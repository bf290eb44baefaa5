from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HTMX_STOP_POLLING, reswap, retarget

from .. import policies, selectors, services
from ._common import HtmxHttpRequest, member_required, paginate, render_page, wants_fragment

JOBS_PER_PAGE = 25


@member_required
@require_GET
def job_list(request: HtmxHttpRequest):
    page_obj = paginate(request, selectors.job_list(), JOBS_PER_PAGE)
    page_obj.object_list = selectors.job_kind_labels(jobs=list(page_obj.object_list))
    context = {"page_obj": page_obj}
    return render_page(request, "jobs/list.html", context, fragment="job-list")


def _job_progress(request: HtmxHttpRequest, job):
    """The job page, or for htmx its progress fragment while the job runs.

    Once the job has finished, htmx gets the whole job section instead, retargeted to replace
    the page's: the drafts' states and the timings outside the progress panel changed with the
    job, and nothing else polls for them. It answers 286 so htmx stops polling (the section has
    no trigger either)."""
    context = {"job": job}
    finished = job.is_finished
    fragment = "job-section" if finished else "job-progress"
    if finished or not wants_fragment(request):
        selectors.job_kind_labels(jobs=[job])
        context["drafts"] = selectors.job_draft_list(job=job)
        params = job.params if isinstance(job.params, dict) else {}
        context["params"] = sorted(params.items())
    response = render_page(request, "jobs/detail.html", context, fragment=fragment)
    if wants_fragment(request) and finished:
        response = retarget(response, "#job-section")
        response = reswap(response, "outerHTML")
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
