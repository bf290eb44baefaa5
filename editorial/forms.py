"""Forms parse and type what the browser sent; the rules themselves live in services and in
generation.params, whose errors the views attach to these forms' fields."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import formats, timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from generation.checks import TEXT_MAX_CEILING, TEXT_TOO_LONG
from generation.params import InvalidParams

from . import selectors
from .models import Draft, DraftComment, Locale, Product, ReviewDecision


def upload_too_large_message(*, size: int, limit: int, filename: str = "") -> str:
    """What the import page says about a file over the limit; ``size`` may be the request's
    length (a little more than the file's), hence "about"."""
    return _too_large(filename=filename, size=filesizeformat(size), limit=filesizeformat(limit))


def _too_large(*, filename: str, size: str, limit: str) -> str:
    params = {"file": filename, "size": size, "limit": limit}
    if filename:
        return gettext("%(file)s is about %(size)s; files of up to %(limit)s can be imported. "
                       "Nothing was imported: split it into smaller files.") % params
    return gettext("This upload is about %(size)s; files of up to %(limit)s can be imported. "
                   "Nothing was imported: split the file into smaller ones.") % params


def _blank(label):
    return [("", label)]


# What a text field over its limit says: the limit and the text's length.
TOO_LONG = {"max_length": _("This text is %(show_value)d characters long; at most "
                            "%(limit_value)d characters are allowed.")}


def text_too_long_message(*, length: int, limit: int) -> str:
    """Why the copy's text is refused: its length and the most the desk takes for it."""
    return gettext(TEXT_TOO_LONG) % {"length": length, "max": limit}


class ProductFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"), required=False, max_length=200,
        widget=forms.SearchInput(attrs={"placeholder": _("SKU or title")}),
    )
    brand = forms.ModelChoiceField(
        label=_("Brand"), queryset=selectors.brand_list(), required=False,
        empty_label=_("All brands"),
    )
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

    model_version = forms.ModelChoiceField(
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
    compare_with = forms.ModelChoiceField(
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


class ImportForm(forms.Form):
    FORMAT_CHOICES = [
        ("auto", _("Detect automatically")),
        ("csv", "CSV"),
        ("shopify", "Shopify CSV"),
        ("jsonl", "JSON Lines"),
    ]

    file = forms.FileField(label=_("Catalog file"))
    format = forms.ChoiceField(label=_("Format"), choices=FORMAT_CHOICES, initial="auto")
    brand_name = forms.CharField(
        label=_("Brand"), required=False, max_length=200,
        widget=forms.TextInput(attrs={"list": "brand-names", "autocomplete": "off"}),
        help_text=_("Optional: sets the brand of every product in the file."),
    )
    locale = forms.ChoiceField(
        label=_("Locale"), required=False,
        choices=_blank(_("From the file, else detected")) + Locale.choices,
        help_text=_("For rows without a locale column."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limit = settings.COPYDESK_MAX_IMPORT_BYTES
        file = self.fields["file"]
        file.help_text = gettext("At most %(limit)s.") % {"limit": filesizeformat(limit)}
        # copydesk.js refuses a file over the limit as soon as it is chosen, before any upload.
        file.widget.attrs.update({
            "data-max-bytes": str(limit),
            "data-too-large": _too_large(filename="{file}", size="{size}",
                                         limit=filesizeformat(limit)),
        })

    @classmethod
    def refused(cls, *, size: int, limit: int, filename: str = "") -> ImportForm:
        """An empty form showing why the upload was refused (before its fields were read)."""
        form = cls()
        form.cleaned_data = {}
        form.add_error("file", upload_too_large_message(size=size, limit=limit,
                                                        filename=filename))
        return form

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.COPYDESK_MAX_IMPORT_BYTES
        if upload.size > limit:
            raise forms.ValidationError(upload_too_large_message(
                size=upload.size, limit=limit, filename=upload.name))
        return upload


class ExportForm(forms.Form):
    format = forms.ChoiceField(
        label=_("Format"), choices=[("csv", "CSV"), ("jsonl", "JSON Lines")], initial="csv"
    )
    brand = forms.ModelChoiceField(
        label=_("Brand"), queryset=selectors.brand_list(), required=False,
        empty_label=_("All brands"), to_field_name="name",
    )
    kind = forms.ModelChoiceField(
        label=_("Kind"), queryset=selectors.content_kind_list(), required=False,
        empty_label=_("All kinds"),
    )
    locale = forms.ChoiceField(
        label=_("Locale"), required=False, choices=_blank(_("All locales")) + Locale.choices
    )
    bom = forms.BooleanField(
        label=_("Start with a byte order mark (CSV for Excel)"), required=False,
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("bom") and cleaned.get("format") != "csv":
            self.add_error("bom", _("A byte order mark is only written for CSV."))
        return cleaned

    def filters(self) -> dict[str, str]:
        """The filters as ``exporters.copy_export`` takes them (brand name, kind code)."""
        data = self.cleaned_data
        filters = {
            "brand": data["brand"].name if data.get("brand") else "",
            "kind": data["kind"].code if data.get("kind") else "",
            "locale": data.get("locale") or "",
        }
        return {key: value for key, value in filters.items() if value}


class CatalogImportChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        when = timezone.localtime(obj.created_at).strftime("%Y-%m-%d %H:%M")
        count = ngettext("%(count)d product", "%(count)d products", obj.product_count) % {
            "count": obj.product_count}
        return f"#{obj.pk} {obj.filename} · {when} · {obj.get_format_display()} · {count}"


class CopyExportForm(ExportForm):
    """The export form with the Shopify format, the import the products came from, the
    "changed since the last export" and formula guard options and the choice between a
    download now and a file made in the background."""

    MODES = ("download", "background")

    format = forms.ChoiceField(
        label=_("Format"), initial="csv",
        choices=[("csv", "CSV"), ("jsonl", "JSON Lines"),
                 ("shopify", _("Shopify product CSV"))],
        help_text=_(
            "Shopify product CSV: the rows of the Shopify export the products came from, with "
            "the approved description, SEO title and SEO description. Products from Shopify "
            "files with different columns come as a zip with one CSV per column set."
        ),
    )
    catalog_import = CatalogImportChoiceField(
        label=_("Imported from"), queryset=selectors.catalog_import_list(),
        required=False,
        empty_label=_("All imports"),
        help_text=_("Only the products this catalog file imported."),
    )
    changed_only = forms.BooleanField(
        label=_("Only what changed since the last export"), required=False,
    )
    no_formula_guard = forms.BooleanField(
        label=_("Write copy starting with = + - @ as it is"), required=False,
        help_text=_(
            "Otherwise such copy gets a leading ' so a spreadsheet does not run it as a "
            "formula. The cells of a shop's own Shopify rows always go back as they came."
        ),
    )
    mode = forms.ChoiceField(choices=[(mode, mode) for mode in MODES], required=False)

    def clean(self):
        bom = self.cleaned_data.get("bom")
        cleaned = super().clean()
        if bom and cleaned.get("format") == "shopify":
            # ExportForm refuses a BOM for anything but "csv"; Shopify CSV may have one too.
            self.errors.pop("bom", None)
            cleaned["bom"] = True
        return cleaned

    def filters(self) -> dict[str, str]:
        filters = super().filters()
        if self.cleaned_data.get("catalog_import"):
            filters["import"] = str(self.cleaned_data["catalog_import"].pk)
        return filters


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


# --- Queue ----------------------------------------------------------------------------------


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
    brand = forms.ModelChoiceField(
        label=_("Brand"), queryset=selectors.brand_list(), required=False,
        empty_label=_("All brands"),
    )
    category = forms.ChoiceField(label=_("Category"), required=False)
    kind = forms.ModelChoiceField(
        label=_("Kind"), queryset=selectors.content_kind_list(), required=False,
        empty_label=_("All kinds"),
    )
    assignee = forms.ChoiceField(label=_("Assignee"), required=False)
    model_version = forms.ModelChoiceField(
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


# --- Draft page: comments, history ---------------------------------------------------------------

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


# --- Training data and fine-tuning ---------------------------------------------------------------


class TrainingDataForm(forms.Form):
    """Which approved edits become training data (GET: statistics; ``download=1``: the file)."""

    format = forms.ChoiceField(
        label=_("Format"), choices=[("sft", _("SFT (chat messages)")),
                                    ("dpo", _("DPO (preference pairs)"))], initial="sft",
        required=False,
    )
    brand = forms.ModelChoiceField(
        label=_("Brand"), queryset=selectors.brand_list(), required=False,
        empty_label=_("All brands"), to_field_name="name",
    )
    kind = forms.ModelChoiceField(
        label=_("Kind"), queryset=selectors.content_kind_list(), required=False,
        empty_label=_("All kinds"),
    )
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
    base = forms.ModelChoiceField(
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
    brand = forms.ModelChoiceField(
        label=_("Brand"), queryset=selectors.brand_list(), required=False,
        empty_label=_("All brands"), to_field_name="name",
    )
    kind = forms.ModelChoiceField(
        label=_("Kind"), queryset=selectors.content_kind_list(), required=False,
        empty_label=_("All kinds"),
    )
