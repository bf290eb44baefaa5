"""Filter fields that several forms offer, so that they are labelled and filled alike."""

from __future__ import annotations

from django import forms
from django.forms.models import ModelChoiceIterator
from django.utils.translation import gettext_lazy as _

from .. import selectors


class _FetchedChoices(ModelChoiceIterator):
    """The choices read with one plain query. Django's own iterator streams them through a
    server-side cursor on PostgreSQL (DECLARE … WITH HOLD, FETCH, CLOSE): three round trips
    and a materialised cursor for a list of a few brands, ~1 ms a select on a queue page."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset:
            yield self.choice(obj)


class ShortListChoiceField(forms.ModelChoiceField):
    """A model choice among a few rows (brands, kinds, model versions)."""

    iterator = _FetchedChoices


def brand_filter_field(*, by_name: bool = False) -> ShortListChoiceField:
    """Optional brand; ``by_name`` takes the brand's name (exports, training data) where the
    filter pages take its id."""
    return ShortListChoiceField(
        label=_("Brand"), queryset=selectors.brand_list(), required=False,
        empty_label=_("All brands"), to_field_name="name" if by_name else None,
    )


def kind_filter_field() -> ShortListChoiceField:
    return ShortListChoiceField(
        label=_("Kind"), queryset=selectors.content_kind_list(), required=False,
        empty_label=_("All kinds"),
    )
