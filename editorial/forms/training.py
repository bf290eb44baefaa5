"""Training data downloads and fine-tuning runs."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .. import selectors
from .fields import ShortListChoiceField, brand_filter_field, kind_filter_field


class TrainingDataForm(forms.Form):
    """Which approved edits become training data (GET: statistics; ``download=1``: the file)."""

    format = forms.ChoiceField(
        label=_("Format"), choices=[("sft", _("SFT (chat messages)")),
                                    ("dpo", _("DPO (preference pairs)"))], initial="sft",
        required=False,
    )
    brand = brand_filter_field(by_name=True)
    kind = kind_filter_field()
    since = forms.DateField(
        label=_("Approved since"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    min_edit = forms.FloatField(
        label=_("Least edit distance for a preference pair"), required=False, min_value=0,
        max_value=1, initial=0.1,
    )
    split = forms.ChoiceField(
        label=_("Split"), required=False, initial="all",
        choices=[("all", _("All")), ("train", _("Train")), ("validation", _("Validation"))],
    )

    def options(self) -> dict:
        data = self.cleaned_data
        since = data.get("since")
        return {
            "format": data.get("format") or "sft",
            "brand": data["brand"].name if data.get("brand") else None,
            "kind": data["kind"].code if data.get("kind") else None,
            "since": since,
            "min_edit": 0.1 if data.get("min_edit") is None else data["min_edit"],
            "split": data.get("split") or "all",
        }



class FineTuneForm(forms.Form):
    base = ShortListChoiceField(
        label=_("Base model version"), queryset=selectors.model_version_ready_list(),
        empty_label=None,
    )
    name = forms.SlugField(label=_("Name of the new model version"), max_length=200)
    epochs = forms.IntegerField(label=_("Epochs"), min_value=1, max_value=50, initial=3)
    lr = forms.FloatField(label=_("Learning rate"), min_value=1e-7, max_value=1e-2,
                          initial=5e-5)
    batch_size = forms.IntegerField(label=_("Batch size"), min_value=1, max_value=256,
                                    initial=4)
    lora = forms.BooleanField(label=_("LoRA (train adapters, merged on save)"), required=False)
    brand = brand_filter_field(by_name=True)
    kind = kind_filter_field()

