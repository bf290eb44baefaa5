from django.core.management.base import BaseCommand, CommandError

from editorial.models import ModelVersion, Product
from editorial.services import WorkflowError, ab_test_request
from generation.params import GenerationParams, InvalidParams


class Command(BaseCommand):
    help = ("A/B test: split products at random (reproducibly, by --seed) between two model "
            "versions and generate drafts; the dashboard compares the arms.")

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--sku", nargs="+", metavar="SKU")
        which.add_argument("--all", action="store_true", help="every product")
        parser.add_argument("--model-a", required=True, help="model version of arm A")
        parser.add_argument("--model-b", required=True, help="model version of arm B")
        parser.add_argument("--seed", type=int, default=0,
                            help="assignment and decoding seed (default 0)")
        parser.add_argument("--kinds", default="description")
        parser.add_argument("--max-new-tokens", type=int,
                            default=GenerationParams().max_new_tokens)
        parser.add_argument("--name", default="")
        parser.add_argument("--inline", action="store_true",
                            help="generate in this process instead of on a worker")

    def handle(self, *args, **options):
        versions = {}
        for arm in ("model_a", "model_b"):
            versions[arm] = ModelVersion.objects.filter(name=options[arm]).first()
            if versions[arm] is None:
                raise CommandError(f"Unknown model version {options[arm]!r}.")
        products = (Product.objects.all() if options["all"]
                    else Product.objects.filter(sku__in=options["sku"]))
        kinds = [k.strip() for k in options["kinds"].split(",") if k.strip()]
        try:
            test = ab_test_request(
                products=products, kinds=kinds, user=None, seed=options["seed"],
                params={"seed": options["seed"], "max_new_tokens": options["max_new_tokens"]},
                model_a=versions["model_a"], model_b=versions["model_b"], name=options["name"],
                enqueue=not options["inline"],
            )
        except InvalidParams as exc:
            raise CommandError(f"--{exc.field.replace('_', '-')}: {exc.message}") from exc
        except WorkflowError as exc:
            raise CommandError(str(exc)) from exc
        for job in test.jobs.order_by("ab_arm"):
            self.stdout.write(f"arm {job.ab_arm.upper()}: job {job.pk}, {job.total} drafts with "
                              f"{job.model_version.name}")
            if options["inline"]:
                from editorial.workers.generation import run_job_inline

                run_job_inline(job_id=job.pk)
