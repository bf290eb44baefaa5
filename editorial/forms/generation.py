"""Asking for drafts: the product filter, decoding parameters, generate and regenerate."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from generation.params import InvalidParams

from .. import selectors
from ..models import Locale, Product
from .fields import ShortListChoiceField, brand_filter_field
from .messages import _blank


class ProductFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"), required=False, max_length=200,
        widget=forms.SearchInput(attrs={"placeholder": _("SKU or title")}),
    )
    brand = brand_filter_field()
    category = forms.ChoiceField(label=_("Category"), required=False)
    locale = forms.ChoiceField(
        label=_("Locale"), required=False, choices=_blank(_("All locales")) + Locale.choices
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = _blank(_("All categories")) + [
            (c, c) for c in selectors.category_list()
        ]

    def filters(self) -> dict[str, Any]:
        """The valid filters; an invalid value (a stale brand id in a bookmark) is ignored."""
        self.is_valid()
        return {k: v for k, v in getattr(self, "cleaned_data", {}).items() if v}



class DecodingParamsForm(forms.Form):
    """Model version and decoding parameters, shared by the generate and regenerate forms.
    Ranges are checked by ``generation.params`` (through the services); its errors are attached
    to these fields by ``add_refusal``."""

    PARAM_FIELDS = ("candidates", "best_of", "temperature", "top_k", "top_p",
                    "repetition_penalty", "max_new_tokens", "seed")

    model_version = ShortListChoiceField(
        label=_("Model version"), queryset=selectors.model_version_ready_list(), required=False,
        empty_label=_("Default model"),
    )
    candidates = forms.IntegerField(
        label=_("Candidates per draft"), required=False,
        widget=forms.NumberInput(attrs={"step": 1}),
    )
    best_of = forms.IntegerField(
        label=_("Sampled per draft (best of)"), required=False,
        widget=forms.NumberInput(attrs={"step": 1}),
        help_text=_("More candidates are written than shown and the checks keep the best; "
                    "0 writes only the ones shown."),
    )
    temperature = forms.FloatField(
        label=_("Temperature"), required=False, widget=forms.NumberInput(attrs={"step": "any"})
    )
    top_k = forms.IntegerField(label=_("Top-k"), required=False)
    top_p = forms.FloatField(
        label=_("Top-p"), required=False, widget=forms.NumberInput(attrs={"step": "any"})
    )
    repetition_penalty = forms.FloatField(
        label=_("Repetition penalty"), required=False,
        widget=forms.NumberInput(attrs={"step": "any"}),
    )
    max_new_tokens = forms.IntegerField(
        label=_("Max new tokens"), required=False,
        help_text=_("An upper limit; each content kind also has its own."),
    )
    seed = forms.IntegerField(label=_("Seed"), required=False)

    def params(self) -> dict[str, Any]:
        """The decoding parameters the user filled in; empty ones take the defaults."""
        return {
            name: self.cleaned_data[name]
            for name in self.PARAM_FIELDS
            if self.cleaned_data.get(name) is not None
        }

    def add_refusal(self, exc: Exception) -> None:
        """Show why the generation services refused the request: parameter errors next to
        their fields, anything else above the form."""
        if isinstance(exc, InvalidParams):
            for field, message in exc.errors.items():
                self.add_error(field if field in self.fields else None, gettext(message))
        else:
            self.add_error(None, str(exc))



class GenerateForm(DecodingParamsForm):
    """What to generate for which products, and how."""

    SCOPE_SELECTED = "selected"
    SCOPE_MATCHING = "matching"

    # Set by the submit button that was pressed; pressing Enter submits the selected products.
    scope = forms.ChoiceField(
        choices=[(SCOPE_SELECTED, _("Selected products")),
                 (SCOPE_MATCHING, _("All products matching the filter"))],
        required=False, widget=forms.HiddenInput,
    )
    products = forms.ModelMultipleChoiceField(
        queryset=Product.objects.all(), required=False, widget=forms.MultipleHiddenInput
    )
    kinds = forms.MultipleChoiceField(
        label=_("Content kinds"), widget=forms.CheckboxSelectMultiple,
    )
    compare_with = ShortListChoiceField(
        label=_("A/B test against"), queryset=selectors.model_version_ready_list(),
        required=False, empty_label=_("No A/B test"),
        help_text=_("Split the products at random (by the seed) between the model version "
                    "above and this one; the dashboard compares the two."),
    )

    def __init__(self, *args: Any, param_defaults: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kinds = list(selectors.content_kind_list())
        self.fields["kinds"].choices = [(k.code, k.display_label) for k in kinds]
        if not self.is_bound:
            self.fields["kinds"].initial = [kinds[0].code] if kinds else []
            default = next((v for v in self.fields["model_version"].queryset if v.is_default),
                           None)
            self.fields["model_version"].initial = default.pk if default else None
            for name, value in (param_defaults or {}).items():
                if name in self.fields:
                    self.fields[name].initial = value



class RegenerateForm(DecodingParamsForm):
    """New candidates for one draft with other decoding parameters or another model. Ranges are
    checked by ``generation.params`` through the service; its errors are attached here."""

    def __init__(self, *args: Any, last_job=None, **kwargs: Any) -> None:
        """``last_job``: the draft's latest job, whose parameters and model are the starting
        point."""
        kwargs.setdefault("auto_id", "id_regenerate_%s")
        super().__init__(*args, **kwargs)
        if not self.is_bound and last_job is not None:
            params = last_job.params if isinstance(last_job.params, dict) else {}
            for name in self.PARAM_FIELDS:
                if name in params:
                    self.fields[name].initial = params[name]
            self.fields["model_version"].initial = last_job.model_version_id

