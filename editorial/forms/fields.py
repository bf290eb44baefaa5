"""Filter fields that several forms offer, so that they are labelled and filled alike."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .. import selectors


def brand_filter_field(*, by_name: bool = False) -> forms.ModelChoiceField:
    """Optional brand; ``by_name`` takes the brand's name (exports, training data) where the
    filter pages take its id."""
    return forms.ModelChoiceField(
        label=_("Brand"), queryset=selectors.brand_list(), required=False,
        empty_label=_("All brands"), to_field_name="name" if by_name else None,
    )


def kind_filter_field() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        label=_("Kind"), queryset=selectors.content_kind_list(), required=False,
        empty_label=_("All kinds"),
    )
