from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from generation.params import GenerationParams, InvalidParams

from .. import policies, selectors, services
from ..forms import GenerateForm, ProductFilterForm
from ._common import HtmxHttpRequest, member_required, paginate, product_facts_context, render_page

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


def _request_generation(request, form: GenerateForm, products):
    """One job, or with ``compare_with`` an A/B test's two jobs (arm A's job is returned)."""
    data = form.cleaned_data
    compare_with = data.get("compare_with")
    if compare_with is None:
        return services.generation_job_request(
            products=products, kinds=data["kinds"], params=form.params(), user=request.user,
            model_version=data["model_version"],
        )
    params = form.params()
    test = services.ab_test_request(
        products=products, kinds=data["kinds"], params=params, user=request.user,
        model_a=data["model_version"] or services.model_version_default(),
        model_b=compare_with, seed=params.get("seed") or 0,
    )
    return test.jobs.get(ab_arm="a")


@member_required
@require_POST
def generate(request: HtmxHttpRequest):
    """Start a generation job for the selected products, or for every product matching the
    list's filters (passed along in the query string)."""
    policies.check_generate(request.user)
    form = GenerateForm(request.POST)
    if form.is_valid():
        if form.cleaned_data["scope"] == GenerateForm.SCOPE_MATCHING:
            filters = ProductFilterForm(request.GET).filters()
            products = selectors.product_filtered(filters=filters).only("pk")
        else:
            products = form.cleaned_data["products"]
        try:
            job = _request_generation(request, form, products)
        except (InvalidParams, services.WorkflowError) as exc:
            form.add_refusal(exc)
        else:
            if job.ab_test_id:
                messages.success(
                    request,
                    _("A/B test queued: job #%(a)d (arm A) and job #%(b)d (arm B), %(total)d "
                      "drafts in all; the dashboard compares them.")
                    % {"a": job.pk, "b": job.ab_test.jobs.get(ab_arm="b").pk,
                       "total": sum(j.total for j in job.ab_test.jobs.all())},
                )
                return redirect(f"{reverse('home')}#ab-test-{job.ab_test_id}")
            messages.success(
                request,
                _("Job #%(id)d queued: %(total)d drafts to generate.")
                % {"id": job.pk, "total": job.total},
            )
            return redirect("job_detail", job_id=job.pk)
    return _product_list_page(request, generate_form=form, status=400)
