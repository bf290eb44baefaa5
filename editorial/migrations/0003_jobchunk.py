import django.db.models.deletion
from django.db import migrations, models


def chunks_for_unfinished_jobs(apps, schema_editor):
    """Jobs queued or running before chunks were tracked get their chunk rows, so the sweeper
    can resume them."""
    GenerationJob = apps.get_model("editorial", "GenerationJob")
    JobItem = apps.get_model("editorial", "JobItem")
    JobChunk = apps.get_model("editorial", "JobChunk")
    rows = []
    for job_id in GenerationJob.objects.filter(status__in=["queued", "running"]).values_list(
        "pk", flat=True
    ):
        numbers = {}
        for number in JobItem.objects.filter(job_id=job_id).values_list("chunk", flat=True):
            numbers[number] = numbers.get(number, 0) + 1
        rows += [JobChunk(job_id=job_id, number=n, size=size) for n, size in numbers.items()]
    JobChunk.objects.bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("editorial", "0002_seed_kinds_and_roles"),
    ]

    operations = [
        migrations.CreateModel(
            name="JobChunk",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("number", models.PositiveIntegerField()),
                ("size", models.PositiveIntegerField(default=0)),
                ("status", models.CharField(choices=[("queued", "Queued"), ("running", "Running"),
                                                     ("done", "Done")],
                                            db_index=True, default="queued", max_length=10)),
                ("attempts", models.PositiveSmallIntegerField(default=0)),
                ("claim", models.CharField(blank=True, max_length=40)),
                ("worker", models.CharField(blank=True, max_length=200)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                ("claimed_at", models.DateTimeField(blank=True, null=True)),
                ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("job", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                          related_name="chunks", to="editorial.generationjob")),
            ],
            options={
                "ordering": ["job", "number"],
                "indexes": [models.Index(fields=["status", "heartbeat_at"],
                                         name="editorial_j_status_959945_idx")],
                "constraints": [models.UniqueConstraint(fields=("job", "number"),
                                                        name="one_chunk_per_job_number")],
            },
        ),
        migrations.RunPython(chunks_for_unfinished_jobs, migrations.RunPython.noop),
    ]
