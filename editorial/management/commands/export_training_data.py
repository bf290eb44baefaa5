from datetime import datetime, time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from editorial import training_data
from editorial.models import Brand, ContentKind


def parse_since(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since: {value!r} is not a date (YYYY-MM-DD) or a datetime.")
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = ("Write approved edits as training data (JSONL that TRL's SFT and DPO trainers load): "
            "SFT records or preference pairs, split by product.")

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=training_data.FORMATS, default=training_data.SFT)
        parser.add_argument("--brand", help="only this brand (name)")
        parser.add_argument("--kind", help="only this content kind (code)")
        parser.add_argument("--since", help="only drafts approved on or after this date")
        parser.add_argument("--min-edit", type=float, default=training_data.DEFAULT_MIN_EDIT,
                            help="DPO: the least normalized edit distance between the model's "
                                 "text and the approved text for a pair (default %(default)s)")
        parser.add_argument("--split", choices=training_data.SPLITS, default=training_data.ALL)
        parser.add_argument("--out", required=True, help="the JSONL file to write")

    def handle(self, *args, **options):
        if options["brand"] and not Brand.objects.filter(name=options["brand"]).exists():
            raise CommandError(f"Unknown brand {options['brand']!r}.")
        if options["kind"] and not ContentKind.objects.filter(code=options["kind"]).exists():
            raise CommandError(f"Unknown content kind {options['kind']!r}.")
        if not 0 <= options["min_edit"] <= 1:
            raise CommandError("--min-edit must be between 0 and 1.")
        examples = training_data.training_examples(
            brand=options["brand"], kind=options["kind"], since=parse_since(options["since"])
        )
        dataset = training_data.build_dataset(
            examples, format=options["format"], split=options["split"],
            min_edit=options["min_edit"],
        )
        out = Path(options["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(dataset.jsonl(), encoding="utf-8")
        stats = dataset.stats
        distance = ("—" if stats.mean_edit_distance is None
                    else f"{stats.mean_edit_distance:.3f}")
        self.stdout.write(
            f"{stats.records} {options['format']} records ({stats.tokens} tokens, "
            f"{stats.duplicates} duplicates dropped, train {stats.per_split.get('train', 0)} / "
            f"validation {stats.per_split.get('validation', 0)}, mean edit distance {distance}) "
            f"written to {out}"
        )
