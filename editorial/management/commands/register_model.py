from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from editorial.models import ModelVersion
from editorial.services import WorkflowError, model_version_register


class Command(BaseCommand):
    help = "Register a hub id or a local model directory as a model version usable for generation."

    def add_arguments(self, parser):
        parser.add_argument("name", help="a unique name, e.g. qwen2.5-1.5b-instruct")
        parser.add_argument("path", help="a local directory or a hub id (Org/Model)")
        parser.add_argument("--default", action="store_true", help="make it the default model")

    def handle(self, *args, name, path, default, **options):
        local = Path(path).expanduser()
        if local.exists():
            if not (local / "config.json").is_file():
                raise CommandError(f"{local} has no config.json; is it a transformers model?")
            source, path = ModelVersion.Source.LOCAL, str(local.resolve())
        elif path.count("/") == 1 and not path.startswith(("/", ".")):
            source = ModelVersion.Source.HUB
        else:
            raise CommandError(f"{path} is neither an existing directory nor a hub id (Org/Model).")
        try:
            version = model_version_register(
                name=name, path=path, source=source, make_default=default
            )
        except WorkflowError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"registered {version.name} ({version.source}) at {version.path}"
                          + (" as default" if version.is_default else ""))
