import sys

from django.core.management.base import BaseCommand, CommandError

from editorial.models import GenerationJob, ModelVersion, Product
from editorial.services import WorkflowError, generation_job_request
from editorial.workers.generation import run_job_inline
from generation.params import GenerationParams, InvalidParams

from ._progress import add_mode_arguments, follow, run_or_follow

PARAM_OPTIONS = ("temperature", "top_k", "top_p", "repetition_penalty", "max_new_tokens",
                 "candidates", "best_of", "seed")


class Command(BaseCommand):
    help = ("Request first drafts for products; a Celery worker (or --inline, this process) "
            "writes them.")

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--sku", nargs="+", metavar="SKU", help="products by SKU / handle")
        which.add_argument("--all", action="store_true", help="every product")
        parser.add_argument("--kinds", default="description",
                            help="comma-separated content kinds (default: description)")
        parser.add_argument("--model", help="model version name (default: the default model)")
        defaults = GenerationParams()
        parser.add_argument("--candidates", type=int, default=defaults.candidates)
        parser.add_argument("--best-of", type=int, default=defaults.best_of,
                            help="candidates sampled per draft, of which the checks keep the "
                                 f"best --candidates (default {defaults.best_of}; 0: no more "
                                 "than shown)")
        parser.add_argument("--temperature", type=float, default=defaults.temperature)
        parser.add_argument("--top-k", type=int, default=defaults.top_k)
        parser.add_argument("--top-p", type=float, default=defaults.top_p)
        parser.add_argument("--repetition-penalty", type=float,
                            default=defaults.repetition_penalty)
        parser.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens)
        parser.add_argument("--seed", type=int, default=defaults.seed)
        add_mode_arguments(parser, follows="follow the job's progress until it is done",
                           inline="generate in this process instead of on a worker")

    def handle(self, *args, **options):
        if options["all"]:
            products = Product.objects.all()
        else:
            skus = options["sku"]
            products = Product.objects.filter(sku__in=skus)
            missing = sorted(set(skus) - set(products.values_list("sku", flat=True)))
            if missing:
                raise CommandError(f"Unknown SKU(s): {', '.join(missing)}")
        model_version = None
        if options["model"]:
            model_version = ModelVersion.objects.filter(name=options["model"]).first()
            if model_version is None:
                raise CommandError(f"Unknown model version {options['model']!r}.")
        kinds = [k.strip() for k in options["kinds"].split(",") if k.strip()]
        params = {name: options[name] for name in PARAM_OPTIONS}
        try:
            job = generation_job_request(
                products=products.only("pk"), kinds=kinds, params=params, user=None,
                model_version=model_version, enqueue=not options["inline"],
            )
        except InvalidParams as exc:
            raise CommandError(f"--{exc.field.replace('_', '-')}: {exc.message}") from exc
        except WorkflowError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"job {job.pk}: {job.total} drafts with {job.model_version.name}")
        run_or_follow(options, self.stdout.write, run_inline=lambda: run_job_inline(job_id=job.pk),
                      queued="queued; a worker will pick it up (follow it with --wait or in the "
                             "web UI)",
                      follow_run=lambda: self._follow(job.pk))

    def _follow(self, job_id: int) -> None:
        job = follow(
            self.stdout.write, lambda: GenerationJob.objects.get(pk=job_id),
            lambda job: (f"job {job.pk} {job.status}: {job.done} done, {job.failed} failed of "
                         f"{job.total} ({job.tokens_per_second:.0f} tokens/s)"),
        )
        if job.status != GenerationJob.Status.SUCCEEDED:
            failures = job.items.filter(status="failed").exclude(error="")
            for item in failures.select_related("draft__product")[:10]:
                self.stderr.write(f"{item.draft.product.sku} {item.draft.kind_id}: {item.error}")
            sys.exit(1)
