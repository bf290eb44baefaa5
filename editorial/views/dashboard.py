from django.views.decorators.http import require_GET

from .. import selectors
from ._common import HtmxHttpRequest, member_required, render_page


@member_required
@require_GET
def home(request: HtmxHttpRequest):
    context = {
        "state_counts": selectors.dashboard_counts(),
        "jobs": selectors.job_recent_list(),
    }
    return render_page(request, "dashboard.html", context)
