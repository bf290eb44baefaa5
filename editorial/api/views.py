"""API views: parse and check the request, call one selector or service, serialize. Rules live
in the services and ``editorial.policies`` (the same ones the UI uses)."""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param
from rest_framework.views import APIView

from generation.params import InvalidParams

from .. import policies, selectors, services
from ..models import Brand, Candidate, CopyFeedEntry, Draft, ModelVersion, Product, Revision
from . import serializers as s
from .pagination import FeedCursorPagination
from .permissions import CopydeskPolicy
from .throttles import GenerationRateThrottle


class _Base(GenericAPIView):
    permission_classes = [CopydeskPolicy]
    policies = {"GET": policies.can_view}


class _List(_Base, ListAPIView):
    pass


# --- Products -----------------------------------------------------------------------------------


class ProductListView(_List):
    """The catalog, by SKU; ``POST`` creates or updates products by SKU in bulk."""

    serializer_class = s.ProductSerializer
    policies = {"GET": policies.can_view, "POST": policies.can_import}

    def get_queryset(self):
        params = self.request.query_params
        filters = {name: params[name] for name in ("q", "category", "locale")
                   if params.get(name)}
        if brand := params.get("brand"):
            if not brand.isdigit():
                raise ValidationError({"brand": [_("A brand id is required.")]})
            filters["brand"] = int(brand)
        return selectors.product_filtered(filters=filters).select_related("brand")

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, description="Part of the SKU or title."),
            OpenApiParameter("brand", int, description="A brand id."),
            OpenApiParameter("category", str),
            OpenApiParameter("locale", str, enum=["en", "zh-hans"]),
        ],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=s.ProductUpsertSerializer(many=True),
        responses={
            200: OpenApiResponse(s.UpsertResultSerializer,
                                 description="Every item was written."),
            207: OpenApiResponse(s.UpsertResultSerializer,
                                 description="Some items failed; see errors."),
        },
        description=(
            "Create or update products by SKU (at most COPYDESK_API_MAX_BULK items). Each "
            "item is written on its own: a failing item is listed in `errors` (with its index "
            "in the request and the field at fault), the others are kept. 200 when every "
            "item was written, 207 when some were not.\n\n"
            "An update changes only the fields the item sends: a key left out keeps the "
            "product's value (so `{\"sku\": …, \"title\": …}` changes the title and nothing "
            "else), `null` or an empty value clears it (a `null` locale is detected again), "
            "and `attributes`, when sent, replaces them all. The product's source format and "
            "raw imported rows stay as they are, so a product imported from a Shopify CSV is "
            "still exported to Shopify. A new product takes `api` as its source format, and a "
            "locale detected from its title and description unless one is sent."
        ),
    )
    def post(self, request):
        from django.conf import settings

        data = request.data
        if not isinstance(data, list):
            raise ValidationError({"non_field_errors": [_("Send a list of products.")]})
        limit = settings.COPYDESK_API_MAX_BULK
        if len(data) > limit:
            raise ValidationError({"non_field_errors": [
                _("At most %(limit)d products per request.") % {"limit": limit}]})
        valid, errors = [], []
        for index, item in enumerate(data):
            serializer = s.ProductUpsertSerializer(data=item)
            if serializer.is_valid():
                fields = dict(serializer.validated_data)
                fields["raw"] = item
                valid.append((index, fields))
                continue
            sku = item.get("sku") if isinstance(item, dict) else None
            for field_name, messages in serializer.errors.items():
                if isinstance(messages, dict):  # attributes: {key: [messages]}
                    messages = [f"{key}: {' '.join(map(str, m))}" for key, m in messages.items()]
                errors.append(services.UpsertItemError(
                    index=index, field="" if field_name == "non_field_errors" else field_name,
                    message=" ".join(str(m) for m in messages),
                    sku=sku if isinstance(sku, str) else "",
                ))
        result = services.product_bulk_upsert(items=valid, user=request.user, errors=errors)
        body = {
            "created": [{"index": i, "sku": sku} for i, sku in result.created],
            "updated": [{"index": i, "sku": sku} for i, sku in result.updated],
            "errors": [{"index": e.index, "sku": e.sku, "field": e.field, "message": e.message}
                       for e in result.errors],
        }
        return Response(body, status=status.HTTP_207_MULTI_STATUS if result.errors
                        else status.HTTP_200_OK)


class ProductDetailView(_Base):
    serializer_class = s.ProductSerializer

    @extend_schema(parameters=[OpenApiParameter(
        "sku", {"type": "string", "minLength": 1}, OpenApiParameter.PATH,
        description="The product's SKU (handle); may contain slashes.")])
    def get(self, request, sku: str):
        product = get_object_or_404(Product.objects.select_related("brand"), sku=sku)
        return Response(self.get_serializer(product).data)


# --- Jobs ---------------------------------------------------------------------------------------


class JobListView(_List):
    """Generation jobs, newest first; ``POST`` requests one (rate-limited per user)."""

    serializer_class = s.JobSerializer
    policies = {"GET": policies.can_view, "POST": policies.can_generate}
    throttle_classes = [GenerationRateThrottle]
    # Unknown kinds, no products, a model version not ready: the request is wrong, not a state.
    refusal_is_bad_request = True

    def get_queryset(self):
        return selectors.job_list()

    @extend_schema(request=s.JobRequestSerializer, responses={202: s.JobSerializer})
    def post(self, request):
        serializer = s.JobRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model_version = None
        if name := data.get("model_version"):
            model_version = ModelVersion.objects.filter(name=name).first()
            if model_version is None:
                raise ValidationError({"model_version": [_("Unknown model version.")]})
        try:
            job = services.generation_job_request(
                products=Product.objects.filter(sku__in=data["skus"]),
                kinds=data["kinds"], params=dict(data.get("params") or {}),
                user=request.user, model_version=model_version,
            )
        except InvalidParams as exc:
            raise ValidationError({"params": {k: [_(v)] for k, v in exc.errors.items()}}) from exc
        job = selectors.job_detail(job_id=job.pk)
        return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobDetailView(_Base):
    serializer_class = s.JobSerializer

    def get(self, request, job_id: int):
        return Response(self.get_serializer(selectors.job_detail(job_id=job_id)).data)


class JobCancelView(_Base):
    serializer_class = s.JobSerializer
    policies = {"POST": policies.can_generate}

    @extend_schema(request=None, responses={200: s.JobSerializer})
    def post(self, request, job_id: int):
        job = selectors.job_detail(job_id=job_id)
        services.generation_job_cancel(job=job, user=request.user)
        return Response(self.get_serializer(selectors.job_detail(job_id=job_id)).data)


# --- Drafts -------------------------------------------------------------------------------------


def _draft_queryset():
    return Draft.objects.select_related("product", "product__brand", "kind", "assignee",
                                        "current_revision")


class DraftListView(_List):
    serializer_class = s.DraftSerializer

    def get_queryset(self):
        query = s.DraftFilterSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = dict(query.validated_data)
        if brand := filters.get("brand"):
            filters["brand"] = (int(brand) if brand.isdigit() else
                                Brand.objects.filter(name=brand)
                                .values_list("pk", flat=True).first() or -1)
        matching = selectors.draft_queue_filtered(user=self.request.user, filters=filters)
        return (_draft_queryset().filter(pk__in=matching.values("pk"))
                .order_by("product__sku", "kind__position", "pk"))

    @extend_schema(parameters=[s.DraftFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class DraftDetailView(_Base):
    serializer_class = s.DraftDetailSerializer

    def get(self, request, draft_id: int):
        draft = get_object_or_404(
            _draft_queryset().prefetch_related(
                Prefetch("candidates", to_attr="candidate_list",
                         queryset=Candidate.objects.select_related("model_version")
                         .order_by(*selectors.CANDIDATE_ORDER)),
                Prefetch("revisions", to_attr="revision_list",
                         queryset=Revision.objects.select_related("author").order_by("-number")),
            ),
            pk=draft_id,
        )
        return Response(self.get_serializer(draft).data)


class DraftRevisionCreateView(_Base):
    """Save new text. ``base_revision`` is the revision the client edited: if someone saved
    since, the text is still kept (as a revision that is not current) and the answer is 409
    with both revisions."""

    serializer_class = s.RevisionCreateSerializer
    policies = {"POST": policies.can_edit}

    @extend_schema(request=s.RevisionCreateSerializer,
                   responses={201: s.RevisionSavedSerializer, 409: s.ConflictSerializer})
    def post(self, request, draft_id: int):
        draft = get_object_or_404(_draft_queryset(), pk=draft_id)
        serializer = s.RevisionCreateSerializer(
            data=request.data, context={"max_chars": selectors.draft_text_max_chars(draft=draft)})
        serializer.is_valid(raise_exception=True)
        revision = services.revision_save(
            draft=draft, user=request.user, text=serializer.validated_data["text"],
            base_revision_id=serializer.validated_data["base_revision"],
        )
        draft = _draft_queryset().get(pk=draft.pk)
        return Response({"draft": s.DraftSerializer(draft).data,
                         "revision": s.RevisionSerializer(revision).data},
                        status=status.HTTP_201_CREATED)


class DraftApproveView(_Base):
    """Approve the revision the reviewer read; 409 when the text changed since (with the
    current revision) or the draft is not in review."""

    serializer_class = s.ApproveSerializer
    policies = {"POST": policies.can_review}

    @extend_schema(request=s.ApproveSerializer,
                   responses={200: s.DraftSerializer, 409: s.ConflictSerializer})
    def post(self, request, draft_id: int):
        draft = get_object_or_404(Draft, pk=draft_id)
        serializer = s.ApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.draft_approve(draft=draft, user=request.user,
                               revision_id=serializer.validated_data["revision"],
                               comment=serializer.validated_data.get("comment", ""))
        return Response(s.DraftSerializer(_draft_queryset().get(pk=draft.pk)).data)


# --- Copy feed ----------------------------------------------------------------------------------


class CopyFeedView(_List):
    """Approved copy in the order approvals committed, for a shop to poll: start with
    ``?since=`` (or nothing, for everything), then follow ``cursor`` — every response has one,
    the last page too, so the next poll starts where this one stopped and each approval is
    seen exactly once. A draft approved again (after an edit) appears again; ``is_current``
    says whether an entry is still the approved text."""

    serializer_class = s.CopyFeedEntrySerializer
    pagination_class = FeedCursorPagination

    def get_queryset(self):
        query = s.FeedQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        queryset = CopyFeedEntry.objects.select_related(
            "draft__product", "revision"
        ).only(
            "seq", "draft_id", "revision_id", "approved_at", "draft__kind_id",
            "draft__approved_revision_id", "draft__product__sku", "draft__product__locale",
            "revision__number", "revision__text",
        )
        since = query.validated_data.get("since")
        if since is not None and not self.request.query_params.get("cursor"):
            queryset = queryset.filter(approved_at__gte=since)
        return queryset

    @extend_schema(parameters=[s.FeedQuerySerializer])
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        # The cursor replaces ``since``: a later poll must not filter by time again.
        response.data["next"] = remove_query_param(response.data["next"], "since")
        return response


class NotFoundView(APIView):
    """Any other path under /api/: a JSON 404, not the HTML page."""

    permission_classes = [AllowAny]
    authentication_classes = []

    def dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs, self.request = args, kwargs, request
        self.headers = self.default_response_headers
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        response = self.handle_exception(NotFound())
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response
