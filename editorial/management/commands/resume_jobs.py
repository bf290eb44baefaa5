from django.core.management.base import BaseCommand

from editorial.services import generation_jobs_resume


class Command(BaseCommand):
    help = ("Send again the generation chunks no worker will finish: running chunks whose "
            "heartbeat is stale (the worker died), chunks never sent (the broker was down) and "
            "chunks whose message the broker lost (restarted without persistence); fine-tune runs "
            "likewise. "
            "Celery beat runs the same sweep every COPYDESK_SWEEP_SECONDS; run this from cron "
            "where beat does not run.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--stall-seconds", type=float, default=None,
            help="heartbeat age that counts as stalled (default: COPYDESK_CHUNK_STALL_SECONDS)",
        )
        parser.add_argument(
            "--unsent-grace-seconds", type=float, default=60,
            help="leave chunks of jobs younger than this to the request that is sending them",
        )

    def handle(self, *args, **options):
        report = generation_jobs_resume(
            stall_seconds=options["stall_seconds"],
            unsent_grace_seconds=options["unsent_grace_seconds"],
        )
        self.stdout.write(report.summary())
