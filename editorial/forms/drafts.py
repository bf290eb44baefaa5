"""The draft page: the editor, candidates, review, comments, restoring and comparing revisions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from generation.checks import TEXT_MAX_CEILING

from ..models import DraftComment, ReviewDecision
from .messages import TOO_LONG, text_too_long_message


class RevisionForm(forms.Form):
    text = forms.CharField(
        label=_("Text"),
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "true"}),
    )
    base_revision_id = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, max_chars: int = TEXT_MAX_CEILING, **kwargs: Any) -> None:
        """``max_chars``: the longest text accepted (``selectors.draft_text_max_chars``). The
        textarea gets no ``maxlength``: a browser would cut a pasted text without a word."""
        super().__init__(*args, **kwargs)
        self.max_chars = max_chars

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        length = len(text.replace("\r\n", "\n"))
        if length > self.max_chars:
            raise forms.ValidationError(
                text_too_long_message(length=length, limit=self.max_chars), code="max_length")
        return text



class CandidateChooseForm(forms.Form):
    candidate_id = forms.IntegerField(widget=forms.HiddenInput)
    base_revision_id = forms.IntegerField(required=False, widget=forms.HiddenInput)



class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=ReviewDecision.Decision.choices)
    revision_id = forms.IntegerField(widget=forms.HiddenInput)
    comment = forms.CharField(
        label=_("Comment"), required=False, max_length=DraftComment.MAX_LENGTH,
        error_messages=TOO_LONG, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required when requesting changes or rejecting."),
    )

    def clean(self):
        cleaned = super().clean()
        decision = cleaned.get("decision")
        if (
            decision
            and decision != ReviewDecision.Decision.APPROVE
            and not (cleaned.get("comment") or "").strip()
        ):
            self.add_error("comment", _("Say what needs to change: a comment is required."))
        return cleaned



class CommentForm(forms.Form):
    text = forms.CharField(
        label=_("Add a comment"), max_length=DraftComment.MAX_LENGTH, error_messages=TOO_LONG,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_comment_%s")  # the review form has its own "comment"
        super().__init__(*args, **kwargs)



class RevisionRestoreForm(forms.Form):
    revision_id = forms.IntegerField(widget=forms.HiddenInput)
    base_revision_id = forms.IntegerField(required=False, widget=forms.HiddenInput)



def _when(moment) -> str:
    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")



class RevisionCompareForm(forms.Form):
    """Two of the draft's revisions (by number) to diff; by default the current one against
    the revision it was made from."""

    old = forms.TypedChoiceField(label=_("From revision"), coerce=int)
    new = forms.TypedChoiceField(label=_("To revision"), coerce=int)

    def __init__(self, *args: Any, revisions: list, current=None, **kwargs: Any) -> None:
        """``revisions``: the draft's revisions, newest first (as the draft page loads them)."""
        kwargs.setdefault("auto_id", "id_compare_%s")
        super().__init__(*args, **kwargs)
        choices = [
            (r.number, f"r{r.number} · {r.author_name} · {_when(r.created_at)}")
            for r in revisions
        ]
        self.fields["old"].choices = self.fields["new"].choices = choices
        self.by_number = {r.number: r for r in revisions}
        self.defaults: dict[str, int] = {}
        if revisions:
            new = current or revisions[0]
            by_pk = {r.pk: r for r in revisions}
            older = [r for r in revisions if r.number < new.number]
            old = by_pk.get(new.parent_id) or (older[0] if older else new)
            self.defaults = {"old": old.number, "new": new.number}
        if not self.is_bound:
            self.initial = dict(self.defaults)

    def pair(self):
        """The (old, new) revisions chosen, or the defaults when the choice is not valid."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else self.defaults
        return self.by_number.get(data.get("old")), self.by_number.get(data.get("new"))

