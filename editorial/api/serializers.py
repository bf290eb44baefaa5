"""What the API reads and writes. Output serializers are read-only views of rows the views load
with selectors; input serializers check types and sizes, field by field, before a service is
called."""

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation.checks import TEXT_MAX_CEILING, TEXT_TOO_LONG
from generation.params import MAX_SEED
from generation.text import plain_text

from ..catalog import locale_normalize
from ..diffing import flag_message
from ..models import (
    Brand,
    Candidate,
    ContentKind,
    CopyFeedEntry,
    Draft,
    GenerationJob,
    Locale,
    Product,
    Revision,
)

# --- Products -----------------------------------------------------------------------------------


class ProductSerializer(serializers.ModelSerializer):
    brand = serializers.SerializerMethodField()
    description = serializers.CharField(source="source_text", read_only=True)

    class Meta:
        model = Product
        fields = ["sku", "title", "brand", "category", "locale", "description", "attributes",
                  "source_format", "created_at", "updated_at"]
        read_only_fields = fields
        extra_kwargs = {"source_format": {"help_text": (
            "Where the product came from (the file format it was first imported from, or api "
            "or manual); later API updates leave it as it is.")}}

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_brand(self, product) -> str | None:
        return product.brand.name if product.brand_id else None


class _Text(serializers.CharField):
    """A string that a database can store (no NUL, no lone surrogates); one over its
    ``max_length`` is refused with its length and the limit."""

    default_error_messages = {
        "max_length": _("This text is %(show_value)d characters long; at most "
                        "%(limit_value)d characters are allowed."),
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if "\x00" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            raise serializers.ValidationError(_("Contains a character that cannot be stored."))
        return value


class ProductUpsertSerializer(serializers.Serializer):
    """One product of ``POST /api/v1/products/``, matched by SKU. Only ``sku`` and ``title``
    are required. On an existing product a field left out keeps its current value, and its
    source format and imported raw rows never change (a product imported from Shopify stays in
    Shopify exports). A new product gets no brand, category, description or attributes for the
    fields left out, and a locale detected from its text. ``null`` or an empty value clears a
    field."""

    sku = _Text(max_length=Product._meta.get_field("sku").max_length,
                help_text="The product's SKU (a Shopify handle); an existing one is updated.")
    title = _Text(max_length=Product._meta.get_field("title").max_length,
                  help_text="Always set.")
    brand = _Text(max_length=Brand._meta.get_field("name").max_length, required=False,
                  allow_blank=True, allow_null=True,
                  help_text="A brand's name (created when new). Left out: unchanged; null or "
                            "\"\": no brand.")
    category = _Text(max_length=Product._meta.get_field("category").max_length, required=False,
                     allow_blank=True, allow_null=True,
                     help_text="Left out: unchanged; null or \"\": cleared.")
    locale = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=20,
        help_text="en or zh-hans. Left out: unchanged (detected for a new product); null or "
                  "\"\": detected again from the title and the description sent.")
    description = _Text(required=False, allow_blank=True, allow_null=True,
                        help_text="The source text (plain). Left out: unchanged; null or "
                                  "\"\": cleared.")
    attributes = serializers.DictField(
        child=_Text(allow_blank=True), required=False, allow_null=True,
        help_text="Name → value. Replaces all of the product's attributes (they are not "
                  "merged). Left out: unchanged; {} or null: no attributes.")

    def validate_locale(self, value):
        if value is None or not value.strip():
            return None
        normalized = locale_normalize(value)
        if normalized is None:
            raise serializers.ValidationError(_("Unknown locale; use en or zh-hans."))
        return normalized

    def validate(self, attrs):
        for name in ("brand", "category", "description"):
            if name in attrs and attrs[name] is None:
                attrs[name] = ""
        return attrs


class UpsertItemSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    sku = serializers.CharField()


class UpsertErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    sku = serializers.CharField(allow_blank=True)
    field = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class UpsertResultSerializer(serializers.Serializer):
    created = UpsertItemSerializer(many=True)
    updated = UpsertItemSerializer(many=True)
    errors = UpsertErrorSerializer(many=True)


# --- Jobs ---------------------------------------------------------------------------------------


class GenerationParamsSerializer(serializers.Serializer):
    """Decoding parameters; a parameter left out takes the default."""

    temperature = serializers.FloatField(required=False, min_value=0, max_value=5)
    top_k = serializers.IntegerField(required=False, min_value=0)
    top_p = serializers.FloatField(required=False, min_value=0, max_value=1)
    repetition_penalty = serializers.FloatField(required=False, min_value=1, max_value=3)
    max_new_tokens = serializers.IntegerField(required=False, min_value=1, max_value=2048)
    candidates = serializers.IntegerField(required=False, min_value=1, max_value=8)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=MAX_SEED)
    do_sample = serializers.BooleanField(required=False)


class JobRequestSerializer(serializers.Serializer):
    skus = serializers.ListField(child=serializers.CharField(max_length=255), min_length=1,
                                 max_length=10000)
    kinds = serializers.ListField(child=serializers.CharField(max_length=40), min_length=1,
                                  max_length=50)
    model_version = serializers.CharField(required=False, allow_null=True, max_length=200,
                                          help_text="A model version's name; default: the "
                                                    "default model.")
    params = GenerationParamsSerializer(required=False)

    def validate_kinds(self, value):
        known = set(ContentKind.objects.values_list("code", flat=True))
        unknown = sorted(set(value) - known)
        if unknown:
            raise serializers.ValidationError(
                _("Unknown content kind(s): %(unknown)s; choose from %(known)s.")
                % {"unknown": ", ".join(unknown), "known": ", ".join(sorted(known))}
            )
        return list(dict.fromkeys(value))

    def validate_skus(self, value):
        value = list(dict.fromkeys(value))
        found = set(Product.objects.filter(sku__in=value).values_list("sku", flat=True))
        missing = [sku for sku in value if sku not in found]
        if missing:
            shown = ", ".join(missing[:20]) + (" …" if len(missing) > 20 else "")
            raise serializers.ValidationError(_("Unknown SKU(s): %(skus)s") % {"skus": shown})
        return value


class JobSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_version.name", read_only=True)
    requested_by = serializers.SerializerMethodField()
    percent = serializers.IntegerField(read_only=True)
    eta_seconds = serializers.SerializerMethodField()

    class Meta:
        model = GenerationJob
        fields = ["id", "status", "model_version", "kinds", "params", "total", "done", "failed",
                  "percent", "eta_seconds", "tokens_generated", "error", "requested_by",
                  "created_at", "started_at", "finished_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_requested_by(self, job) -> str | None:
        return job.requested_by.get_username() if job.requested_by_id else None

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_eta_seconds(self, job) -> float | None:
        return job.eta_seconds()


# --- Drafts -------------------------------------------------------------------------------------


class RevisionSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author_name", read_only=True)

    class Meta:
        model = Revision
        fields = ["id", "number", "text", "author", "parent", "candidate", "created_at"]
        read_only_fields = fields


class CandidateSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_version.name", read_only=True)
    flags = serializers.SerializerMethodField(
        help_text="Check flags: code, severity, message (in the request's language), start and "
                  "end offsets into the text, and the message's template and params.")

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_flags(self, candidate) -> list[dict]:
        return [{**flag, "message": flag_message(flag)} for flag in candidate.flags or []]

    class Meta:
        model = Candidate
        fields = ["id", "job", "index", "rank", "score", "text", "flags", "model_version",
                  "seed", "params", "prompt_tokens", "completion_tokens", "created_at"]
        read_only_fields = fields


class DraftSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku", read_only=True)
    product_title = serializers.CharField(source="product.title", read_only=True)
    brand = serializers.SerializerMethodField()
    kind = serializers.CharField(source="kind_id", read_only=True)
    assignee = serializers.SerializerMethodField()

    class Meta:
        model = Draft
        fields = ["id", "sku", "product_title", "brand", "kind", "state", "assignee",
                  "current_revision", "approved_revision", "exported_revision", "approved_at",
                  "updated_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_brand(self, draft) -> str | None:
        return draft.product.brand.name if draft.product.brand_id else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_assignee(self, draft) -> str | None:
        return draft.assignee.get_username() if draft.assignee_id else None


class DraftDetailSerializer(DraftSerializer):
    current_text = serializers.SerializerMethodField()
    candidates = CandidateSerializer(many=True, read_only=True, source="candidate_list")
    revisions = RevisionSerializer(many=True, read_only=True, source="revision_list")

    class Meta(DraftSerializer.Meta):
        fields = [*DraftSerializer.Meta.fields, "current_text", "error", "candidates",
                  "revisions"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_current_text(self, draft) -> str | None:
        return draft.current_revision.text if draft.current_revision_id else None


class DraftFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=Draft.State.choices, required=False)
    brand = serializers.CharField(required=False, max_length=200,
                                  help_text="A brand's id or exact name.")
    kind = serializers.CharField(required=False, max_length=40, help_text="A content kind code.")


@extend_schema_field({"type": "string", "maxLength": TEXT_MAX_CEILING})
class _CopyText(_Text):
    """The copy's text: its length is checked against the draft's own limit (in
    ``RevisionCreateSerializer.validate_text``), so the refusal names that limit."""


class RevisionCreateSerializer(serializers.Serializer):
    """``context["max_chars"]``: the longest text the draft takes
    (``selectors.draft_text_max_chars``); at most ``TEXT_MAX_CEILING`` in any case."""

    text = _CopyText(help_text=(
        "The new text (leading and trailing space is dropped): at most four times the kind's "
        f"(or brand's) length limit, at least 2,000 and never more than {TEXT_MAX_CEILING:,} "
        "characters."))
    base_revision = serializers.IntegerField(
        allow_null=True, min_value=1,
        help_text="The id of the revision the text was edited from (the draft's current "
                  "revision when the client loaded it; null for a draft without text).",
    )

    def validate_text(self, value):
        value = plain_text(value)
        if not value:
            raise serializers.ValidationError(_("The text is empty."))
        limit = self.context.get("max_chars") or TEXT_MAX_CEILING
        if len(value) > limit:
            raise serializers.ValidationError(
                gettext(TEXT_TOO_LONG) % {"length": len(value), "max": limit}, code="max_length")
        return value


class RevisionSavedSerializer(serializers.Serializer):
    draft = DraftSerializer()
    revision = RevisionSerializer()


class ApproveSerializer(serializers.Serializer):
    revision = serializers.IntegerField(min_value=1, help_text="The id of the revision the "
                                        "reviewer read; it must still be current.")
    comment = _Text(required=False, allow_blank=True, max_length=5000)


class ConflictFlagSerializer(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.CharField()
    message = serializers.CharField()


class ConflictSerializer(serializers.Serializer):
    """``code``: ``stale_revision`` (with ``current_revision``), ``blocking_flags`` (with
    ``flags``: the checks' blocking findings in the text) or ``invalid_state``."""

    detail = serializers.CharField()
    code = serializers.CharField()
    current_revision = RevisionSerializer(required=False)
    your_revision = RevisionSerializer(required=False)
    flags = ConflictFlagSerializer(many=True, required=False)


# --- Copy feed ----------------------------------------------------------------------------------


class FeedQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text=(
        "Only approvals at or after this time (ISO 8601); ignored when a cursor is given."))


class CopyFeedEntrySerializer(serializers.ModelSerializer):
    draft = serializers.IntegerField(source="draft_id", read_only=True)
    sku = serializers.CharField(source="draft.product.sku", read_only=True)
    kind = serializers.CharField(source="draft.kind_id", read_only=True)
    locale = serializers.ChoiceField(source="draft.product.locale", choices=Locale.choices,
                                     read_only=True)
    revision = serializers.IntegerField(source="revision_id", read_only=True)
    revision_number = serializers.IntegerField(source="revision.number", read_only=True)
    text = serializers.CharField(source="revision.text", read_only=True)
    is_current = serializers.SerializerMethodField(
        help_text="Still the draft's approved revision (a later approval replaces it).")

    class Meta:
        model = CopyFeedEntry
        fields = ["seq", "draft", "sku", "kind", "locale", "revision", "revision_number", "text",
                  "approved_at", "is_current"]
        read_only_fields = fields

    def get_is_current(self, entry) -> bool:
        return entry.draft.approved_revision_id == entry.revision_id
