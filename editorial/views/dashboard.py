"""The dashboard: drafts per state, jobs with live progress, and how each model version's drafts
fare in review (charts drawn as inline SVG from the numbers below, each with a table)."""

from __future__ import annotations

from django.views.decorators.http import require_GET
from django_htmx.http import HTMX_STOP_POLLING

from .. import charts, metrics, policies, selectors
from ._common import HtmxHttpRequest, member_required, render_page, wants_fragment

JOBS_FRAGMENT = "dashboard-jobs"


def _jobs_context() -> dict:
    jobs = selectors.job_kind_labels(jobs=list(selectors.job_recent_list()))
    return {"jobs": jobs, "jobs_running": any(not job.is_finished for job in jobs)}


@member_required
@require_GET
def home(request: HtmxHttpRequest):
    if wants_fragment(request) and request.htmx.target == JOBS_FRAGMENT:
        # The jobs panel polls itself; once every listed job is done it asks htmx to stop.
        context = _jobs_context()
        response = render_page(request, "dashboard.html", context, fragment=JOBS_FRAGMENT)
        if not context["jobs_running"]:
            response.status_code = HTMX_STOP_POLLING
        return response
    state_counts = selectors.draft_state_counts()
    version_metrics = metrics.model_version_metrics()
    context = {
        "state_counts": state_counts,
        "state_chart": charts.state_chart(state_counts),
        "version_metrics": [
            (m, charts.duration_text(m.median_seconds_to_approval)) for m in version_metrics
        ],
        "acceptance_chart": charts.acceptance_chart(version_metrics),
        "edit_distance_chart": charts.edit_distance_chart(version_metrics),
        "any_reviewed": any(m.reviewed for m in version_metrics),
        "ab_reports": charts.ab_reports(),
        "is_admin": policies.ADMIN in policies.user_roles(request.user),
        **_jobs_context(),
    }
    return render_page(request, "dashboard.html", context)
