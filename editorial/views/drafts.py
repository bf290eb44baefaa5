"""The queue and the draft page: read, edit, choose a candidate, submit, claim, review."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HTMX_STOP_POLLING

from generation.params import InvalidParams

from .. import policies, selectors, services
from ..forms import (
    CandidateChooseForm,
    DraftFilterForm,
    RegenerateForm,
    ReviewForm,
    RevisionForm,
)
from ..models import Candidate, Draft, ReviewDecision
from ._common import (
    HtmxHttpRequest,
    member_required,
    paginate,
    product_facts_context,
    render_page,
    wants_fragment,
)

DRAFTS_PER_PAGE = 50
State = Draft.State
SUBMITTABLE = {State.READY, State.IN_EDIT, State.CHANGES_REQUESTED}
UNCLAIMABLE = {State.GENERATING, State.FAILED}


@member_required
@require_GET
def draft_queue(request: HtmxHttpRequest):
    filter_form = DraftFilterForm(request.GET)
    drafts = selectors.draft_queue(user=request.user, filters=filter_form.filters())
    context = {
        "filter_form": filter_form,
        "page_obj": paginate(request, drafts, DRAFTS_PER_PAGE),
        "states": Draft.State,
    }
    return render_page(request, "drafts/queue.html", context, fragment="queue-results")


def _workspace_context(
    request: HtmxHttpRequest,
    draft: Draft,
    *,
    revision_form: RevisionForm | None = None,
    review_form: ReviewForm | None = None,
    regenerate_form: RegenerateForm | None = None,
    conflict: services.RevisionConflict | None = None,
    notice: str = "",
    error: str = "",
) -> dict[str, Any]:
    user = request.user
    current = draft.current_revision
    candidates = selectors.draft_candidate_list(draft=draft)
    revisions = selectors.draft_revision_list(draft=draft)
    origin = selectors.revision_origin_candidate(
        revision=current, revisions=revisions, candidates=candidates
    )
    diff = selectors.text_diff(origin.text, current.text) if origin and current else []
    if revision_form is None:
        revision_form = RevisionForm(initial={
            "text": current.text if current else "",
            "base_revision_id": current.pk if current else None,
        })
    if review_form is None:
        review_form = ReviewForm(initial={"revision_id": draft.current_revision_id})
    can_edit = policies.can_edit(user)
    can_generate = policies.can_generate(user)
    jobs = selectors.draft_job_list(draft=draft)
    if regenerate_form is None and can_generate:
        regenerate_form = RegenerateForm(last_job=jobs[0] if jobs else None)
    conflict_diff = []
    if conflict is not None:
        conflict_diff = selectors.text_diff(conflict.current.text, conflict.revision.text)
    return {
        **product_facts_context(draft.product),
        "draft": draft,
        "current": current,
        "candidates": candidates,
        "revisions": revisions,
        "decisions": selectors.draft_decision_list(draft=draft),
        "origin": origin,
        "diff": diff,
        "diff_changed": selectors.diff_has_changes(diff),
        "revision_form": revision_form,
        "review_form": review_form,
        "conflict": conflict,
        "conflict_diff": conflict_diff,
        "notice": notice,
        "error": error,
        "char_limit": selectors.draft_char_limit(draft=draft),
        "checks": (selectors.draft_text_checks(draft=draft, text=current.text)
                   if current else []),
        "show_editor": can_edit and draft.state in Draft.EDITABLE,
        "show_submit": can_edit and draft.state in SUBMITTABLE and current is not None,
        "show_claim": (can_edit and draft.state not in UNCLAIMABLE
                       and draft.assignee_id != user.pk),
        "show_review": policies.can_review(user) and draft.state == State.IN_REVIEW,
        "show_choose": can_edit and draft.state in Draft.EDITABLE,
        "show_retry": can_generate and draft.state == State.FAILED,
        "regenerate_form": regenerate_form,
        **_jobs_context(jobs),
    }


def _jobs_context(jobs) -> dict[str, Any]:
    return {"draft_jobs": jobs, "jobs_running": any(not job.is_finished for job in jobs)}


def _workspace(request: HtmxHttpRequest, draft_id: int, *, status: int = 200, **kwargs: Any):
    """The draft page, or for htmx the workspace fragment, freshly loaded."""
    draft = selectors.draft_detail(draft_id=draft_id)
    context = _workspace_context(request, draft, **kwargs)
    return render_page(request, "drafts/detail.html", context, fragment="draft-workspace",
                       status=status)


def _done(request: HtmxHttpRequest, draft_id: int, notice: str):
    if wants_fragment(request):
        return _workspace(request, draft_id, notice=notice)
    messages.success(request, notice)
    return redirect("draft_detail", draft_id=draft_id)


@member_required
@require_GET
def draft_detail(request: HtmxHttpRequest, draft_id: int):
    return _workspace(request, draft_id)


@member_required
@require_POST
def draft_save(request: HtmxHttpRequest, draft_id: int):
    policies.require(policies.can_edit(request.user), _("Only editors can change copy."))
    draft = selectors.draft_detail(draft_id=draft_id)
    form = RevisionForm(request.POST)
    if not form.is_valid():
        return _workspace(request, draft_id, status=400, revision_form=form)
    text = form.cleaned_data["text"]
    try:
        revision = services.revision_save(
            draft=draft, user=request.user, text=text,
            base_revision_id=form.cleaned_data["base_revision_id"],
        )
    except services.RevisionConflict as exc:
        # Keep the editor's text in the editor, based on the revision now current, so saving
        # again (after merging by hand) works.
        kept = RevisionForm(initial={"text": text, "base_revision_id": exc.current.pk})
        return _workspace(request, draft_id, status=409, revision_form=kept, conflict=exc)
    except services.WorkflowError as exc:
        return _workspace(request, draft_id, status=409, revision_form=form, error=str(exc))
    return _done(request, draft_id, _("Saved revision %(number)d.") % {"number": revision.number})


@member_required
@require_POST
def candidate_choose(request: HtmxHttpRequest, draft_id: int):
    policies.require(policies.can_edit(request.user), _("Only editors can change copy."))
    draft = selectors.draft_detail(draft_id=draft_id)
    form = CandidateChooseForm(request.POST)
    if not form.is_valid():
        return _workspace(request, draft_id, status=400, error=_("Choose a candidate."))
    candidate = get_object_or_404(Candidate, pk=form.cleaned_data["candidate_id"], draft=draft)
    try:
        revision = services.candidate_choose(
            draft=draft, candidate=candidate, user=request.user,
            base_revision_id=form.cleaned_data["base_revision_id"],
        )
    except services.RevisionConflict as exc:
        kept = RevisionForm(initial={"text": candidate.text, "base_revision_id": exc.current.pk})
        return _workspace(request, draft_id, status=409, revision_form=kept, conflict=exc)
    except services.WorkflowError as exc:
        return _workspace(request, draft_id, status=409, error=str(exc))
    return _done(request, draft_id,
                 _("Candidate %(rank)d is now revision %(number)d.")
                 % {"rank": candidate.rank + 1, "number": revision.number})


@member_required
@require_POST
def draft_submit(request: HtmxHttpRequest, draft_id: int):
    policies.require(policies.can_edit(request.user), _("Only editors can submit drafts."))
    draft = selectors.draft_detail(draft_id=draft_id)
    try:
        services.draft_submit(draft=draft, user=request.user)
    except services.WorkflowError as exc:
        return _workspace(request, draft_id, status=409, error=str(exc))
    return _done(request, draft_id, _("Submitted for review."))


@member_required
@require_POST
def draft_claim(request: HtmxHttpRequest, draft_id: int):
    policies.require(policies.can_edit(request.user), _("Only editors can claim drafts."))
    draft = selectors.draft_detail(draft_id=draft_id)
    try:
        services.draft_claim(draft=draft, user=request.user)
    except services.WorkflowError as exc:
        return _workspace(request, draft_id, status=409, error=str(exc))
    return _done(request, draft_id, _("The draft is assigned to you."))


@member_required
@require_POST
def draft_check(request: HtmxHttpRequest, draft_id: int):
    """Content checks for the text in the editor, as the editor types (nothing is saved)."""
    policies.require(policies.can_edit(request.user), _("Only editors can change copy."))
    if not wants_fragment(request):
        return redirect("draft_detail", draft_id=draft_id)
    draft = selectors.draft_detail(draft_id=draft_id)
    text = request.POST.get("text", "").replace("\r\n", "\n").strip()
    context = {"draft": draft, "checks": selectors.draft_text_checks(draft=draft, text=text)}
    return render_page(request, "drafts/detail.html", context, fragment="live-checks")


_DECIDE = {
    ReviewDecision.Decision.APPROVE: (services.draft_approve, gettext_lazy("Approved.")),
    ReviewDecision.Decision.REQUEST_CHANGES: (services.draft_request_changes,
                                              gettext_lazy("Changes requested.")),
    ReviewDecision.Decision.REJECT: (services.draft_reject, gettext_lazy("Rejected.")),
}


@member_required
@require_POST
def draft_review(request: HtmxHttpRequest, draft_id: int):
    """Approve, request changes or reject the revision the reviewer saw (``revision_id``)."""
    policies.require(policies.can_review(request.user), _("Only reviewers can review drafts."))
    draft = selectors.draft_detail(draft_id=draft_id)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        return _workspace(request, draft_id, status=400, review_form=form)
    decide, notice = _DECIDE[form.cleaned_data["decision"]]
    try:
        decide(
            draft=draft, user=request.user, revision_id=form.cleaned_data["revision_id"],
            comment=form.cleaned_data["comment"],
        )
    except services.WorkflowError as exc:
        # StaleRevision included: the page reloads with the revision that is current now.
        return _workspace(request, draft_id, status=409, error=str(exc))
    return _done(request, draft_id, str(notice))


@member_required
@require_GET
def draft_jobs(request: HtmxHttpRequest, draft_id: int):
    """The draft's generation progress, polled by its page while a job runs (286 stops it)."""
    draft = selectors.draft_detail(draft_id=draft_id)
    if not wants_fragment(request):
        return redirect("draft_detail", draft_id=draft_id)
    context = {"draft": draft, **_jobs_context(selectors.draft_job_list(draft=draft))}
    response = render_page(request, "drafts/detail.html", context, fragment="draft-jobs")
    if not context["jobs_running"]:
        response.status_code = HTMX_STOP_POLLING
    return response


@member_required
@require_POST
def draft_retry(request: HtmxHttpRequest, draft_id: int):
    """Generate a failed draft again, alone, with the parameters of the job that failed."""
    policies.require(policies.can_generate(request.user), _("Only editors can generate."))
    draft = selectors.draft_detail(draft_id=draft_id)
    try:
        job = services.draft_retry_generation(draft=draft, user=request.user)
    except services.WorkflowError as exc:
        return _workspace(request, draft_id, status=409, error=str(exc))
    return _done(request, draft_id, _("Job #%(id)d generates this draft again.") % {"id": job.pk})


@member_required
@require_POST
def draft_regenerate(request: HtmxHttpRequest, draft_id: int):
    """New candidates for this draft with the parameters in the form; the text stays."""
    policies.require(policies.can_generate(request.user), _("Only editors can generate."))
    draft = selectors.draft_detail(draft_id=draft_id)
    form = RegenerateForm(request.POST)
    if form.is_valid():
        try:
            job = services.draft_regenerate(
                draft=draft, user=request.user, params=form.params(),
                model_version=form.cleaned_data["model_version"],
            )
        except (InvalidParams, services.WorkflowError) as exc:
            form.add_refusal(exc)
        else:
            return _done(request, draft_id,
                         _("Job #%(id)d is generating new candidates; they appear below when "
                           "it is done.") % {"id": job.pk})
    return _workspace(request, draft_id, status=400, regenerate_form=form)
