"""Training data and fine-tuning, for admins: dataset statistics and downloads, fine-tuning runs
with live progress."""

from __future__ import annotations

from datetime import datetime, time

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING

from .. import charts, policies, selectors, services, training_data
from ..forms import FineTuneForm, TrainingDataForm
from ..models import FineTuneRun, ModelVersion
from ._common import HtmxHttpRequest, member_required, render_page, wants_fragment

RUN_FRAGMENT = "finetune-progress"


def _require_admin(user) -> None:
    policies.require(policies.can_train(user),
                     _("Only admins can use training data and fine-tune models."))


def _token_counter():
    default = ModelVersion.objects.filter(is_default=True).values_list("path", flat=True).first()
    return training_data.tokenizer_counter(default)


@member_required
@require_GET
def training_home(request: HtmxHttpRequest):
    """GET: statistics of the training data the filters select; ``download=1``: the JSONL."""
    _require_admin(request.user)
    form = TrainingDataForm(request.GET)  # every field is optional: no filters is valid
    if not form.is_valid():
        dataset = None
        status = 400
    else:
        options = form.options()
        since = options["since"]
        moment = (timezone.make_aware(datetime.combine(since, time.min)) if since else None)
        examples = training_data.training_examples(
            brand=options["brand"], kind=options["kind"], since=moment
        )
        download = request.GET.get("download") == "1"
        dataset = training_data.build_dataset(
            examples, format=options["format"], split=options["split"],
            min_edit=options["min_edit"],
            count_tokens=training_data.word_tokens if download else _token_counter(),
        )
        if download:
            response = HttpResponse(dataset.jsonl(), content_type="application/jsonl")
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
            response["Content-Disposition"] = (
                f'attachment; filename="copydesk-{options["format"]}-{options["split"]}-'
                f'{stamp}.jsonl"'
            )
            return response
        status = 200
    context = {
        "form": form,
        "dataset": dataset,
        "query": request.GET.urlencode(),
        "finetune_form": FineTuneForm(),
        "runs": FineTuneRun.objects.select_related("base", "result")[:20],
        "versions": selectors.model_version_list(),
    }
    return render_page(request, "training/home.html", context, status=status)


@member_required
@require_http_methods(["POST"])
def finetune_start(request: HtmxHttpRequest):
    _require_admin(request.user)
    form = FineTuneForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            run = services.finetune_run_request(
                base=data["base"], name=data["name"], user=request.user,
                hyperparameters={"epochs": data["epochs"], "lr": data["lr"],
                                 "batch_size": data["batch_size"], "lora": data["lora"]},
                filters={"brand": data["brand"].name if data.get("brand") else "",
                         "kind": data["kind"].code if data.get("kind") else ""},
            )
        except services.WorkflowError as exc:
            form.add_error("name", str(exc))
        else:
            return redirect("finetune_detail", run_id=run.pk)
    context = {
        "form": TrainingDataForm(), "dataset": None, "query": "", "finetune_form": form,
        "runs": FineTuneRun.objects.select_related("base", "result")[:20],
        "versions": selectors.model_version_list(),
    }
    return render_page(request, "training/home.html", context, status=400)


@member_required
@require_GET
def finetune_detail(request: HtmxHttpRequest, run_id: int):
    _require_admin(request.user)
    run = get_object_or_404(FineTuneRun.objects.select_related("base", "result"), pk=run_id)
    context = {"run": run, "chart": charts.loss_chart(run)}
    response = render_page(request, "training/run.html", context, fragment=RUN_FRAGMENT)
    if wants_fragment(request) and run.is_finished:
        response.status_code = HTMX_STOP_POLLING
    return response


@member_required
@require_POST
def finetune_retry(request: HtmxHttpRequest, run_id: int):
    _require_admin(request.user)
    run = get_object_or_404(FineTuneRun.objects.select_related("base"), pk=run_id)
    try:
        again = services.finetune_run_retry(run=run, user=request.user)
    except services.WorkflowError as exc:
        messages.error(request, str(exc))
        return redirect("finetune_detail", run_id=run.pk)
    return redirect("finetune_detail", run_id=again.pk)
