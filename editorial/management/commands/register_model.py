from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from editorial.models import ModelVersion
from editorial.services import WorkflowError, model_version_register
from generation.registry import CHAT, COMPLETION, ModelUnavailable, detect_prompt_format


class Command(BaseCommand):
    help = "Register a hub id or a local model directory as a model version usable for generation."

    def add_arguments(self, parser):
        parser.add_argument("name", help="a unique name, e.g. qwen2.5-1.5b-instruct")
        parser.add_argument("path", help="a local directory or a hub id (Org/Model)")
        parser.add_argument("--default", action="store_true", help="make it the default model")
        parser.add_argument(
            "--prompt-format", choices=[CHAT, COMPLETION],
            help="chat (instruct models) or completion (base models); by default detected from "
                 "a local directory's tokenizer (chat template or not), chat for a hub id",
        )

    def handle(self, *args, name, path, default, prompt_format=None, **options):
        local = Path(path).expanduser()
        if local.exists():
            if not (local / "config.json").is_file():
                raise CommandError(f"{local} has no config.json; is it a transformers model?")
            source, path = ModelVersion.Source.LOCAL, str(local.resolve())
            if prompt_format is None:
                try:
                    prompt_format = detect_prompt_format(local)
                except ModelUnavailable as exc:
                    raise CommandError(str(exc)) from exc
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
        prompt_format = prompt_format or CHAT
        if version.prompt_format != prompt_format:
            version.prompt_format = prompt_format
            version.save(update_fields=["prompt_format"])
        self.stdout.write(f"registered {version.name} ({version.source}, {prompt_format}) at "
                          f"{version.path}"
                          + (" as default" if version.is_default else ""))
