from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from generation.params import GenerationParams, InvalidParams

from .. import policies, selectors, services
from ..forms import GenerateForm, ProductFilterForm
from ._common import (
    HtmxHttpRequest,
    member_required,
    paginate,
    product_facts_context,
    render_page,
)

PRODUCTS_PER_PAGE = 50


def _product_list_page(request: HtmxHttpRequest, *, generate_form: GenerateForm | None = None,
                       status: int = 200):
    filter_form = ProductFilterForm(request.GET)
    page_obj = paginate(
        request, selectors.product_list(filters=filter_form.filters()), PRODUCTS_PER_PAGE
    )
    if generate_form is None and policies.can_generate(request.user):
        generate_form = GenerateForm(param_defaults=GenerationParams().to_dict())
    selected = set()
    if generate_form is not None and generate_form.is_bound:
        selected = {str(pk) for pk in generate_form.data.getlist("products")}
    context = {
        "filter_form": filter_form,
        "page_obj": page_obj,
        "generate_form": generate_form,
        "selected_ids": selected,
    }
    return render_page(request, "products/list.html", context, fragment="product-results",
                       status=status)


@member_required
@require_GET
def product_list(request: HtmxHttpRequest):
    return _product_list_page(request)


@member_required
@require_GET
def product_detail(request: HtmxHttpRequest, sku: str):
    product = selectors.product_detail(sku=sku)
    context = {
        **product_facts_context(product),
        "drafts": selectors.product_draft_list(product=product),
    }
    return render_page(request, "products/detail.html", context)


@member_required
@require_POST
def generate(request: HtmxHttpRequest):
    """Start a generation job for the selected products, or for every product matching the
    list's filters (passed along in the query string)."""
    policies.require(policies.can_generate(request.user),
                     _("Only editors can request generation."))
    form = GenerateForm(request.POST)
    if form.is_valid():
        if form.cleaned_data["scope"] == GenerateForm.SCOPE_MATCHING:
            filters = ProductFilterForm(request.GET).filters()
            products = selectors.product_filtered(filters=filters).only("pk")
        else:
            products = form.cleaned_data["products"]
        try:
            job = services.generation_job_request(
                products=products,
                kinds=form.cleaned_data["kinds"],
                params=form.params(),
                user=request.user,
                model_version=form.cleaned_data["model_version"],
            )
        except (InvalidParams, services.WorkflowError) as exc:
            form.add_refusal(exc)
        else:
            messages.success(
                request,
                _("Job #%(id)d queued: %(total)d drafts to generate.")
                % {"id": job.pk, "total": job.total},
            )
            return redirect("job_detail", job_id=job.pk)
    return _product_list_page(request, generate_form=form, status=400)
