"""The review queue: filters, state counts and pages; claim, assign, unassign and bulk actions on
the drafts ticked in it; the keyboard shortcuts' help."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from .. import policies, selectors, services
from ..forms import QueueActionForm, QueueFilterForm
from ._common import CountedPaginator, HtmxHttpRequest, member_required, render_page, wants_fragment

Action = QueueActionForm


@member_required
@require_GET
def draft_queue(request: HtmxHttpRequest):
    return _queue(request, request.GET)


@member_required
@require_POST
def draft_queue_bulk(request: HtmxHttpRequest):
    """A bulk action on the ticked drafts, or a row's claim / unassign button. htmx gets the
    results fragment with a report; a plain form post is redirected back to the same queue."""
    user = request.user
    policies.require(policies.can_edit(user), _("Only editors can change drafts."))
    assignees = _assignees(user)
    form = QueueActionForm(request.POST, user=user, assignees=assignees)
    query = _query(request.POST.get("query", ""))
    if not form.is_valid():
        return _queue(request, query, action_form=form, assignees=assignees, status=400)
    action, ids = form.operation()
    drafts = selectors.draft_bulk_list(draft_ids=ids)
    if action in {Action.CLAIM, Action.UNASSIGN} and not drafts:
        raise Http404(_("No such draft."))
    try:
        result = _run(action, drafts=drafts, user=user, data=form.cleaned_data)
    except services.WorkflowError as exc:
        form.add_error(None, str(exc))
        return _queue(request, query, action_form=form, assignees=assignees, status=400)
    report = _report(action, result, assignee=form.cleaned_data.get("assignee"))
    if wants_fragment(request):
        return _queue(request, query, report=report, assignees=assignees)
    (messages.warning if result.skipped else messages.success)(request, report["summary"])
    for draft, reason in result.skipped:
        messages.warning(request, _("%(sku)s · %(kind)s: %(reason)s") % {
            "sku": draft.product.sku, "kind": draft.kind.display_label, "reason": reason})
    url = reverse("draft_queue")
    return redirect(f"{url}?{query.urlencode()}" if query else url)


@member_required
@require_GET
def shortcuts_help(request: HtmxHttpRequest):
    """The keyboard shortcuts dialog, fetched by shortcuts.js on pages that do not include it."""
    return render(request, "drafts/_queue_shortcuts.html")


# --- Helpers ------------------------------------------------------------------------------------

def _query(raw: str) -> QueryDict:
    """The queue's query string that a bulk form carried (filters, sort, page size, page)."""
    return QueryDict(raw or "")


def _assignees(user) -> list:
    """Whom ``user`` may assign drafts to (besides themselves): the editors, for reviewers and
    admins; nobody else for editors."""
    return list(selectors.queue_assignee_list()) if policies.can_assign_others(user) else []


def _queue(
    request: HtmxHttpRequest,
    query: QueryDict,
    *,
    assignees: list | None = None,
    action_form: QueueActionForm | None = None,
    report: dict[str, Any] | None = None,
    status: int = 200,
):
    """The queue page for ``query`` (its filters, sort, page size and page), or for htmx its
    results fragment."""
    user = request.user
    if assignees is None:
        assignees = _assignees(user)
    filter_users = assignees or list(selectors.queue_assignee_list())
    filter_form = QueueFilterForm(query, assignees=filter_users)
    filters = filter_form.filters()
    sort = filter_form.sort_key()
    drafts = selectors.draft_queue(user=user, filters=filters, sort=sort)
    state_counts = selectors.draft_queue_state_counts(user=user, filters=filters)
    current_state = filters.get("state", "")
    total_count = sum(item.count for item in state_counts)
    matching = total_count if not current_state else sum(
        item.count for item in state_counts if item.state == current_state)
    page_obj = CountedPaginator(drafts, filter_form.page_size(), count=matching,
                                rows=selectors.draft_queue_rows).get_page(query.get("page"))
    selected: set[int] = set()
    if action_form is None:
        action_form = QueueActionForm(user=user, assignees=assignees,
                                      initial={"query": query.urlencode()})
    elif action_form.is_bound:
        selected = {int(v) for v in action_form.data.getlist("drafts") if v.isdigit()}
    context = {
        "filter_form": filter_form,
        "action_form": action_form,
        "page_obj": page_obj,
        "rows": _rows(page_obj.object_list, user=user, selected=selected),
        "query": query,
        "sort": sort,
        "current_state": current_state,
        "state_counts": state_counts,
        "total_count": total_count,
        "report": report,
        # The state's hidden filter field is updated out of band when only results are swapped.
        "oob": wants_fragment(request),
    }
    return render_page(request, "drafts/queue.html", context, fragment="queue-results",
                       status=status)


@dataclass(frozen=True, slots=True)
class QueueRow:
    """What a queue row shows, worked out in Python: the template only prints it. Fifty rows
    of lookups, filters, includes and per-row translations cost a queue page at 100,000
    products more than its SQL."""

    pk: int
    url: str
    sku: str
    title: str
    excerpt: str
    kind: str
    brand: str
    state: str
    state_label: str
    flagged: bool
    usable: bool | None
    assignee: str
    # "claim", "unassign" or "" (no button), and the button's accessible name.
    action: str
    action_label: str
    select_label: str
    # "draft id:revision id", the revision the editor saw when ticking the row.
    seen: str
    checked: bool
    updated_iso: str
    updated: str


def _row_action(draft, *, user, can_edit: bool, can_assign_others: bool) -> str:
    if not can_edit:
        return ""
    if not draft.assignee_id:
        generated = draft.state not in {draft.State.GENERATING, draft.State.FAILED}
        return "claim" if generated else ""
    if draft.assignee_id == user.pk or can_assign_others:
        return "unassign"
    return ""


def _rows(drafts, *, user, selected: set[int]) -> list[QueueRow]:
    can_edit = policies.can_edit(user)
    can_assign_others = policies.can_assign_others(user)
    action_labels = {"claim": _("Claim %(sku)s · %(kind)s"),
                     "unassign": _("Unassign %(sku)s · %(kind)s"), "": ""}
    select_label = _("Select %(sku)s · %(kind)s")
    rows = []
    for draft in drafts:
        product, kind = draft.product, str(draft.kind.display_label)
        names = {"sku": product.sku, "kind": kind}
        action = _row_action(draft, user=user, can_edit=can_edit,
                             can_assign_others=can_assign_others)
        updated = timezone.localtime(draft.updated_at)
        rows.append(QueueRow(
            pk=draft.pk, url=reverse("draft_detail", args=[draft.pk]), sku=product.sku,
            title=product.title,
            excerpt=Truncator(draft.excerpt or "").chars(120),
            kind=kind, brand=product.brand.name if product.brand_id else "—",
            state=draft.state, state_label=draft.get_state_display(),
            flagged=draft.flagged, usable=draft.usable,
            assignee=draft.assignee.get_username() if draft.assignee_id else "—",
            action=action, action_label=action_labels[action] % names if action else "",
            select_label=select_label % names,
            seen=f"{draft.pk}:{draft.current_revision_id}" if draft.current_revision_id else "",
            checked=draft.pk in selected, updated_iso=updated.isoformat(),
            updated=formats.date_format(updated, "SHORT_DATETIME_FORMAT"),
        ))
    return rows


def _one(service, *, draft, user) -> services.BulkResult:
    result = services.BulkResult()
    try:
        result.done.append(service(draft=draft, user=user))
    except services.WorkflowError as exc:
        result.skipped.append((draft, str(exc)))
    return result


def _run(action: str, *, drafts, user, data: dict[str, Any]) -> services.BulkResult:
    if action == Action.CLAIM:
        return _one(services.draft_claim, draft=drafts[0], user=user)
    if action == Action.UNASSIGN:
        return _one(services.draft_unassign, draft=drafts[0], user=user)
    if action == Action.ASSIGN:
        return services.draft_bulk_assign(drafts=drafts, user=user, assignee=data["assignee"])
    if action == Action.APPROVE:
        return services.draft_bulk_approve(drafts=drafts, user=user, seen=data["seen"],
                                           comment=data["comment"])
    if action == Action.REJECT:
        return services.draft_bulk_reject(drafts=drafts, user=user, seen=data["seen"],
                                          comment=data["comment"])
    raise ValueError(action)


def _done_text(action: str, count: int, assignee) -> str:
    params = {"count": count}
    if action == Action.APPROVE:
        return ngettext("%(count)d draft approved", "%(count)d drafts approved", count) % params
    if action == Action.REJECT:
        return ngettext("%(count)d draft rejected", "%(count)d drafts rejected", count) % params
    if action == Action.CLAIM:
        return ngettext("%(count)d draft claimed", "%(count)d drafts claimed", count) % params
    if action == Action.UNASSIGN:
        return ngettext("%(count)d draft unassigned", "%(count)d drafts unassigned",
                        count) % params
    params["name"] = assignee.get_username() if assignee is not None else ""
    return ngettext("%(count)d draft assigned to %(name)s",
                    "%(count)d drafts assigned to %(name)s", count) % params


def _report(action: str, result: services.BulkResult, *, assignee=None) -> dict[str, Any]:
    """What the page says after an action: "3 drafts approved, 2 skipped", and why each
    skipped draft was skipped."""
    summary = _done_text(action, len(result.done), assignee)
    if result.skipped:
        summary = _("%(done)s, %(skipped)s:") % {
            "done": summary,
            "skipped": ngettext("%(count)d skipped", "%(count)d skipped",
                                len(result.skipped)) % {"count": len(result.skipped)},
        }
    else:
        summary = _("%(done)s.") % {"done": summary}
    return {"action": action, "summary": summary, "done": result.done,
            "skipped": result.skipped}
