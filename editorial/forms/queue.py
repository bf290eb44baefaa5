"""The queue: its filters and its bulk actions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .. import selectors
from ..models import Draft
from .fields import ShortListChoiceField, brand_filter_field, kind_filter_field
from .messages import _blank


class QueueFilterForm(forms.Form):
    """The queue's filters, sort and page size, from the query string (so a URL is a view
    someone can share). Values that are no longer valid (a deleted brand in a bookmark) are
    ignored rather than refused."""

    SORT_CHOICES = [
        ("sku", _("SKU (A–Z)")),
        ("-sku", _("SKU (Z–A)")),
        ("-updated", _("Updated (newest first)")),
        ("updated", _("Updated (oldest first)")),
        ("state", _("State (workflow order)")),
        ("-state", _("State (reverse workflow order)")),
        ("title", _("Title (A–Z)")),
        ("-title", _("Title (Z–A)")),
    ]
    PAGE_SIZES = (25, 50, 100)
    DEFAULT_PAGE_SIZE = 50
    FLAG_CHOICES = [
        ("", _("Any")),
        ("flagged", _("Has flags")),
        ("clean", _("No flags")),
    ]
    USABLE_CHOICES = [
        ("", _("Any")),
        ("usable", _("Usable")),
        ("unusable", _("Not usable")),
    ]
    FILTER_FIELDS = ("q", "state", "brand", "category", "kind", "assignee", "model_version",
                     "flags", "usable", "job")

    q = forms.CharField(
        label=_("Search"), required=False, max_length=200,
        widget=forms.SearchInput(attrs={"placeholder": _("SKU, title or text")}),
    )
    # Chosen with the state tabs above the results; kept here so other filters keep it.
    state = forms.ChoiceField(
        required=False, choices=_blank("") + Draft.State.choices, widget=forms.HiddenInput,
    )
    brand = brand_filter_field()
    category = forms.ChoiceField(label=_("Category"), required=False)
    kind = kind_filter_field()
    assignee = forms.ChoiceField(label=_("Assignee"), required=False)
    model_version = ShortListChoiceField(
        label=_("Model version"), queryset=selectors.model_version_list(), required=False,
        empty_label=_("All model versions"),
    )
    flags = forms.ChoiceField(label=_("Flags"), required=False, choices=FLAG_CHOICES)
    usable = forms.ChoiceField(label=_("First draft"), required=False, choices=USABLE_CHOICES)
    sort = forms.ChoiceField(label=_("Sort"), required=False, choices=SORT_CHOICES)
    per_page = forms.TypedChoiceField(
        label=_("Per page"), required=False, coerce=int, empty_value=DEFAULT_PAGE_SIZE,
        choices=[(n, str(n)) for n in PAGE_SIZES], initial=DEFAULT_PAGE_SIZE,
    )
    job = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args: Any, assignees=None, **kwargs: Any) -> None:
        """``assignees``: the users to offer in the assignee filter (default: the editors)."""
        super().__init__(*args, **kwargs)
        if self.is_bound:
            # Show the defaults as chosen when the query string leaves them out.
            self.data = self.data.copy()
            for name, default in (("sort", selectors.QUEUE_DEFAULT_SORT),
                                  ("per_page", str(self.DEFAULT_PAGE_SIZE))):
                if not self.data.get(name):
                    self.data[name] = default
        self.fields["category"].choices = _blank(_("All categories")) + [
            (c, c) for c in selectors.category_list()
        ]
        self.fields["assignee"].choices = [
            ("", _("Anyone")),
            ("mine", _("Me (my drafts)")),
            ("unassigned", _("Unassigned")),
        ] + [(str(u.pk), u.get_username())
             for u in (selectors.queue_assignee_list() if assignees is None else assignees)]

    def _valid_data(self) -> dict[str, Any]:
        """The cleaned values of the fields that are valid; the invalid ones are left out."""
        self.is_valid()
        return getattr(self, "cleaned_data", {})

    def filters(self) -> dict[str, Any]:
        data = self._valid_data()
        return {k: data[k] for k in self.FILTER_FIELDS if data.get(k)}

    def sort_key(self) -> str:
        return self._valid_data().get("sort") or selectors.QUEUE_DEFAULT_SORT

    def page_size(self) -> int:
        return self._valid_data().get("per_page") or self.DEFAULT_PAGE_SIZE



class QueueActionForm(forms.Form):
    """A bulk action on the drafts ticked in the queue (``action`` + ``drafts``), or a row's own
    button (``claim`` / ``unassign`` = the draft's id). ``query`` is the queue's query string,
    to show the same filtered page afterwards."""

    ASSIGN = "assign"
    APPROVE = "approve"
    REJECT = "reject"
    CLAIM = "claim"
    UNASSIGN = "unassign"
    MAX_DRAFTS = 500

    action = forms.ChoiceField(
        required=False,
        choices=[(ASSIGN, _("Assign")), (APPROVE, _("Approve")), (REJECT, _("Reject"))],
    )
    drafts = forms.TypedMultipleChoiceField(required=False, coerce=int)
    claim = forms.IntegerField(required=False, min_value=1)
    unassign = forms.IntegerField(required=False, min_value=1)
    assignee = forms.ChoiceField(label=_("Assign to"), required=False)
    comment = forms.CharField(
        label=_("Comment"), required=False, max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": _("Required to reject")}),
    )
    query = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
    # "draft id:revision id" for each row the queue showed: a review decision applies to the
    # text the reviewer saw, never to one saved after the page was drawn.
    seen = forms.MultipleChoiceField(required=False)

    def __init__(self, *args: Any, user, assignees=(), **kwargs: Any) -> None:
        """``assignees``: whom ``user`` may assign drafts to besides themselves."""
        kwargs.setdefault("auto_id", "id_%s_bulk")  # the filter form has an assignee too
        super().__init__(*args, **kwargs)
        self.user = user
        self._assignees = {str(u.pk): u for u in assignees}
        self.fields["assignee"].choices = [("me", _("Me"))] + [
            (pk, u.get_username()) for pk, u in self._assignees.items() if u.pk != user.pk
        ]
        # Any id is accepted here; the ones that are not drafts are not found later.
        ids = self.data.getlist("drafts") if hasattr(self.data, "getlist") else []
        self.fields["drafts"].choices = [(v, v) for v in ids if str(v).isdigit()]
        pairs = self.data.getlist("seen") if hasattr(self.data, "getlist") else []
        self.fields["seen"].choices = [(v, v) for v in pairs]

    def clean_drafts(self) -> list[int]:
        drafts = self.cleaned_data["drafts"]
        if len(drafts) > self.MAX_DRAFTS:
            raise forms.ValidationError(
                _("Select at most %(max)d drafts at a time."), params={"max": self.MAX_DRAFTS}
            )
        return drafts

    def clean_seen(self) -> dict[int, int]:
        """The revision each row showed, by draft id; malformed pairs are ignored (such a
        draft is then skipped as one whose text the reviewer may not have seen)."""
        seen: dict[int, int] = {}
        for pair in self.cleaned_data["seen"]:
            draft_id, _sep, revision_id = str(pair).partition(":")
            if draft_id.isdigit() and revision_id.isdigit():
                seen[int(draft_id)] = int(revision_id)
        return seen

    def clean_assignee(self):
        value = self.cleaned_data["assignee"]
        if value == "me":
            return self.user
        return self._assignees.get(value)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("claim") or cleaned.get("unassign"):
            return cleaned
        action = cleaned.get("action")
        if not action:
            raise forms.ValidationError(_("Choose an action."))
        if not cleaned.get("drafts") and "drafts" not in self.errors:
            self.add_error("drafts", _("Select at least one draft."))
        if action == self.ASSIGN and not cleaned.get("assignee"):
            self.add_error("assignee", _("Choose whom to assign the drafts to."))
        if action == self.REJECT and not (cleaned.get("comment") or "").strip():
            self.add_error("comment", _("Say why: a comment is required to reject."))
        return cleaned

    def operation(self) -> tuple[str, list[int]]:
        """(action, draft ids) of a valid form; a row's button wins over the bulk action."""
        data = self.cleaned_data
        if data.get("claim"):
            return self.CLAIM, [data["claim"]]
        if data.get("unassign"):
            return self.UNASSIGN, [data["unassign"]]
        return data["action"], data["drafts"]

