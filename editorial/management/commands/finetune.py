import sys

from django.core.management.base import BaseCommand, CommandError

from editorial.models import FineTuneRun, ModelVersion
from editorial.services import WorkflowError, finetune_run_request
from editorial.workers.finetune import run_finetune
from generation.params import FineTuneConfig

from ._progress import add_mode_arguments, follow, run_or_follow


class Command(BaseCommand):
    help = ("Fine-tune a model version on the approved edits (train split) into a new model "
            "version; a GPU worker runs it (or --inline, this process).")

    def add_arguments(self, parser):
        defaults = FineTuneConfig()
        parser.add_argument("--base", required=True, help="the model version to start from")
        parser.add_argument("--name", required=True, help="the new model version's name")
        parser.add_argument("--epochs", type=int, default=defaults.epochs)
        parser.add_argument("--lr", type=float, default=defaults.lr)
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
        parser.add_argument("--grad-accum", type=int, default=defaults.grad_accum,
                            help="batches per optimizer step")
        parser.add_argument("--max-length", type=int, default=defaults.max_length,
                            help="tokens per example (prompt + completion)")
        parser.add_argument("--max-steps", type=int, default=0,
                            help="stop after this many optimizer steps (0: no limit)")
        parser.add_argument("--lora", action="store_true",
                            help="train LoRA adapters (merged into the saved model)")
        parser.add_argument("--brand", help="only this brand's approved edits")
        parser.add_argument("--kind", help="only this content kind's approved edits")
        add_mode_arguments(parser, follows="follow the run's progress until it is done",
                           inline="fine-tune in this process instead of on a worker")

    def handle(self, *args, **options):
        base = ModelVersion.objects.filter(name=options["base"]).first()
        if base is None:
            raise CommandError(f"Unknown model version {options['base']!r}.")
        hyperparameters = {
            "epochs": options["epochs"], "lr": options["lr"],
            "batch_size": options["batch_size"], "grad_accum": options["grad_accum"],
            "max_length": options["max_length"], "max_steps": options["max_steps"],
            "lora": options["lora"],
        }
        try:
            run = finetune_run_request(
                base=base, name=options["name"], hyperparameters=hyperparameters, user=None,
                filters={"brand": options["brand"] or "", "kind": options["kind"] or ""},
                enqueue=not options["inline"],
            )
        except WorkflowError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"fine-tune run {run.pk}: {base.name} -> {run.name}")
        run_or_follow(options, self.stdout.write, run_inline=lambda: run_finetune(run_id=run.pk),
                      queued="queued on the gpu queue (follow it with --wait or in the web UI)",
                      follow_run=lambda: self._follow(run.pk))

    def _follow(self, run_id: int) -> None:
        run = follow(self.stdout.write, lambda: FineTuneRun.objects.get(pk=run_id), _progress)
        if run.status != FineTuneRun.Status.SUCCEEDED:
            self.stderr.write(run.error)
            sys.exit(1)
        before, after = run.metrics.get("before") or {}, run.metrics.get("after") or {}
        if before and after:
            self.stdout.write(
                f"validation loss {before['loss']:.4f} -> {after['loss']:.4f} "
                f"(perplexity {before['perplexity']:.2f} -> {after['perplexity']:.2f})"
            )
        self.stdout.write(f"registered model version {run.name} at {run.output_path}")


def _progress(run: FineTuneRun) -> str:
    loss = "—" if run.loss is None else f"{run.loss:.4f}"
    doing = (f" ({run.get_phase_display()})"
             if run.status == FineTuneRun.Status.RUNNING and run.phase else "")
    return f"run {run.pk} {run.status}{doing}: step {run.step}/{run.total_steps}, loss {loss}"
