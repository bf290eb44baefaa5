"""The queue and the draft page: read, edit, choose a candidate, submit, claim, review."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HTMX_STOP_POLLING

from generation.params import InvalidParams
from generation.text import plain_text

from .. import diffing, policies, selectors, services
from ..forms import (
    CandidateChooseForm,
    CommentForm,
    RegenerateForm,
    ReviewForm,
    RevisionCompareForm,
    RevisionForm,
    RevisionRestoreForm,
    text_too_long_message,
)
from ..models import Candidate, Draft, DraftPresence, ReviewDecision, Revision
from ._common import (
    HtmxHttpRequest,
    member_required,
    product_facts_context,
    render_page,
    wants_fragment,
)


def _editor_text(text: str | None) -> str:
    """The text as the services store it (and as the checks' spans count it)."""
    return plain_text(text)


def _checks_context(draft: Draft, text: str, *, origin: Candidate | None) -> dict[str, Any]:
    """The live checks for ``text``: flags laid over the text, the character count against the
    kind's (or brand's) limit, and the diff from the candidate the edits started from."""
    checks = selectors.draft_text_checks(draft=draft, text=text)
    marked = diffing.mark_flags(text, checks)
    char_limit = selectors.draft_char_limit(draft=draft)
    max_chars = selectors.draft_text_max_chars(draft=draft)
    diff = diffing.text_diff(origin.text, text) if origin is not None else []
    return {
        # Past this length only the length is checked; the editor is told why.
        "text_too_long": (text_too_long_message(length=len(text), limit=max_chars)
                          if len(text) > max_chars else ""),
        "checks": checks,
        "marked": marked,
        "check_counts": marked.counts,
        "char_count": len(text),
        "char_limit": char_limit,
        "over_limit": bool(char_limit) and len(text) > char_limit,
        "origin": origin,
        "diff": diff,
        "diff_changed": diffing.diff_has_changes(diff),
    }


def _thread_context(draft: Draft, *, decisions=None, comment_form: CommentForm | None = None,
                    added=None) -> dict[str, Any]:
    if decisions is None:
        decisions = selectors.draft_decision_list(draft=draft)
    _focus_first_error(comment_form)
    return {
        "thread": selectors.draft_thread(
            comments=selectors.draft_comment_list(draft=draft), decisions=decisions
        ),
        "comment_form": comment_form or CommentForm(),
        "added_comment_id": added.pk if added is not None else None,
    }


def _compare_context(form: RevisionCompareForm, *, focus: bool = False) -> dict[str, Any]:
    old, new = form.pair()
    revision_diff = diffing.text_diff(old.text, new.text) if old and new else []
    return {
        "compare_form": form,
        "compare_old": old,
        "compare_new": new,
        "revision_diff": revision_diff,
        "revision_diff_changed": diffing.diff_has_changes(revision_diff),
        "compare_focus": focus,
    }


def _focus_first_error(*forms) -> None:
    """After a refused submission, copydesk.js moves focus to the first field with an error."""
    for form in forms:
        if form is None or not form.is_bound:
            continue
        for name in form.errors:
            if name in form.fields and not form.fields[name].widget.is_hidden:
                form.fields[name].widget.attrs["data-focus"] = ""
                return


def _workspace_context(
    request: HtmxHttpRequest,
    draft: Draft,
    *,
    revision_form: RevisionForm | None = None,
    review_form: ReviewForm | None = None,
    regenerate_form: RegenerateForm | None = None,
    comment_form: CommentForm | None = None,
    compare_form: RevisionCompareForm | None = None,
    conflict: services.RevisionConflict | None = None,
    notice: str = "",
    error: str = "",
) -> dict[str, Any]:
    user = request.user
    current = draft.current_revision
    candidates = selectors.draft_candidate_list(draft=draft)
    # Each candidate's example_sources: the approved copy its prompt was written from.
    selectors.candidate_example_sources(candidates=candidates)
    for candidate in candidates:
        candidate.marked = diffing.mark_flags(candidate.text, candidate.flags or [])
        candidate.flag_id_prefix = f"candidate-{candidate.pk}-"
    first_draft = selectors.draft_first_draft(candidates=candidates)
    revisions = selectors.draft_revision_list(draft=draft)
    origin = selectors.revision_origin_candidate(
        revision=current, revisions=revisions, candidates=candidates
    )
    if revision_form is None:
        revision_form = RevisionForm(initial={
            "text": current.text if current else "",
            "base_revision_id": current.pk if current else None,
        })
    if review_form is None:
        review_form = ReviewForm(initial={"revision_id": draft.current_revision_id})
    # Hooks for static/js/shortcuts.js and the screen-reader description of the editor.
    revision_form.fields["text"].widget.attrs.update(
        {"data-shortcut": "edit", "aria-describedby": "char-count check-status"}
    )
    review_form.fields["comment"].widget.attrs["data-shortcut"] = "request-changes"
    _focus_first_error(revision_form, review_form, comment_form, regenerate_form)
    can_generate = policies.can_generate(user)
    actions = policies.draft_actions(user, draft)
    jobs = selectors.draft_job_list(draft=draft)
    if regenerate_form is None and can_generate:
        regenerate_form = RegenerateForm(last_job=jobs[0] if jobs else None)
    conflict_diff = []
    if conflict is not None:
        conflict_diff = diffing.text_diff(conflict.current.text, conflict.revision.text)
    # The checks and the diff follow what is in the editor (after a conflict: the editor's
    # own text), else the current revision.
    if actions["edit"]:
        checked_text = _editor_text(revision_form["text"].value())
    else:
        checked_text = current.text if current else ""
    approved = draft.approved_revision
    approval_diff = []
    if approved is not None and current is not None and approved.pk != current.pk:
        approval_diff = diffing.text_diff(approved.text, current.text)
    decisions = selectors.draft_decision_list(draft=draft)
    if compare_form is None:
        compare_form = RevisionCompareForm(revisions=revisions, current=current)
    return {
        **product_facts_context(draft.product),
        **_checks_context(draft, checked_text, origin=origin),
        **_thread_context(draft, decisions=decisions, comment_form=comment_form),
        **_compare_context(compare_form),
        "draft": draft,
        "current": current,
        "approved": approved,
        "approval_diff": approval_diff,
        "candidates": candidates,
        "first_draft": first_draft,
        "revisions": revisions,
        "decisions": decisions,
        "revision_form": revision_form,
        "review_form": review_form,
        "conflict": conflict,
        "conflict_diff": conflict_diff,
        "notice": notice,
        "error": error,
        "present": ([] if wants_fragment(request)
                    else selectors.draft_presence_others(draft=draft, user=user)),
        "presence_poll_seconds": DraftPresence.POLL_SECONDS,
        "actions": actions,
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
    if "old" in request.GET or "new" in request.GET:
        # The revision comparison, without JavaScript: the page with the chosen pair.
        draft = selectors.draft_detail(draft_id=draft_id)
        compare = RevisionCompareForm(
            request.GET, revisions=selectors.draft_revision_list(draft=draft),
            current=draft.current_revision,
        )
        return _workspace(request, draft_id, compare_form=compare)
    return _workspace(request, draft_id)


def refusals_on_page(view):
    """A service's refusal answers 409 with the draft page: after a ``RevisionConflict`` the
    conflict view, with the text the editor meant (kept as a revision) in the editor, based on
    the revision now current, so saving it again (after merging by hand) makes it current; after
    any other ``WorkflowError`` the reason. Permission refusals (403) go to the 403 handler."""

    @functools.wraps(view)
    def wrapped(request: HtmxHttpRequest, draft_id: int, *args, **kwargs):
        try:
            return view(request, draft_id, *args, **kwargs)
        except services.RevisionConflict as exc:
            kept = RevisionForm(initial={"text": exc.revision.text,
                                         "base_revision_id": exc.current.pk})
            return _workspace(request, draft_id, status=409, revision_form=kept, conflict=exc)
        except services.WorkflowError as exc:
            return _workspace(request, draft_id, status=409, error=str(exc))

    return wrapped


@member_required
@require_POST
@refusals_on_page
def draft_save(request: HtmxHttpRequest, draft_id: int):
    policies.check_edit(request.user)
    draft = selectors.draft_detail(draft_id=draft_id)
    form = RevisionForm(request.POST, max_chars=selectors.draft_text_max_chars(draft=draft))
    if not form.is_valid():
        return _workspace(request, draft_id, status=400, revision_form=form)
    text = form.cleaned_data["text"]
    try:
        revision = services.revision_save(
            draft=draft, user=request.user, text=text,
            base_revision_id=form.cleaned_data["base_revision_id"],
        )
    except services.RevisionConflict:
        raise  # the conflict view, from refusals_on_page
    except services.WorkflowError as exc:
        # Unlike the other actions, the typed text stays in the editor with the reason.
        return _workspace(request, draft_id, status=409, revision_form=form, error=str(exc))
    return _done(request, draft_id, _("Saved revision %(number)d.") % {"number": revision.number})


def _checked_post(request: HtmxHttpRequest, draft_id: int, check: Callable[[Any], None],
                  form_class):
    """The permission check first (a refused user hears why, not what to fix), then the draft
    and the posted form."""
    check(request.user)
    return selectors.draft_detail(draft_id=draft_id), form_class(request.POST)


def _edit_from(request: HtmxHttpRequest, draft_id: int, form_class, model, field: str, *,
               missing: str, act: Callable[[Draft, Any, int | None], str]):
    """An edit that starts from one of the draft's own rows (a candidate, an old revision),
    whose id the form posts as ``field``; ``act(draft, row, base_revision_id)`` returns the
    notice."""
    draft, form = _checked_post(request, draft_id, policies.check_edit, form_class)
    if not form.is_valid():
        return _workspace(request, draft_id, status=400, error=missing)
    row = get_object_or_404(model, pk=form.cleaned_data[field], draft=draft)
    return _done(request, draft_id, act(draft, row, form.cleaned_data["base_revision_id"]))


@member_required
@require_POST
@refusals_on_page
def candidate_choose(request: HtmxHttpRequest, draft_id: int):
    def choose(draft, candidate, base_revision_id):
        revision = services.candidate_choose(draft=draft, candidate=candidate, user=request.user,
                                             base_revision_id=base_revision_id)
        return (_("Candidate %(rank)d is now revision %(number)d.")
                % {"rank": candidate.rank + 1, "number": revision.number})

    return _edit_from(request, draft_id, CandidateChooseForm, Candidate, "candidate_id",
                      act=choose,
                      missing=_("Choose a candidate."))


def _one_step(service: Callable[..., Any], notice: Callable[[Any], str], doc: str):
    """A button on the draft page that calls one service with the draft and the user;
    ``notice(result)`` says what happened."""
    @member_required
    @require_POST
    @refusals_on_page
    def view(request: HtmxHttpRequest, draft_id: int):
        result = service(draft=selectors.draft_detail(draft_id=draft_id), user=request.user)
        return _done(request, draft_id, notice(result))

    view.__doc__ = doc
    return view


draft_submit = _one_step(services.draft_submit, lambda _draft: _("Submitted for review."),
                         "Send the draft to review.")
draft_claim = _one_step(services.draft_claim, lambda _draft: _("The draft is assigned to you."),
                        "Assign the draft to the user.")
draft_retry = _one_step(
    services.draft_retry_generation,
    lambda job: _("Job #%(id)d generates this draft again.") % {"id": job.pk},
    "Generate a failed draft again, alone, with the parameters of the job that failed.")


@member_required
@require_POST
def draft_check(request: HtmxHttpRequest, draft_id: int):
    """Content checks for the text in the editor, as the editor types (nothing is saved)."""
    policies.check_edit(request.user)
    if not wants_fragment(request):
        return redirect("draft_detail", draft_id=draft_id)
    draft = selectors.draft_detail(draft_id=draft_id)
    origin = selectors.draft_candidate(
        draft=draft, candidate_id=request.POST.get("origin_candidate_id")
    )
    context = {
        "draft": draft,
        **_checks_context(draft, _editor_text(request.POST.get("text")), origin=origin),
    }
    return render_page(request, "drafts/detail.html", context, fragment="check-response")


_DECIDE = {
    ReviewDecision.Decision.APPROVE: (services.draft_approve, gettext_lazy("Approved.")),
    ReviewDecision.Decision.REQUEST_CHANGES: (services.draft_request_changes,
                                              gettext_lazy("Changes requested.")),
    ReviewDecision.Decision.REJECT: (services.draft_reject, gettext_lazy("Rejected.")),
}


@member_required
@require_POST
@refusals_on_page
def draft_review(request: HtmxHttpRequest, draft_id: int):
    """Approve, request changes or reject the revision the reviewer saw (``revision_id``)."""
    draft, form = _checked_post(request, draft_id, policies.check_review, ReviewForm)
    if not form.is_valid():
        return _workspace(request, draft_id, status=400, review_form=form)
    decide, notice = _DECIDE[form.cleaned_data["decision"]]
    # A StaleRevision refusal reloads the page with the revision that is current now.
    decide(draft=draft, user=request.user, revision_id=form.cleaned_data["revision_id"],
           comment=form.cleaned_data["comment"])
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
def draft_regenerate(request: HtmxHttpRequest, draft_id: int):
    """New candidates for this draft with the parameters in the form; the text stays."""
    draft, form = _checked_post(request, draft_id, policies.check_generate, RegenerateForm)
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


@member_required
@require_POST
@refusals_on_page
def revision_restore(request: HtmxHttpRequest, draft_id: int):
    """Make an older revision's text current again, as a new revision."""
    def restore(draft, revision, base_revision_id):
        restored = services.revision_restore(draft=draft, user=request.user, revision=revision,
                                             base_revision_id=base_revision_id)
        return (_("Revision %(old)d restored as revision %(new)d.")
                % {"old": revision.number, "new": restored.number})

    return _edit_from(request, draft_id, RevisionRestoreForm, Revision, "revision_id",
                      act=restore,
                      missing=_("Choose a revision to restore."))


@member_required
@require_GET
def draft_compare(request: HtmxHttpRequest, draft_id: int):
    """The diff between any two of the draft's revisions (``old`` and ``new`` numbers)."""
    if not wants_fragment(request):
        url = reverse("draft_detail", args=[draft_id])
        return redirect(f"{url}?{request.GET.urlencode()}#history")
    draft = selectors.draft_detail(draft_id=draft_id)
    form = RevisionCompareForm(
        request.GET, revisions=selectors.draft_revision_list(draft=draft),
        current=draft.current_revision,
    )
    context = {"draft": draft, **_compare_context(form, focus=True)}
    return render_page(request, "drafts/detail.html", context, fragment="revision-diff")


@member_required
@require_POST
def draft_comment(request: HtmxHttpRequest, draft_id: int):
    """Add a comment to the draft's discussion; htmx gets the thread back."""
    draft = selectors.draft_detail(draft_id=draft_id)
    form = CommentForm(request.POST)
    added = None
    if form.is_valid():
        try:
            added = services.comment_add(draft=draft, user=request.user,
                                         text=form.cleaned_data["text"])
        except services.WorkflowError as exc:
            form.add_error("text", str(exc))
    if added is not None and not wants_fragment(request):
        messages.success(request, _("Comment added."))
        return redirect(reverse("draft_detail", args=[draft_id]) + "#thread")
    if added is None and not wants_fragment(request):
        return _workspace(request, draft_id, status=400, comment_form=form)
    context = {
        "draft": draft,
        **_thread_context(draft, comment_form=None if added else form, added=added),
    }
    return render_page(request, "drafts/detail.html", context, fragment="thread",
                       status=200 if added else 400)


@member_required
@require_POST
def draft_presence(request: HtmxHttpRequest, draft_id: int):
    """The draft page's heartbeat: record that this user has it open and answer with who else
    does. ``leave`` (sent as the page closes) forgets the user at once."""
    draft = selectors.draft_detail(draft_id=draft_id)
    if request.POST.get("leave"):
        services.presence_leave(draft=draft, user=request.user)
        return HttpResponse(status=204)
    services.presence_beat(draft=draft, user=request.user)
    if not wants_fragment(request):
        return redirect("draft_detail", draft_id=draft_id)
    context = {
        "draft": draft,
        "present": selectors.draft_presence_others(draft=draft, user=request.user),
    }
    return render_page(request, "drafts/detail.html", context, fragment="presence-list")
